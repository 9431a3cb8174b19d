/*
 * ps.c: `tsrun ps` without Node, for the listings people and scripts run over
 * and over: ps, -a/--all, -q/--quiet, --no-trunc, -aq and -qa, and the filters
 * scripts use most: -f/--filter status=, id= and name= (a name, ^ and $ around it).
 *
 * Through Node, ps with 200 containers costs Node's start plus ~60 ms: five
 * small files read and three parsed for each container in a fresh V8. Here the
 * whole of ps with 200 takes ~30 ms on a small VM, most of it the kernel's
 * opens and reads; json-c (linked in) parses the JSON.
 *
 * It must print byte for byte what cli/ps.ts prints, so it decides only what it
 * can decide as Node does (src/container/status.ts observe, list.ts summarize,
 * cli/table.ts formatTable) and hands the whole command to Node, before it has
 * printed anything, for everything else: another flag (--format, -n, -l,
 * --help, another filter or a name filter that is more of a regular expression), a container whose resources must be released first (its monitor
 * died: Node's ps reconciles), a start in progress, a healthcheck (its status
 * is in another file), a file that does not read as Node would read it, text
 * that is not ASCII (Node cuts UTF-16 code units and measures code points), a command that
 * Node's quoting (docker's: Go's strconv.Quote) would escape, a value of an
 * unexpected type. The test (test/integration/ps-front.test.ts) runs both on
 * the same stores, real and written by hand for each state a monitor reports,
 * with no `node` on PATH for this one.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "../shared/procstat.h"
#include "front.h"

#define MAX_JSON (16 << 20)
/* CONTAINER ID, IMAGE, COMMAND, CREATED, STATUS, PORTS, NAMES */
#define COLUMNS 7
/* docker's tables: Go's tabwriter with a minimum cell width of 10 and a padding of 3 */
#define TABLE_MIN_WIDTH 10

/* ---- reading ------------------------------------------------------------- */

/* A whole file (malloc'd, NUL-terminated); NULL when it does not exist. Any
 * other failure is Node's to report. */
static char *read_all(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return NULL;
		slow();
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size >= MAX_JSON)
		slow();
	size_t cap = (size_t)st.st_size + 1, got = 0;
	char *p = malloc(cap + 1);
	for (;;) {
		if (!p)
			slow();
		ssize_t n = read(fd, p + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			slow();
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == cap) { /* it grew while we read */
			if (cap >= MAX_JSON)
				slow();
			cap *= 2;
			p = realloc(p, cap + 1);
		}
	}
	close(fd);
	p[got] = '\0';
	*len = got;
	return p;
}

/* A number as JSON has it: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; its length, or 0. */
static size_t json_number(const unsigned char *s, size_t len)
{
	size_t i = 0, digits;
#define DIGITS() for (digits = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++)
	if (i < len && s[i] == '-')
		i++;
	DIGITS();
	if (digits == 0 || (digits > 1 && s[i - digits] == '0'))
		return 0;
	if (i < len && s[i] == '.') {
		i++;
		DIGITS();
		if (digits == 0)
			return 0;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		DIGITS();
		if (digits == 0)
			return 0;
	}
#undef DIGITS
	return i;
}

/* The length of one well-formed UTF-8 sequence (RFC 3629: no overlong forms,
 * no surrogates, nothing past U+10FFFF), or 0. */
static size_t utf8_sequence(const unsigned char *s, size_t len)
{
	size_t n = s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3 : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
	if (n == 0 || n > len)
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) || (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
		return 0;
	return n;
}

/*
 * What json-c takes, even in strict mode, and JSON.parse refuses or reads
 * otherwise: single quotes, NaN and Infinity, numbers such as 01, -.5 and 1.,
 * control characters inside strings, UTF-8 that is not well formed (Node reads
 * U+FFFD), and \u escapes of NUL (json-c cuts a key there) or beyond ASCII
 * (lone surrogates: JSON.stringify writes those and nothing else beyond ASCII
 * as escapes). Outside strings JSON has white space, punctuation, numbers and
 * true, false and null; json-c checks how they are put together.
 */
static int json_screen(const unsigned char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		size_t n;
		if (s[i] == '"') {
			for (i++; i < len && s[i] != '"'; i += n) {
				n = 1;
				if (s[i] < 0x20)
					return 0;
				if (s[i] == '\\' && i + 1 < len && s[i + 1] == 'u') {
					char hex[5] = {0};
					if (i + 6 > len || strspn(memcpy(hex, s + i + 2, 4), "0123456789abcdefABCDEF") != 4)
						return 0;
					unsigned long v = strtoul(hex, NULL, 16);
					if (v == 0 || v >= 0x80)
						return 0;
					n = 6;
				} else if (s[i] == '\\') {
					n = 2;
				} else if (s[i] >= 0x80 && (n = utf8_sequence(s + i, len - i)) == 0) {
					return 0;
				}
			}
			if (i >= len)
				return 0;
			i++;
		} else if (s[i] == '-' || (s[i] >= '0' && s[i] <= '9')) {
			if ((n = json_number(s + i, len - i)) == 0)
				return 0;
			i += n;
		} else if (s[i] && strchr(" \t\n\r{}[],:", s[i])) {
			i++;
		} else if (len - i >= 4 && (memcmp(s + i, "true", 4) == 0 || memcmp(s + i, "null", 4) == 0)) {
			i += 4;
		} else if (len - i >= 5 && memcmp(s + i, "false", 5) == 0) {
			i += 5;
		} else {
			return 0;
		}
	}
	return 1;
}

/* A JSON file as JSON.parse reads it (json_screen, then json-c in strict mode:
 * no comments, no trailing commas, nothing after the value); NULL when it does
 * not exist, Node's when damaged. */
static struct json_object *read_json(const char *path)
{
	size_t len;
	char *text = read_all(path, &len);
	if (!text)
		return NULL;
	if (!json_screen((const unsigned char *)text, len))
		slow();
	struct json_tokener *tok = json_tokener_new();
	if (!tok)
		slow();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	struct json_object *o = json_tokener_parse_ex(tok, text, (int)len);
	int ok = o && json_tokener_get_error(tok) == json_tokener_success;
	for (size_t end = ok ? json_tokener_get_parse_end(tok) : len; ok && end < len; end++)
		ok = strchr(" \t\n\r", text[end]) != NULL && text[end] != '\0';
	json_tokener_free(tok);
	free(text);
	if (!ok || !json_object_is_type(o, json_type_object))
		slow();
	return o;
}

/* o[key], with JSON null as NULL; *present says whether the key is there at all. */
static struct json_object *field(struct json_object *o, const char *key, int *present)
{
	struct json_object *v = NULL;
	int there = o && json_object_object_get_ex(o, key, &v);
	if (present)
		*present = there;
	return there ? v : NULL;
}

/* A string field: NULL for null or absent; anything but a string without NUL is Node's. */
static const char *string_or_null(struct json_object *o, const char *key)
{
	struct json_object *v = field(o, key, NULL);
	if (!v)
		return NULL;
	if (!json_object_is_type(v, json_type_string) || strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
		slow();
	return json_object_get_string(v);
}

static const char *string_field(struct json_object *o, const char *key)
{
	const char *s = string_or_null(o, key);
	if (!s)
		slow();
	return s;
}

/* An integer field, or null (*isnull); a fraction, an integer JavaScript would
 * round, or anything else is Node's. */
static long long int_or_null(struct json_object *o, const char *key, int *isnull)
{
	struct json_object *v = field(o, key, NULL);
	*isnull = v == NULL;
	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_int))
		slow();
	/* (json-c clamps what int64 cannot hold to its limits, which are past these too) */
	long long n = json_object_get_int64(v);
	if (n > SAFE_INTEGER || n < -SAFE_INTEGER)
		slow();
	return n;
}

/* JavaScript's truthiness of a JSON value. */
static int truthy(struct json_object *v)
{
	switch (v ? json_object_get_type(v) : json_type_null) {
	case json_type_null:
		return 0;
	case json_type_boolean:
		return json_object_get_boolean(v);
	case json_type_int:
		return json_object_get_int64(v) != 0;
	case json_type_double: {
		double d = json_object_get_double(v);
		return d != 0 && !isnan(d);
	}
	case json_type_string:
		return json_object_get_string_len(v) > 0;
	default:
		return 1;
	}
}

/* ---- time ---------------------------------------------------------------- */

/* Milliseconds since the epoch of an RFC 3339 UTC time as tsrun writes them
 * ("2026-11-22T01:02:03.123Z", the monitor's with nanoseconds), as
 * new Date(t).getTime() reads them: digits after the milliseconds do not count.
 * Any other form is Node's. */
static double parse_time(const char *t)
{
	int y, mo, d, h, mi, s, n = 0;
	if (strlen(t) < 20 || sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) != 6 || n != 19)
		slow();
	for (int i = 0; i < 19; i++)
		if ((i == 4 || i == 7) ? t[i] != '-' : i == 10 ? t[i] != 'T' : (i == 13 || i == 16) ? t[i] != ':' : (t[i] < '0' || t[i] > '9'))
			slow();
	const char *p = t + 19;
	double ms = 0;
	if (*p == '.') {
		int digits = 0;
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				ms += (*p - '0') * (digits == 0 ? 100 : digits == 1 ? 10 : 1);
		if (digits == 0)
			slow();
	}
	if (strcmp(p, "Z") != 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59)
		slow();
	/* days from 1970-01-01 (Howard Hinnant's days_from_civil); a day past the
	 * month's end runs into the next, as V8's does */
	int yy = y - (mo <= 2);
	int era = (yy >= 0 ? yy : yy - 399) / 400;
	int yoe = yy - era * 400;
	int doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	double days = (double)era * 146097 + doe - 719468;
	return ((days * 24 + h) * 60 + mi) * 60000.0 + s * 1000.0 + ms;
}

/* go-units' HumanDuration, as src/sys/human-duration.ts computes it (in doubles). */
static void human_duration(double ms, char *out, size_t len)
{
	double seconds = floor(ms / 1000);
	if (seconds < 1) {
		snprintf(out, len, "Less than a second");
		return;
	}
	if (seconds == 1) {
		snprintf(out, len, "1 second");
		return;
	}
	if (seconds < 60) {
		snprintf(out, len, "%.0f seconds", seconds);
		return;
	}
	double minutes = floor(seconds / 60);
	if (minutes == 1)
		snprintf(out, len, "About a minute");
	else if (minutes < 60)
		snprintf(out, len, "%.0f minutes", minutes);
	else {
		double hours = floor(ms / 3600000 + 0.5);
		if (hours == 1)
			snprintf(out, len, "About an hour");
		else if (hours < 48)
			snprintf(out, len, "%.0f hours", hours);
		else if (hours < 24 * 7 * 2)
			snprintf(out, len, "%.0f days", floor(hours / 24));
		else if (hours < 24 * 30 * 2)
			snprintf(out, len, "%.0f weeks", floor(hours / 24 / 7));
		else if (hours < 24 * 365 * 2)
			snprintf(out, len, "%.0f months", floor(hours / 24 / 30));
		else
			snprintf(out, len, "%.0f years", floor(ms / 3600000 / 24 / 365));
	}
}

static double now_ms;

/* list.ts statusText's since(): "" for no time. */
static const char *since(const char *t, char *out, size_t len)
{
	if (!t || !*t)
		*out = '\0';
	else
		human_duration(now_ms - parse_time(t), out, len);
	return out;
}

/* ---- one container ------------------------------------------------------- */

struct row {
	char dir[65]; /* its directory: the order of equal creation times */
	const char *created;
	char *cells[COLUMNS];
	size_t widths[COLUMNS];
	int listed;     /* running, paused or restarting: shown without -a */
	const char *status; /* observe()'s word: running, exited, ... */
	char *id;       /* the record's, whole */
	int ascii;      /* all it shows is ASCII (Node measures it as this program does), the command printable and needing no escape */
};

static int shown_all, quiet, no_trunc;

/* What formatTable counts: characters (code points); here ASCII and the one "…". */
static size_t width(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

static int ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 0;
	return 1;
}

static char *dup_or_die(const char *s)
{
	char *d = strdup(s);
	if (!d)
		slow();
	return d;
}

/* A file of the cgroup as fsio.ts readOptional reads it, trimmed at both ends;
 * NULL when it cannot be read. Anything but ASCII (trim() knows more white
 * space) and any \r (a line end to the regular expression below) is Node's. */
static char *cgroup_file(const char *dir, const char *name, char *out, size_t len)
{
	char path[PATH_MAX];
	int fd = open(path_in(path, dir, name), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	ssize_t n = read(fd, out, len - 1);
	close(fd);
	if (n < 0)
		return NULL;
	if ((size_t)n == len - 1)
		slow(); /* not a file the kernel writes */
	out[n] = '\0';
	if (!ascii(out) || strchr(out, '\r'))
		slow();
	while (n > 0 && strchr(" \t\n\v\f", out[n - 1]))
		out[--n] = '\0';
	return out + strspn(out, " \t\n\v\f");
}

/* freezer.ts frozenInKernel: 1 frozen, 0 thawed, -1 cannot tell. */
static int frozen_in_kernel(struct json_object *cgroups)
{
	char text[4096];
	const char *freezer = string_or_null(cgroups, "freezer"), *unified = string_or_null(cgroups, "unified"), *got;
	if (freezer && *freezer && (got = cgroup_file(freezer, "freezer.state", text, sizeof(text))))
		return strcmp(got, "THAWED") != 0;
	if (unified && *unified && (got = cgroup_file(unified, "cgroup.events", text, sizeof(text)))) {
		/* /^frozen (\d)$/m: the first such line */
		for (const char *line = got; line; line = strchr(line, '\n'), line = line ? line + 1 : NULL)
			if (strncmp(line, "frozen ", 7) == 0 && line[7] >= '0' && line[7] <= '9' && (line[8] == '\n' || line[8] == '\0'))
				return line[7] == '1';
	}
	return -1;
}

/* publish.ts formatPsPort of each mapping, joined with ", ". */
static char *ports_text(struct json_object *network)
{
	struct buf b = {0};
	puts_(&b, "");
	struct json_object *ports = field(network, "ports", NULL);
	if (!ports)
		return b.p;
	if (!json_object_is_type(ports, json_type_array))
		slow();
	for (size_t i = 0; i < json_object_array_length(ports); i++) {
		struct json_object *m = json_object_array_get_idx(ports, i);
		if (!json_object_is_type(m, json_type_object))
			slow();
		struct json_object *ip = field(m, "hostIp", NULL);
		const char *host = truthy(ip) ? string_field(m, "hostIp") : "0.0.0.0";
		int null1, null2;
		long long hp = int_or_null(m, "hostPort", &null1), cp = int_or_null(m, "containerPort", &null2);
		if (null1 || null2)
			slow();
		char numbers[64];
		snprintf(numbers, sizeof(numbers), ":%lld->%lld/", hp, cp);
		puts_(&b, i ? ", " : "");
		puts_(&b, host);
		puts_(&b, numbers);
		puts_(&b, string_field(m, "protocol"));
	}
	return b.p;
}

/* The row of one container (list.ts summarize of status.ts observe), or 0
 * when it has no container.json (a create in progress, or its debris). */
static int read_container(const char *id, const char *boot_id, struct row *r)
{
	char containers[PATH_MAX], dir[PATH_MAX], path[PATH_MAX];
	path_in(dir, path_in(containers, root, "containers"), id);
	struct json_object *record = read_json(path_in(path, dir, "container.json"));
	if (!record)
		return 0;
	struct json_object *state = read_json(path_in(path, dir, "state.json"));

	int present;
	if (truthy(field(state, "startingBy", NULL)))
		slow(); /* a start in progress, or one killed with -9: Node tells which */
	const char *started = string_or_null(state, "startedAt"), *finished = string_or_null(state, "finishedAt");
	int exit_null;
	long long exit_code = int_or_null(state, "exitCode", &exit_null);
	struct json_object *cleaned = field(state, "cleanedUp", &present);
	int cleaned_up = present ? truthy(cleaned) : 1;

	char monitor_text[8192];
	struct monitor m = {0};
	ssize_t mlen = read_file(path_in(path, dir, "status"), monitor_text, sizeof(monitor_text));
	int monitor = mlen >= 0;
	if (!monitor && errno != ENOENT)
		slow();
	/* half-overwritten on a full disk (Node reads it again), or not a file the monitor writes */
	if (monitor && ((size_t)mlen != strlen(monitor_text) || (size_t)mlen == sizeof(monitor_text) - 1 || !checksum_ok(monitor_text)))
		slow();
	if (monitor)
		read_monitor(monitor_text, &m);

	/* observe() */
	const char *status;
	long long code = 0;
	int code_null = 1, orphaned = 0, live_status_from_monitor = 0;
	char text[256], ago[64];
	if (!monitor || !started) {
		status = started ? "exited" : "created";
		code = exit_code, code_null = exit_null;
	} else {
		/* monitorAlive(): a monitor of another boot is gone, whatever runs under its pid now */
		const char *bid = string_or_null(state, "bootId");
		int alive = (!bid || strcmp(bid, boot_id) == 0) && monitor_alive(&m);
		int mexit_null = !*m.exit_code;
		long long mexit = mexit_null ? 0 : decimal(m.exit_code);
		if (alive && strcmp(m.status, "running") == 0) {
			/* absent: emptyState's {}; null or not an object: Node's (it would throw) */
			struct json_object *cg = field(state, "cgroupPaths", &present);
			if (present && (!cg || !json_object_is_type(cg, json_type_object)))
				slow();
			int frozen = frozen_in_kernel(cg);
			if (frozen < 0)
				frozen = truthy(field(state, "paused", NULL));
			status = frozen ? "paused" : "running";
			live_status_from_monitor = 1;
		} else if (alive && strcmp(m.status, "exited") != 0) {
			long long restarts = *m.restart_count ? decimal(m.restart_count) : 0;
			status = strcmp(m.status, "restarting") == 0 || restarts > 0 ? "restarting" : "created";
			code = mexit, code_null = mexit_null;
		} else if (strcmp(m.status, "exited") == 0) {
			status = "exited";
			code = mexit_null ? exit_code : mexit, code_null = mexit_null && exit_null;
			orphaned = !cleaned_up;
		} else {
			status = "exited";
			code = exit_null ? 255 : exit_code, code_null = 0;
			orphaned = !cleaned_up;
		}
	}
	if (orphaned)
		slow(); /* its resources are released by Node's ps before it lists */

	/* healthOf(): a healthcheck's status is in another file */
	struct json_object *options = field(record, "options", NULL);
	if (!options || !json_object_is_type(options, json_type_object))
		slow();
	if (field(options, "healthcheck", NULL) && started)
		slow();

	/* statusText() */
	if (strcmp(status, "created") == 0) {
		snprintf(text, sizeof(text), "Created");
	} else if (live_status_from_monitor) {
		since(*m.started ? m.started : started, ago, sizeof(ago));
		snprintf(text, sizeof(text), strcmp(status, "paused") == 0 ? "Up %s (Paused)" : "Up %s", ago);
	} else if (strcmp(status, "restarting") == 0) {
		snprintf(text, sizeof(text), "Restarting (%lld) %s ago", code_null ? 0 : code, since(m.finished, ago, sizeof(ago)));
	} else {
		since(monitor && *m.finished ? m.finished : finished, ago, sizeof(ago));
		snprintf(text, sizeof(text), "Exited (%lld) %s ago", code_null ? 0 : code, ago);
	}

	/* the row, as cli/ps.ts shows it */
	const char *cid = string_field(record, "id");
	snprintf(r->dir, sizeof(r->dir), "%s", id);
	r->created = dup_or_die(string_field(record, "created"));
	r->listed = strcmp(status, "running") == 0 || strcmp(status, "paused") == 0 || strcmp(status, "restarting") == 0;
	r->status = status;
	r->id = dup_or_die(cid);
	r->cells[0] = dup_or_die(cid);
	if (!no_trunc && strlen(cid) > 12)
		r->cells[0][12] = '\0';

	struct buf cmd = {0};
	puts_(&cmd, string_field(record, "path"));
	struct json_object *args = field(record, "args", NULL);
	if (!args || !json_object_is_type(args, json_type_array))
		slow();
	for (size_t i = 0; i < json_object_array_length(args); i++) {
		struct json_object *a = json_object_array_get_idx(args, i);
		if (!a || !json_object_is_type(a, json_type_string))
			slow();
		puts_(&cmd, " ");
		puts_(&cmd, json_object_get_string(a));
	}
	/* goQuote (cli/format.ts) escapes ", \ and control characters: a command with any is Node's */
	r->ascii = ascii(cid) && ascii(r->created) && ascii(text) && !strpbrk(cmd.p, "\"\\");
	for (const unsigned char *c = (const unsigned char *)cmd.p; *c && r->ascii; c++)
		r->ascii = *c >= 0x20 && *c < 0x7f;
	if (!no_trunc && strlen(cmd.p) > 20) {
		cmd.p[19] = '\0';
		cmd.len = 19;
		puts_(&cmd, "\xe2\x80\xa6"); /* … */
	}
	struct buf quoted = {0};
	puts_(&quoted, "\"");
	puts_(&quoted, cmd.p);
	puts_(&quoted, "\"");
	free(cmd.p);
	r->cells[1] = dup_or_die(string_field(record, "image"));
	r->cells[2] = quoted.p;
	human_duration(now_ms - parse_time(r->created), ago, sizeof(ago));
	struct buf created = {0};
	puts_(&created, ago);
	puts_(&created, " ago");
	r->cells[3] = created.p;
	r->cells[4] = dup_or_die(text);
	struct json_object *network = field(state, "network", NULL);
	if (network && !json_object_is_type(network, json_type_object))
		slow();
	r->cells[5] = live_status_from_monitor ? ports_text(network) : dup_or_die("");
	r->cells[6] = dup_or_die(string_field(record, "name"));
	r->ascii = r->ascii && ascii(r->cells[1]) && ascii(r->cells[5]) && ascii(r->cells[6]);
	for (int c = 0; c < COLUMNS; c++)
		r->widths[c] = width(r->cells[c]);

	json_object_put(record);
	json_object_put(state);
	return 1;
}

/* ---- the listing --------------------------------------------------------- */

/* Newest first (compareStrings on created); equal times in the order Node's
 * readdirSync gives the IDs (libuv sorts them with strcmp), as a stable sort keeps them. */
static int newest_first(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	int c = strcmp(y->created, x->created);
	return c ? c : strcmp(x->dir, y->dir);
}


/* All of it to stdout: a closed pipe ends ps quietly (exit 0), as out.ts does. */
static int write_out(const char *s, size_t len)
{
	signal(SIGPIPE, SIG_IGN);
	for (size_t done = 0; done < len;) {
		ssize_t n = write(1, s + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = {.fd = 1, .events = POLLOUT};
			poll(&p, 1, -1);
			continue;
		}
		if (n < 0 && errno == EPIPE)
			return 0;
		if (n < 0) {
			if (done == 0)
				slow(); /* nothing shown yet: Node says what is wrong */
			fprintf(stderr, "tsrun: cannot write the listing: %s\n", strerror(errno));
			return 125;
		}
		done += (size_t)n;
	}
	return 0;
}

/* ---- filters (cli/ps.ts) -------------------------------------------------- */

#define MAX_FILTERS 32
static struct filter {
	char key; /* s(tatus), i(d), n(ame) */
	const char *value;
	size_t holders; /* id: how many containers' IDs begin with it */
} filters[MAX_FILTERS];
static int nfilters;

/* A name filter this program can match: a name of [A-Za-z0-9_/-] with ^ before
 * and $ after it or not, which as docker's regular expression means what it
 * says; anything more of a regular expression goes to Node. */
static int plain_name_pattern(const char *v)
{
	size_t len = strlen(v), from = v[0] == '^', to = len > from && v[len - 1] == '$' ? len - 1 : len;
	for (size_t k = from; k < to; k++)
		if (!isalnum((unsigned char)v[k]) && !strchr("_/-", v[k]))
			return 0;
	return 1;
}

/* --filter's value: key=value, with a key and a value this program decides as
 * Node does; any other (label=, ancestor=, health=, a status Node refuses) to Node. */
static void add_filter(const char *f)
{
	static const char *statuses[] = {"created", "restarting", "running", "removing", "paused", "exited", "dead"};
	if (nfilters == MAX_FILTERS)
		slow();
	struct filter *x = &filters[nfilters++];
	if (!strncmp(f, "status=", 7)) {
		x->key = 's', x->value = f + 7;
		size_t k = 0;
		while (k < sizeof(statuses) / sizeof(*statuses) && strcmp(x->value, statuses[k]))
			k++;
		if (k == sizeof(statuses) / sizeof(*statuses))
			slow(); /* Node says which it takes */
	} else if (!strncmp(f, "id=", 3) && f[3] && strspn(f + 3, "0123456789abcdef") == strlen(f + 3)) {
		x->key = 'i', x->value = f + 3;
	} else if (!strncmp(f, "name=", 5) && plain_name_pattern(f + 5)) {
		x->key = 'n', x->value = f + 5;
	} else {
		slow();
	}
}

/* The pattern of plain_name_pattern() against one string, as a regular
 * expression would match it. */
static int name_pattern_matches(const char *pattern, const char *s)
{
	size_t len = strlen(pattern), slen = strlen(s);
	int start = pattern[0] == '^', end = len > (size_t)start && pattern[len - 1] == '$';
	size_t n = len - start - end;
	const char *lit = pattern + start;
	if (start && end)
		return slen == n && !strncmp(s, lit, n);
	if (start)
		return slen >= n && !strncmp(s, lit, n);
	if (end)
		return slen >= n && !strncmp(s + slen - n, lit, n);
	for (size_t k = 0; k + n <= slen; k++)
		if (!strncmp(s + k, lit, n))
			return 1;
	return 0;
}

static int filter_matches(const struct filter *x, const struct row *r)
{
	if (x->key == 's')
		return !strcmp(r->status, x->value);
	if (x->key == 'i') /* a prefix of one container's ID only, as docker's truncindex */
		return x->holders == 1 && !strncmp(r->id, x->value, strlen(x->value));
	const char *name = r->cells[6];
	if (!strcmp(x->value, name) || (x->value[0] == '/' && !strcmp(x->value + 1, name)))
		return 1; /* as it is, before it is a pattern (nameMatches) */
	/* docker's names begin with a slash: the name is tried with and without it */
	char slashed[256];
	if (snprintf(slashed, sizeof(slashed), "/%s", r->cells[6]) >= (int)sizeof(slashed))
		slow();
	return name_pattern_matches(x->value, r->cells[6]) || name_pattern_matches(x->value, slashed);
}

/* cli/ps.ts matches(): one of the values of a key matches, for every key given. */
static int passes(const struct row *r)
{
	for (const char *key = "sin"; *key; key++) {
		int given = 0, matched = 0;
		for (int k = 0; k < nfilters; k++)
			if (filters[k].key == *key) {
				given = 1;
				matched |= filter_matches(&filters[k], r);
			}
		if (given && !matched)
			return 0;
	}
	return 1;
}

int ps_main(int argc, char **argv, int i)
{
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-f") || !strcmp(a, "--filter")) {
			if (i + 1 == argc)
				slow(); /* Node says what is missing */
			add_filter(argv[++i]);
		} else if (!strncmp(a, "--filter=", 9))
			add_filter(a + 9);
		else if (!strcmp(a, "--all"))
			shown_all = 1;
		else if (!strcmp(a, "--quiet"))
			quiet = 1;
		else if (!strcmp(a, "--no-trunc"))
			no_trunc = 1;
		else if (a[0] == '-' && a[1] && a[1] != '-' && strspn(a + 1, "aq") == strlen(a + 1)) {
			shown_all |= strchr(a, 'a') != NULL;
			quiet |= strchr(a, 'q') != NULL;
		} else
			slow();
	}

	for (int k = 0; k < nfilters; k++)
		shown_all |= filters[k].key == 's'; /* as in Node: a status filter looks at all */

	char boot_id[64], path[PATH_MAX];
	if (read_file("/proc/sys/kernel/random/boot_id", boot_id, sizeof(boot_id)) <= 0)
		slow();
	boot_id[strcspn(boot_id, "\n")] = '\0';
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	now_ms = (double)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;

	struct row *rows = NULL;
	size_t n = 0, cap = 0;
	DIR *d = opendir(path_in(path, root, "containers"));
	if (!d && errno != ENOENT)
		slow();
	for (struct dirent *e; d && (errno = 0, e = readdir(d)) != NULL;) {
		if (strlen(e->d_name) != 64 || !is_hex(e->d_name, 64))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			rows = realloc(rows, cap * sizeof(*rows));
			if (!rows)
				slow();
		}
		if (read_container(e->d_name, boot_id, &rows[n]))
			n++;
	}
	if (d && errno)
		slow(); /* the listing broke off: Node says why */
	if (d)
		closedir(d);
	if (n > 1)
		qsort(rows, n, sizeof(*rows), newest_first);

	static const char *header[COLUMNS] = {"CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"};
	struct row top = {0};
	for (int c = 0; c < COLUMNS; c++)
		top.cells[c] = (char *)header[c], top.widths[c] = strlen(header[c]);
	/* the rows shown, after the header */
	size_t shown = 0;
	rows = realloc(rows, (n + 1) * sizeof(*rows));
	if (!rows)
		slow();
	memmove(rows + 1, rows, n * sizeof(*rows));
	rows[shown++] = top;
	for (int f = 0; f < nfilters; f++)
		for (size_t k = 1; filters[f].key == 'i' && k <= n; k++)
			filters[f].holders += !strncmp(rows[k].id, filters[f].value, strlen(filters[f].value));
	for (size_t k = 1; k <= n; k++) {
		if (!shown_all && !rows[k].listed)
			continue;
		if (!passes(&rows[k]))
			continue;
		if (!rows[k].ascii)
			slow();
		rows[shown++] = rows[k];
	}

	struct buf out = {0};
	puts_(&out, "");
	if (quiet) {
		for (size_t k = 1; k < shown; k++) {
			puts_(&out, rows[k].cells[0]);
			puts_(&out, "\n");
		}
		return write_out(out.p, out.len);
	}
	/* formatTable: each column its widest cell and 3 spaces, at least 10 (docker's tabwriter);
	 * the last column unpadded */
	size_t widths[COLUMNS] = {0};
	for (size_t k = 0; k < shown; k++)
		for (int c = 0; c < COLUMNS; c++)
			if (rows[k].widths[c] + 3 > widths[c])
				widths[c] = rows[k].widths[c] + 3;
	for (int c = 0; c < COLUMNS; c++)
		if (widths[c] < TABLE_MIN_WIDTH)
			widths[c] = TABLE_MIN_WIDTH;
	for (size_t k = 0; k < shown; k++) {
		for (int c = 0; c < COLUMNS; c++) {
			puts_(&out, rows[k].cells[c]);
			for (size_t pad = rows[k].widths[c]; c < COLUMNS - 1 && pad < widths[c]; pad++)
				puts_(&out, " ");
		}
		puts_(&out, "\n");
	}
	return write_out(out.p, out.len);
}
