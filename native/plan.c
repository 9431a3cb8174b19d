/*
 * plan.c: read and check the launch plan from fd 3.
 *
 * The plan is data written by TypeScript: one step per line, percent-encoded
 * fields. Everything is checked here, before clone(), so that a malformed
 * plan is an "error 0 plan ..." and never a half-built container.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/vfs.h>

#include "helper.h"

#include <sched.h>

static const struct { const char *name; unsigned long flag; } clone_names[] = {
	{"newns", CLONE_NEWNS},     {"newuts", CLONE_NEWUTS},
	{"newipc", CLONE_NEWIPC},   {"newpid", CLONE_NEWPID},
	{"newnet", CLONE_NEWNET},   {"newcgroup", CLONE_NEWCGROUP},
	{"newuser", CLONE_NEWUSER},
};

unsigned long plan_clone_flag(const char *name)
{
	for (size_t i = 0; i < sizeof(clone_names) / sizeof(*clone_names); i++)
		if (strcmp(clone_names[i].name, name) == 0)
			return clone_names[i].flag;
	return 0;
}

static int perr(char *err, size_t len, int lineno, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(err, len, "plan line %d: ", lineno);
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < len)
		vsnprintf(err + n, len - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* Split a line into fields at single spaces and decode each in place. */
static int split(char *line, struct step *st)
{
	int n = 1;
	for (char *p = line; *p; p++)
		n += *p == ' ';
	st->argv = calloc((size_t)n + 1, sizeof(char *));
	if (!st->argv)
		return -1;
	st->argc = 0;
	for (char *tok = line, *sp;; tok = sp + 1) {
		sp = strchr(tok, ' ');
		if (sp)
			*sp = '\0';
		if (pct_decode(tok) < 0)
			return -1;
		st->argv[st->argc++] = tok;
		if (!sp)
			break;
	}
	return 0;
}

static int bool01(const char *v, int *out)
{
	if (strcmp(v, "0") && strcmp(v, "1"))
		return -1;
	*out = v[0] == '1';
	return 0;
}

static int parse_ull(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return *end || errno || *out > max ? -1 : 0;
}

static int restart_policy(struct plan *p, const char *v)
{
	unsigned long long n;
	if (strcmp(v, "no") == 0)
		p->restart = RESTART_NO;
	else if (strcmp(v, "always") == 0)
		p->restart = RESTART_ALWAYS;
	else if (strcmp(v, "unless-stopped") == 0)
		p->restart = RESTART_UNLESS_STOPPED;
	else if (strncmp(v, "on-failure:", 11) == 0 && parse_ull(v + 11, 1u << 30, &n) == 0)
		p->restart = RESTART_ON_FAILURE, p->restart_max = (unsigned)n;
	else
		return -1;
	return 0;
}

/* `health <file> <interval-ns> <timeout-ns> <start-period-ns> <retries>`: docker's units */
static int health_line(struct plan *p, struct step *st, char *err, size_t errlen, int ln)
{
	unsigned long long v[4];
	for (int i = 0; i < 4; i++)
		if (parse_ull(st->argv[2 + i], 1ull << 62, &v[i]) < 0)
			return perr(err, errlen, ln, "health <file> <interval-ns> <timeout-ns> <start-period-ns> <retries>");
	if (st->argv[1][0] != '/' || v[0] == 0 || v[1] == 0 || v[3] == 0 || v[3] > 1u << 30)
		return perr(err, errlen, ln, "health: an absolute path, an interval, a timeout and retries above 0");
	p->health_path = st->argv[1];
	p->health_interval_ns = (long long)v[0];
	p->health_timeout_ns = (long long)v[1];
	p->health_start_period_ns = (long long)v[2];
	p->health_retries = (unsigned)v[3];
	return 0;
}

/* `health-step <step> <fields>...`: one step of the probe, checked as a child step is. */
static int health_step_line(struct plan *p, struct step *st, char *err, size_t errlen, int ln)
{
	const struct step_def *d = step_lookup(st->argv[1]);
	int nargs = st->argc - 2;
	if (!d)
		return perr(err, errlen, ln, "health-step: unknown step %s", st->argv[1]);
	if (nargs < d->min_args || (d->max_args >= 0 && nargs > d->max_args))
		return perr(err, errlen, ln, "health-step %s: wrong number of fields (%d)", st->argv[1], nargs);
	struct step *s = realloc(p->health_steps, sizeof(*s) * (size_t)(p->n_health_steps + 1));
	if (!s)
		return perr(err, errlen, ln, "out of memory");
	p->health_steps = s;
	s[p->n_health_steps++] = (struct step){.argv = st->argv + 1, .argc = st->argc - 1, .def = d};
	return 0;
}

/* Monitor lines and how many fields each takes. */
static const struct { const char *name; int nargs; } monitor_lines[] = {
	{"trace", 1}, {"tty", 1}, {"name", 1}, {"stdin", 1}, {"cgroup-procs", 1},
	{"clone", 1}, {"log", 3}, {"attach-stdio", 1}, {"status-file", 1},
	{"attach-socket", 1},
	{"restart", 1}, {"stop-file", 1}, {"pidns", 1}, {"netns", 1}, {"userns", 1},
	{"uid-map", 3}, {"gid-map", 3},
	{"exit-command", -1}, /* -1: one field or more */
	{"devices", -1},
	{"stdio", 1}, {"console-socket", 1}, {"exec-fifo", 1}, {"detach", 1},
	{"health", 5}, {"health-step", -1},
};

static int monitor_line(struct plan *p, struct step *st, char *err,
			size_t errlen, int ln)
{
	const char *k = st->argv[0];
	const char *v = st->argc > 1 ? st->argv[1] : "";
	size_t i;
	for (i = 0; i < sizeof(monitor_lines) / sizeof(*monitor_lines); i++)
		if (strcmp(monitor_lines[i].name, k) == 0)
			break;
	if (i == sizeof(monitor_lines) / sizeof(*monitor_lines))
		return perr(err, errlen, ln, "unknown monitor line %s (before clone)", k);
	if (monitor_lines[i].nargs < 0 ? st->argc < 2 : st->argc != monitor_lines[i].nargs + 1)
		return perr(err, errlen, ln, "%s takes %d field%s", k, monitor_lines[i].nargs < 0 ?
			    1 : monitor_lines[i].nargs, monitor_lines[i].nargs == 1 ? "" : "s");
	if (strcmp(k, "trace") == 0) {
		if (bool01(v, &p->trace) < 0)
			return perr(err, errlen, ln, "trace must be 0 or 1");
	} else if (strcmp(k, "tty") == 0) {
		if (bool01(v, &p->tty) < 0)
			return perr(err, errlen, ln, "tty must be 0 or 1");
	} else if (strcmp(k, "attach-stdio") == 0) {
		if (bool01(v, &p->attach) < 0)
			return perr(err, errlen, ln, "attach-stdio must be 0 or 1");
	} else if (strcmp(k, "attach-socket") == 0) {
		if (*v != '/')
			return perr(err, errlen, ln, "attach-socket needs an absolute path");
		p->attach_socket = v;
	} else if (strcmp(k, "name") == 0) {
		p->name = v;
	} else if (strcmp(k, "stdin") == 0) {
		if (strcmp(v, "inherit") && strcmp(v, "null"))
			return perr(err, errlen, ln, "stdin must be inherit or null");
		p->stdin_null = strcmp(v, "null") == 0;
	} else if (strcmp(k, "cgroup-procs") == 0) {
		char **a = realloc(p->cgroup_procs,
				   sizeof(char *) * (size_t)(p->n_cgroup_procs + 1));
		if (!a)
			return perr(err, errlen, ln, "out of memory");
		p->cgroup_procs = a;
		a[p->n_cgroup_procs++] = st->argv[1];
	} else if (strcmp(k, "log") == 0) {
		unsigned long long files;
		if (!*v || parse_ull(st->argv[2], ~0ull, &p->log_max_bytes) < 0 ||
		    parse_ull(st->argv[3], 1u << 20, &files) < 0)
			return perr(err, errlen, ln, "log <path> <max-bytes> <max-files>");
		p->log_path = v;
		p->log_max_files = (unsigned)files;
	} else if (strcmp(k, "uid-map") == 0 || strcmp(k, "gid-map") == 0) {
		char **map = k[0] == 'u' ? &p->uid_map : &p->gid_map;
		unsigned long long n[3];
		for (int i = 0; i < 3; i++)
			if (parse_ull(st->argv[1 + i], 0xffffffffull, &n[i]) < 0)
				return perr(err, errlen, ln, "%s <inside> <outside> <count>", k);
		size_t old = *map ? strlen(*map) : 0;
		char *m = realloc(*map, old + 3 * 11 + 1);
		if (!m)
			return perr(err, errlen, ln, "out of memory");
		snprintf(m + old, 3 * 11 + 1, "%llu %llu %llu\n", n[0], n[1], n[2]);
		*map = m;
	} else if (strcmp(k, "status-file") == 0 || strcmp(k, "stop-file") == 0 ||
		   strcmp(k, "pidns") == 0 || strcmp(k, "netns") == 0 || strcmp(k, "userns") == 0) {
		if (!*v)
			return perr(err, errlen, ln, "%s needs a path", k);
		if (strcmp(k, "status-file") == 0)
			p->status_path = v;
		else if (strcmp(k, "stop-file") == 0)
			p->stop_path = v;
		else if (strcmp(k, "netns") == 0)
			p->netns_path = v;
		else if (strcmp(k, "userns") == 0)
			p->userns_path = v;
		else
			p->pidns_path = v;
	} else if (strcmp(k, "devices") == 0) {
		int bad = devices_check_rules(st->argv + 1, st->argc - 1);
		if (bad >= 0)
			return perr(err, errlen, ln, "devices: bad rule %s (want <a|b|c>:<major|*>:<minor|*>:<rwm>)",
				    st->argv[1 + bad]);
		p->device_rules = st->argv + 1;
		p->n_device_rules = st->argc - 1;
	} else if (strcmp(k, "stdio") == 0) {
		if (strcmp(v, "pass") && strcmp(v, "pipes"))
			return perr(err, errlen, ln, "stdio must be pass or pipes");
		p->stdio_pass = strcmp(v, "pass") == 0;
	} else if (strcmp(k, "console-socket") == 0 || strcmp(k, "exec-fifo") == 0) {
		if (*v != '/')
			return perr(err, errlen, ln, "%s needs an absolute path", k);
		if (k[0] == 'c')
			p->console_socket = v;
		else
			p->exec_fifo = v;
	} else if (strcmp(k, "detach") == 0) {
		if (strcmp(v, "created") == 0)
			p->detach = DETACH_CREATED;
		else if (strcmp(v, "started") == 0)
			p->detach = DETACH_STARTED;
		else if (strcmp(v, "no"))
			return perr(err, errlen, ln, "detach must be no, created or started");
	} else if (strcmp(k, "exit-command") == 0) {
		if (!*v)
			return perr(err, errlen, ln, "exit-command needs a program");
		p->exit_command = st->argv + 1; /* split() ends argv with NULL */
	} else if (strcmp(k, "health") == 0) {
		return health_line(p, st, err, errlen, ln);
	} else if (strcmp(k, "health-step") == 0) {
		return health_step_line(p, st, err, errlen, ln);
	} else if (strcmp(k, "restart") == 0) {
		if (restart_policy(p, v) < 0)
			return perr(err, errlen, ln,
				    "restart must be no, always, unless-stopped or on-failure:<N>");
	} else if (strcmp(v, "-") != 0) { /* clone */
		char *list = strdup(v);
		for (char *save, *t = strtok_r(list, ",", &save); t;
		     t = strtok_r(NULL, ",", &save)) {
			unsigned long f = plan_clone_flag(t);
			if (!f) {
				perr(err, errlen, ln, "unknown clone flag %s", t);
				free(list);
				return -1;
			}
			p->clone_flags |= f;
		}
		free(list);
	}
	return 0;
}

int cgroup_dir(const char *procs, char *dir, size_t len)
{
	const char *slash = strrchr(procs, '/');
	if (!slash || (size_t)(slash - procs) >= len)
		return -1;
	memcpy(dir, procs, (size_t)(slash - procs));
	dir[slash - procs] = '\0';
	return 0;
}

int plan_cgroup2(const struct plan *p, char *dir, size_t len)
{
	for (int i = 0; i < p->n_cgroup_procs; i++) {
		struct statfs fs;
		if (cgroup_dir(p->cgroup_procs[i], dir, len) == 0 && statfs(dir, &fs) == 0 &&
		    fs.f_type == CGROUP2_SUPER_MAGIC)
			return i;
	}
	return -1;
}

int plan_read(int fd, struct plan *p, char *err, size_t errlen)
{
	int ln = 0, seen_clone = 0, cap = 0;
	memset(p, 0, sizeof(*p));
	p->attach = 1; /* output goes where it always went: our fds 1/2 */
	for (;;) {
		char *raw = proto_read_line();
		if (!raw) {
			int r = proto_fill(fd);
			if (r <= 0)
				return perr(err, errlen, ln + 1, r == 0 ?
					    "fd 3 closed before \"end\"" :
					    "reading fd 3: %s", errmsg(errno));
			continue;
		}
		ln++;
		char *line = strdup(raw); /* raw is only valid until the next read */
		struct step st;
		if (!line || split(line, &st) < 0)
			return perr(err, errlen, ln, "bad percent-encoding");
		const char *k = st.argv[0];
		if (ln == 1) {
			if (strcmp(k, "tsrun-plan") || st.argc != 2 || strcmp(st.argv[1], "1"))
				return perr(err, errlen, ln, "expected \"tsrun-plan 1\"");
			continue;
		}
		if (strcmp(k, "end") == 0)
			break;
		if (!seen_clone) {
			if (strcmp(k, "clone") == 0)
				seen_clone = 1;
			if (monitor_line(p, &st, err, errlen, ln) < 0)
				return -1;
			continue;
		}
		const struct step_def *d = step_lookup(k);
		if (!d)
			return perr(err, errlen, ln, "unknown step %s", k);
		int nargs = st.argc - 1;
		if (nargs < d->min_args || (d->max_args >= 0 && nargs > d->max_args))
			return perr(err, errlen, ln, "step %s: wrong number of fields (%d)",
				    k, nargs);
		if (p->n_steps == cap) {
			cap = cap ? cap * 2 : 64;
			struct step *s = realloc(p->steps, sizeof(*s) * (size_t)cap);
			if (!s)
				return perr(err, errlen, ln, "out of memory");
			p->steps = s;
		}
		st.def = d;
		p->steps[p->n_steps++] = st;
	}
	if (!seen_clone)
		return perr(err, errlen, ln, "no clone line");
	if (p->n_steps == 0 || strcmp(p->steps[p->n_steps - 1].argv[0], "exec"))
		return perr(err, errlen, ln, "the last step must be exec");
	if (p->health_path && (p->n_health_steps == 0 ||
			       strcmp(p->health_steps[p->n_health_steps - 1].argv[0], "exec")))
		return perr(err, errlen, ln, "the last health-step must be exec");
	return 0;
}
