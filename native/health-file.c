/*
 * health-file.c: the healthcheck's results as a file (health.c runs the probes).
 *
 * JSON in docker's shape for `inspect`'s State.Health, written to a temp file
 * and renamed over the last one, as the status file is (status.c): a reader
 * sees the old file or the new one, never half of one. On a full disk the
 * write fails and the last file stays: unlike an exit code, a health status
 * the next probe will write again is not worth status.c's in-place rewrite.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "helper.h"

/* A small buffered writer: the file can be ~120 KiB of escaped output, and
 * the monitor's memory should not grow by that much to write it. */
struct jw {
	int fd, err;
	size_t n;
	char b[2048];
};

static void jw_flush(struct jw *w)
{
	if (w->n && !w->err && write_all(w->fd, w->b, w->n) < 0)
		w->err = 1;
	w->n = 0;
}

static void jw_put(struct jw *w, const char *s, size_t n)
{
	while (n--) {
		if (w->n == sizeof(w->b))
			jw_flush(w);
		w->b[w->n++] = *s++;
	}
}

static void jw_str(struct jw *w, const char *s) { jw_put(w, s, strlen(s)); }

/* A JSON string. Bytes above 0x7f pass as they are: UTF-8 stays UTF-8, and
 * a reader decoding as UTF-8 turns a stray byte into U+FFFD, as Go's
 * encoder (docker's) does. */
static void jw_quoted(struct jw *w, const char *s, size_t n, const char *tail)
{
	jw_put(w, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		char esc[8] = "\\u00";
		if (ch == '"' || ch == '\\') {
			esc[1] = (char)ch;
			jw_put(w, esc, 2);
		} else if (ch == '\n' || ch == '\t' || ch == '\r') {
			esc[1] = ch == '\n' ? 'n' : ch == '\t' ? 't' : 'r';
			jw_put(w, esc, 2);
		} else if (ch < 0x20 || ch == 0x7f) {
			esc[4] = "0123456789abcdef"[ch >> 4];
			esc[5] = "0123456789abcdef"[ch & 15];
			jw_put(w, esc, 6);
		} else {
			jw_put(w, (const char *)&s[i], 1);
		}
	}
	jw_str(w, tail);
	jw_put(w, "\"", 1);
}

/*
 * {"Status":"healthy","FailingStreak":0,"Log":[{"Start":"...","End":"...",
 *  "ExitCode":0,"Output":"..."}]}: what `inspect` shows as State.Health.
 */
void health_file_write(const char *path, const char *tmp_path, const char *state, unsigned streak,
		       const struct health_result *results, int nresults)
{
	char num[16], t[40];
	struct jw w = {.fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0644)};
	if (w.fd < 0)
		return;
	jw_str(&w, "{\"Status\":\"");
	jw_str(&w, state);
	jw_str(&w, "\",\"FailingStreak\":");
	jw_str(&w, itoa_s(num, streak));
	jw_str(&w, ",\"Log\":[");
	for (int i = 0; i < nresults; i++) {
		const struct health_result *r = &results[i];
		jw_str(&w, i ? ",{\"Start\":\"" : "{\"Start\":\"");
		jw_str(&w, rfc3339(t, &r->start));
		jw_str(&w, "\",\"End\":\"");
		jw_str(&w, rfc3339(t, &r->end));
		jw_str(&w, "\",\"ExitCode\":");
		jw_str(&w, itoa_s(num, r->exit_code));
		jw_str(&w, ",\"Output\":");
		/* docker's limitedBuffer: what was kept, then "..." if there was more */
		jw_quoted(&w, r->out, r->len, r->truncated ? "..." : "");
		jw_str(&w, "}");
	}
	jw_str(&w, "]}\n");
	jw_flush(&w);
	if (w.err || close(w.fd) < 0 || rename(tmp_path, path) < 0)
		unlink(tmp_path); /* the last file stays */
}

/* Go's time.Duration.String() ("300ms", "1m30s", "1.5s"): docker's words
 * for a timeout, "Health check exceeded timeout (300ms)". */
void go_duration(char out[48], long long ns)
{
	char frac[16];
	const char *unit = "s";
	long long whole, part, scale;
	if (ns < 1000) {
		snprintf(out, 48, "%lldns", ns);
		return;
	}
	if (ns < 1000000)
		unit = "\xc2\xb5s", scale = 1000;
	else if (ns < 1000000000)
		unit = "ms", scale = 1000000;
	else
		scale = 1000000000;
	whole = ns / scale, part = ns % scale;
	frac[0] = '\0';
	if (part) {
		int digits = scale == 1000 ? 3 : scale == 1000000 ? 6 : 9;
		snprintf(frac, sizeof(frac), ".%0*lld", digits, part);
		for (char *e = frac + strlen(frac) - 1; *e == '0'; e--)
			*e = '\0';
	}
	if (scale < 1000000000) {
		snprintf(out, 48, "%lld%s%s", whole, frac, unit);
		return;
	}
	long long h = whole / 3600, m = whole / 60 % 60, s = whole % 60;
	if (h)
		snprintf(out, 48, "%lldh%lldm%lld%ss", h, m, s, frac);
	else if (m)
		snprintf(out, 48, "%lldm%lld%ss", m, s, frac);
	else
		snprintf(out, 48, "%lld%ss", s, frac);
}
