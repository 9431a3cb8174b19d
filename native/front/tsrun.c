/*
 * tsrun: the command users run, in front of the TypeScript CLI (dist/tsrun.cjs).
 *
 * Node's own start is 50-110 ms, and `tsrun exec CONTAINER CMD` is run over and
 * over by scripts and CI jobs: through Node it costs more than docker's round
 * trip through its daemon. A plain exec needs nothing TypeScript decides each
 * time: the first exec Node carried out wrote the plan of a plain exec into the
 * container's directory (exec.plan, src/container/exec.ts writeExecTemplate),
 * with pid 0 in its namespace paths. This program fills in the container's pid
 * from the monitor's status file, the command and the flags below, and runs the
 * helper with that plan itself, speaking its protocol (native/README.md) as
 * src/namespaces/helper.ts does:
 *
 *   tsrun [--root DIR] exec [-i] [-t] [-e K[=V]]... [-w DIR] CONTAINER CMD [ARG...]
 *
 * It answers a plain `ps` too (ps.c: its own rules). For exec, anything
 * else — another command or flag (-u, -d, --privileged, --help, ...),
 * a container that is not plainly running (paused, restarting, its monitor
 * gone, not found, ambiguous), no exec.plan yet, not root, any doubt — is not
 * decided here: node runs dist/tsrun.cjs with the same arguments and says what
 * is wrong in its own words. Errors printed here are the ones the helper
 * reports once it has the plan, worded as tsrun words them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../shared/procstat.h"
#include "front.h"

#define MAX_TEMPLATE (4 << 20)

static char **args_given;
const char *root = "/var/lib/tsrun";

/* Where this program is: <pkg>/native/build/tsrun. Returns <pkg>. */
static const char *package_dir(void)
{
	static char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return NULL;
	self[n] = '\0';
	for (int up = 0; up < 3; up++) {
		char *slash = strrchr(self, '/');
		if (!slash)
			return NULL;
		*slash = '\0';
	}
	return self;
}

/* Node runs the TypeScript CLI with the arguments as given. */
_Noreturn void slow(void)
{
	static char script[PATH_MAX + 32];
	const char *pkg = package_dir();
	int argc = 0;
	while (args_given[argc])
		argc++;
	char **argv = calloc((size_t)argc + 2, sizeof(*argv));
	if (pkg && argv) {
		snprintf(script, sizeof(script), "%s/dist/tsrun.cjs", pkg);
		argv[0] = "node";
		argv[1] = script;
		for (int i = 1; i < argc; i++)
			argv[i + 1] = args_given[i];
		execvp("node", argv);
		fprintf(stderr, "tsrun: cannot run node %s: %s (tsrun needs Node.js >= 20 on PATH)\n", script, strerror(errno));
	} else {
		fprintf(stderr, "tsrun: cannot find dist/tsrun.cjs from /proc/self/exe\n");
	}
	exit(125);
}

/* ---- a growing buffer --------------------------------------------------- */

void put(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			slow();
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

/* One plan field, percent-encoded as plan.ts encodeField does. */
static void put_field(struct buf *b, const char *s)
{
	if (!*s) {
		puts_(b, "%");
		return;
	}
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '%' || *c < 0x21 || *c > 0x7e) {
			char hex[4];
			snprintf(hex, sizeof(hex), "%%%02X", *c);
			put(b, hex, 3);
		} else {
			put(b, (const char *)c, 1);
		}
	}
}

/* A field decoded in place (the helper's messages). */
static char *decode(char *s)
{
	if (strcmp(s, "%") == 0) {
		*s = '\0';
		return s;
	}
	char *w = s;
	for (char *r = s; *r; r++) {
		unsigned int v;
		if (*r == '%' && sscanf(r + 1, "%2X", &v) == 1) {
			*w++ = (char)v;
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
	return s;
}

/* dir/name into out (PATH_MAX); a path too long for it is Node's to report. */
char *path_in(char *out, const char *dir, const char *name)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
	if (n < 0 || n >= PATH_MAX)
		slow();
	return out;
}

ssize_t read_file(const char *path, char *out, size_t len)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t got = 0;
	for (;;) {
		ssize_t n = read(fd, out + got, len - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == len - 1)
			break;
	}
	close(fd);
	out[got] = '\0';
	return (ssize_t)got;
}

/* ---- which container, and is it plainly running ------------------------- */

int is_hex(const char *s, size_t max)
{
	size_t n = strspn(s, "0123456789abcdef");
	return n > 0 && n <= max && s[n] == '\0';
}

/* The container's id, as lookup.ts findContainer finds it; NULL: ask Node. */
static const char *container_id(const char *ref)
{
	static char id[65];
	char path[PATH_MAX], link[PATH_MAX];
	if (ref[0] == '/')
		ref++;
	if (!*ref || strchr(ref, '/') || strcmp(ref, ".") == 0 || strcmp(ref, "..") == 0)
		return NULL;
	char names[PATH_MAX];
	path_in(path, path_in(names, root, "names"), ref);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n > 0) {
		link[n] = '\0';
		const char *base = strrchr(link, '/');
		base = base ? base + 1 : link;
		if (strlen(base) != 64 || !is_hex(base, 64))
			return NULL;
		strcpy(id, base);
		return id;
	}
	if (errno != ENOENT && errno != EINVAL)
		return NULL;
	if (!is_hex(ref, 64))
		return NULL;
	path_in(path, root, "containers");
	DIR *d = opendir(path);
	if (!d)
		return NULL;
	int found = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (strlen(e->d_name) == 64 && is_hex(e->d_name, 64) && strncmp(e->d_name, ref, strlen(ref)) == 0) {
			if (found++)
				break; /* ambiguous: Node lists the candidates */
			strcpy(id, e->d_name);
		}
	}
	closedir(d);
	return found == 1 ? id : NULL;
}

/* A number the monitor wrote, as Number() reads it: only plain decimal
 * integers here ("-12", "007"); anything else is Node's. */
long long decimal(const char *v)
{
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (errno || *end || !(v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) || n > SAFE_INTEGER || n < -SAFE_INTEGER)
		slow();
	return n;
}

void read_monitor(char *text, struct monitor *m)
{
	struct {
		const char *key;
		char *value;
		size_t len;
	} wanted[] = {
		{"status", m->status, sizeof(m->status)},
		{"pid", m->pid, sizeof(m->pid)},
		{"monitor_pid", m->monitor_pid, sizeof(m->monitor_pid)},
		{"monitor_start_time", m->start_time, sizeof(m->start_time)},
		{"exit_code", m->exit_code, sizeof(m->exit_code)},
		{"started_at", m->started, sizeof(m->started)},
		{"finished_at", m->finished, sizeof(m->finished)},
		{"restart_count", m->restart_count, sizeof(m->restart_count)},
	};
	memset(m, 0, sizeof(*m));
	strcpy(m->status, "unknown"); /* no status line */
	char *end = strstr(text, "\n\n");
	if (end)
		*end = '\0';
	for (char *save, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');
		if (!eq || eq == line)
			continue;
		*eq = '\0';
		for (size_t k = 0; k < sizeof(wanted) / sizeof(*wanted); k++) {
			if (strcmp(line, wanted[k].key) != 0)
				continue;
			if (strlen(eq + 1) >= wanted[k].len)
				slow();
			strcpy(wanted[k].value, eq + 1);
		}
	}
}

int monitor_alive(const struct monitor *m)
{
	char now[32], letter;
	long long pid = *m->monitor_pid ? decimal(m->monitor_pid) : 0;
	/* a monitor killed but not yet reaped (Z) is not alive, as Node's check says */
	return pid > 0 && pid <= INT_MAX && proc_start_time((long)pid, now, sizeof(now), &letter) == 0 && letter != 'Z' &&
	       letter != 'X' && strcmp(now, m->start_time) == 0;
}

/* The checksum line checks out (record.ts checksumOk: FNV-1a of every byte up to it). */
int checksum_ok(const char *text)
{
	const char *at = strstr(text, "\nchecksum=");
	if (!at)
		return 0;
	unsigned int h = 0x811c9dc5u;
	for (const unsigned char *c = (const unsigned char *)text; c <= (const unsigned char *)at; c++)
		h = (h ^ *c) * 0x01000193u;
	char want[9];
	snprintf(want, sizeof(want), "%08x", h);
	return strncmp(at + 10, want, 8) == 0;
}

/* The container's first process while its monitor says it runs, and that
 * monitor is alive (its pid and start time); else 0. */
static long running_pid(const char *dir)
{
	char path[PATH_MAX], text[8192];
	struct monitor m;
	if (read_file(path_in(path, dir, "status"), text, sizeof(text)) <= 0 || !checksum_ok(text))
		return 0;
	read_monitor(text, &m);
	long long pid = *m.pid ? decimal(m.pid) : 0;
	if (strcmp(m.status, "running") != 0 || pid <= 0 || pid > INT_MAX || !monitor_alive(&m))
		return 0;
	return (long)pid;
}

/* ---- the plan ------------------------------------------------------------ */

/* The helper this front runs: TSRUN_HELPER, else <pkg>/native/build/tsrun-helper. */
static const char *helper_path(void)
{
	static char helper[PATH_MAX + 32];
	const char *pkg = package_dir();
	if (getenv("TSRUN_HELPER") && *getenv("TSRUN_HELPER"))
		snprintf(helper, sizeof(helper), "%s", getenv("TSRUN_HELPER"));
	else if (pkg)
		snprintf(helper, sizeof(helper), "%s/native/build/tsrun-helper", pkg);
	else
		slow();
	return helper;
}

/* "<size>-<mtime in ns>" of the helper, as exec.ts writes it: each build renames a new file in. */
static const char *helper_identity(void)
{
	static char id[64];
	struct stat st;
	if (stat(helper_path(), &st) < 0)
		slow();
	snprintf(id, sizeof(id), "%lld-%lld%09ld", (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	return id;
}

struct request {
	int interactive, tty;
	const char *workdir;
	char **env; /* KEY=VALUE, as given (after expanding a bare KEY) */
	int nenv;
	char **argv;
};

/* The encoded "KEY=" of an env entry: keys compare encoded, as '=' never is. */
static size_t key_len(const char *encoded)
{
	const char *eq = strchr(encoded, '=');
	return eq ? (size_t)(eq - encoded) : strlen(encoded);
}

/* The request's env entries, encoded; later ones for the same key win, at the
 * place of the first (a Map's set, as exec.ts merges them). */
static char **encoded_env(const struct request *r, int *n)
{
	char **out = calloc((size_t)r->nenv + 1, sizeof(*out));
	if (!out)
		slow();
	*n = 0;
	for (int i = 0; i < r->nenv; i++) {
		struct buf b = {0};
		put_field(&b, r->env[i]);
		int j;
		for (j = 0; j < *n; j++)
			if (key_len(out[j]) == key_len(b.p) && strncmp(out[j], b.p, key_len(b.p)) == 0)
				break;
		if (j < *n) {
			free(out[j]);
			out[j] = b.p;
		} else {
			out[(*n)++] = b.p;
		}
	}
	return out;
}

/* exec.plan, filled in for this request; NULL when it does not apply. */
static char *build_plan(const char *dir, long pid, const struct request *r)
{
	char path[PATH_MAX], *text = malloc(MAX_TEMPLATE);
	if (!text)
		return NULL;
	path_in(path, dir, "exec.plan");
	ssize_t size = read_file(path, text, MAX_TEMPLATE);
	if (size <= 0 || (size_t)size == MAX_TEMPLATE - 1 || strncmp(text, "tsrun-exec 1\n", 13) != 0)
		return NULL;

	char ns_from[] = "/proc/0/ns/", ns_to[64];
	snprintf(ns_to, sizeof(ns_to), "/proc/%ld/ns/", pid);
	int nenv;
	char **env = encoded_env(r, &nenv);
	char *used = calloc((size_t)nenv + 1, 1);
	struct buf out = {0};
	int in_plan = 0, after_clone = 0, setns_done = 0, env_zone = 0, has_term = 0, ended = 0, boot_ok = 0, helper_ok = 0;

	for (char *save, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char op[32];
		size_t oplen = strcspn(line, " ");
		if (oplen >= sizeof(op))
			return NULL;
		memcpy(op, line, oplen);
		op[oplen] = '\0';
		const char *rest = line[oplen] ? line + oplen + 1 : "";

		if (!in_plan) {
			/* The header: this boot's, and no freezer says frozen. */
			char value[PATH_MAX], got[256];
			if (strcmp(op, "tsrun-plan") == 0) {
				if (!boot_ok || !helper_ok)
					return NULL;
				in_plan = 1;
				puts_(&out, line);
				puts_(&out, "\n");
			} else if (strcmp(op, "boot") == 0) {
				snprintf(value, sizeof(value), "%s", rest);
				if (read_file("/proc/sys/kernel/random/boot_id", got, sizeof(got)) <= 0)
					return NULL;
				got[strcspn(got, "\n")] = '\0';
				if (strcmp(decode(value), got) != 0)
					return NULL;
				boot_ok = 1;
			} else if (strcmp(op, "helper") == 0) {
				/* The helper build the plan was written for: a rebuilt tsrun
				 * (an upgrade) goes to Node, which writes it anew. */
				snprintf(got, sizeof(got), "%s", helper_identity());
				if (strcmp(rest, got) != 0)
					return NULL;
				helper_ok = 1;
			} else if (strcmp(op, "freezer") == 0) {
				snprintf(value, sizeof(value), "%s", rest);
				if (read_file(decode(value), got, sizeof(got)) <= 0 || strncmp(got, "THAWED", 6) != 0)
					return NULL;
			} else if (strcmp(op, "events") == 0) {
				snprintf(value, sizeof(value), "%s", rest);
				if (read_file(decode(value), got, sizeof(got)) <= 0 || !strstr(got, "frozen 0"))
					return NULL;
			} else if (strcmp(op, "tsrun-exec") != 0) {
				return NULL; /* a header line this front does not know */
			}
			continue;
		}

		/* The env steps come after chdir: once they end, the request's new keys. */
		if (env_zone && strcmp(op, "env") != 0) {
			for (int i = 0; i < nenv; i++) {
				if (used[i])
					continue;
				puts_(&out, "env ");
				puts_(&out, env[i]);
				puts_(&out, "\n");
				if (key_len(env[i]) == 4 && strncmp(env[i], "TERM", 4) == 0)
					has_term = 1;
			}
			if (r->tty && !has_term)
				puts_(&out, "env TERM=xterm\n");
			env_zone = 0;
		}
		/* The console goes right after the namespaces are joined (exec.ts). */
		if (after_clone && !setns_done && strcmp(op, "setns") != 0) {
			setns_done = 1;
			if (r->tty)
				puts_(&out, "console\n");
		}

		if (strcmp(op, "stdin") == 0) {
			puts_(&out, r->interactive ? "stdin inherit\n" : "stdin null\n");
		} else if (strcmp(op, "tty") == 0) {
			puts_(&out, r->tty ? "tty 1\n" : "tty 0\n");
		} else if (strcmp(op, "pidns") == 0 || strcmp(op, "userns") == 0 || strcmp(op, "setns") == 0) {
			/* /proc/0/ns/<file> [type]: the running container's */
			if (strncmp(rest, ns_from, strlen(ns_from)) != 0)
				return NULL;
			puts_(&out, op);
			puts_(&out, " ");
			puts_(&out, ns_to);
			puts_(&out, rest + strlen(ns_from));
			puts_(&out, "\n");
		} else if (strcmp(op, "clone") == 0) {
			after_clone = 1;
			puts_(&out, line);
			puts_(&out, "\n");
		} else if (strcmp(op, "chdir") == 0) {
			puts_(&out, "chdir ");
			if (r->workdir)
				put_field(&out, r->workdir);
			else
				puts_(&out, rest);
			puts_(&out, "\n");
			env_zone = 1;
		} else if (strcmp(op, "env") == 0) {
			const char *value = rest;
			for (int i = 0; i < nenv; i++) {
				if (key_len(env[i]) == key_len(rest) && strncmp(env[i], rest, key_len(rest)) == 0) {
					value = env[i];
					used[i] = 1;
				}
			}
			if (key_len(value) == 4 && strncmp(value, "TERM", 4) == 0)
				has_term = 1;
			puts_(&out, "env ");
			puts_(&out, value);
			puts_(&out, "\n");
		} else if (strcmp(op, "exec") == 0) {
			/* exec <file> <argv0> <argv1>...: the file is looked up as argv[0] */
			puts_(&out, "exec ");
			put_field(&out, r->argv[0]);
			for (int i = 0; r->argv[i]; i++) {
				puts_(&out, " ");
				put_field(&out, r->argv[i]);
			}
			puts_(&out, "\n");
		} else if (strcmp(op, "end") == 0) {
			puts_(&out, "end\n");
			ended = 1;
			break;
		} else {
			puts_(&out, line);
			puts_(&out, "\n");
		}
	}
	/* No chdir, exec or end where the plan must have them: not a plan this front knows. */
	if (!ended || !setns_done || strstr(out.p, "\nchdir ") == NULL || strstr(out.p, "\nexec ") == NULL)
		return NULL;
	return out.p;
}

/* ---- the helper ---------------------------------------------------------- */

static pid_t helper_pid;

static void forward(int sig)
{
	if (helper_pid > 0)
		kill(helper_pid, sig);
}

static _Noreturn void fail(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("tsrun: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs("\n", stderr);
	va_end(ap);
	exit(code);
}

/* "error <step> <op> <errno> <message...>", as helper.ts stepError words it. */
static _Noreturn void step_error(char *fields)
{
	static char unknown[3][2] = {"?", "?", "?"};
	char *f[3], *save = NULL;
	for (int i = 0; i < 3; i++) {
		char *w = strtok_r(i ? NULL : fields, " ", &save);
		f[i] = w ? decode(w) : unknown[i];
	}
	struct buf msg = {0};
	for (char *w; (w = strtok_r(NULL, " ", &save));) {
		if (msg.len)
			puts_(&msg, " ");
		puts_(&msg, decode(w));
	}
	const char *m = msg.p ? msg.p : "";
	if (strcmp(f[1], "exec") == 0 || strcmp(f[1], "wait-start") == 0) {
		if (strcmp(f[2], "ENOENT") == 0)
			fail(127, "failed to start the container: %s", m);
		if (!strcmp(f[2], "EACCES") || !strcmp(f[2], "ENOEXEC") || !strcmp(f[2], "EISDIR") || !strcmp(f[2], "EPERM"))
			fail(126, "failed to start the container: %s", m);
	}
	fail(125, "failed to start the container: step %s (%s): %s (%s)", f[0], f[1], m, f[2]);
}

static int run_helper(const char *plan, const char *dir)
{
	const char *helper = helper_path();
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		slow();
	/* Signals that arrive from here on go to the helper, which passes them on. */
	struct sigaction sa = {.sa_handler = forward, .sa_flags = SA_RESTART};
	sigemptyset(&sa.sa_mask);
	const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH};
	sigset_t block, old;
	sigemptyset(&block);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(*sigs); i++)
		sigaddset(&block, sigs[i]);
	sigprocmask(SIG_BLOCK, &block, &old);
	pid_t pid = fork();
	if (pid < 0)
		slow();
	if (pid == 0) {
		/* Its own session, as helper.ts starts it: the terminal's Ctrl-C reaches us, and we forward it once. */
		setsid();
		if (sv[1] == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(sv[1], 3) < 0)
			_exit(125);
		/* As Node's spawn leaves them: every signal's default action, none blocked (a
		 * shell starts background jobs with SIGINT and SIGQUIT ignored: the helper would
		 * never hear one, and the command would start ignoring it). */
		for (int s = 1; s < NSIG; s++)
			if (s != SIGKILL && s != SIGSTOP)
				signal(s, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execl(helper, helper, (char *)NULL);
		fprintf(stderr, "tsrun: cannot run the native helper %s: %s\n", helper, strerror(errno));
		_exit(125);
	}
	helper_pid = pid;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(*sigs); i++)
		sigaction(sigs[i], &sa, NULL);
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(sv[1]);
	int fd = sv[0];
	signal(SIGPIPE, SIG_IGN);

	size_t left = strlen(plan);
	for (const char *p = plan; left > 0;) {
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* the helper is gone: its EOF says so below */
		p += n;
		left -= (size_t)n;
	}

	const char *expecting = "pid";
	static char in[1 << 16];
	size_t have = 0;
	for (;;) {
		char *nl;
		while ((nl = memchr(in, '\n', have))) {
			*nl = '\0';
			char *line = in, *rest = strchr(line, ' ');
			if (rest)
				*rest++ = '\0';
			if (strcmp(line, "error") == 0) {
				waitpid(pid, NULL, 0);
				/* The helper refused the plan itself (step 0, before any clone):
				 * nothing ran. A plan it cannot read is not used again; Node's
				 * exec writes it anew, and says what is wrong if anything is. */
				if (rest && strncmp(rest, "0 plan ", 7) == 0) {
					char path[PATH_MAX];
					unlink(path_in(path, dir, "exec.plan"));
					slow();
				}
				step_error(rest ? rest : (char *)"");
			} else if (strcmp(line, expecting) == 0 && strcmp(line, "pid") == 0) {
				if (write(fd, "go\n", 3) != 3)
					fail(125, "the native helper stopped before reporting \"started\"");
				expecting = "started";
			} else if (strcmp(line, expecting) == 0 && strcmp(line, "started") == 0) {
				expecting = "exit";
			} else if (strcmp(line, expecting) == 0 && strcmp(line, "exit") == 0) {
				int code = rest ? atoi(rest) : 125;
				close(fd);
				while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
					;
				return code;
			} else if (strcmp(line, "trace") != 0) {
				fail(125, "the native helper sent \"%s\" while tsrun waited for \"%s\"", line, expecting);
			}
			have -= (size_t)(nl + 1 - in);
			memmove(in, nl + 1, have);
		}
		if (have == sizeof(in))
			fail(125, "the native helper sent a line too long");
		ssize_t n = read(fd, in + have, sizeof(in) - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fail(125, "the native helper stopped before reporting \"%s\"", expecting);
		have += (size_t)n;
	}
}

/* ---- the command line ---------------------------------------------------- */

/* exec's flags before CONTAINER, as cli/exec.ts takes them (commander): -i, -t
 * and -it/-ti, -e/--env, -w/--workdir; anything else is Node's. */
static int parse_exec(int argc, char **argv, int i, struct request *r, const char **ref)
{
	r->env = calloc((size_t)argc, sizeof(*r->env));
	if (!r->env)
		return -1;
	for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *a = argv[i], *value = NULL;
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (!strcmp(a, "-i") || !strcmp(a, "--interactive"))
			r->interactive = 1;
		else if (!strcmp(a, "-t") || !strcmp(a, "--tty"))
			r->tty = 1;
		else if (!strcmp(a, "-it") || !strcmp(a, "-ti"))
			r->interactive = r->tty = 1;
		else if (!strcmp(a, "-e") || !strcmp(a, "--env") || !strcmp(a, "-w") || !strcmp(a, "--workdir")) {
			if (i + 1 >= argc)
				return -1;
			value = argv[++i];
		} else if (!strncmp(a, "--env=", 6) || !strncmp(a, "--workdir=", 10))
			value = strchr(a, '=') + 1;
		else
			return -1;
		if (value && (a[1] == 'e' || !strncmp(a, "--env", 5))) {
			/* expandEnv: KEY=VALUE as it is; a bare KEY takes tsrun's own value, or nothing */
			size_t k = strcspn(value, "=");
			if (k == 0 || strcspn(value, " \t\n\r\v\f") < k)
				return -1; /* an empty name, or one with spaces: Node says what is wrong */
			if (value[k] == '=') {
				r->env[r->nenv++] = (char *)value;
			} else if (getenv(value)) {
				size_t n = k + strlen(getenv(value)) + 2;
				char *kv = malloc(n);
				if (!kv)
					return -1;
				snprintf(kv, n, "%s=%s", value, getenv(value));
				r->env[r->nenv++] = kv;
			}
		} else if (value) {
			r->workdir = value;
		}
	}
	if (i + 1 >= argc)
		return -1; /* no command: Node prints the usage */
	*ref = argv[i];
	r->argv = argv + i + 1;
	return 0;
}

/* An absolute path without "." or ".." in it: Node resolve()s those by the text,
 * the kernel through symlinks, and the two can name different directories. */
static int plain_path(const char *path)
{
	if (path[0] != '/')
		return 0;
	for (const char *c = path; *c; c += strcspn(c, "/")) {
		c += strspn(c, "/");
		size_t n = strcspn(c, "/");
		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
	}
	return 1;
}

int main(int argc, char **argv)
{
	args_given = argv;
	/* A rootless store and its user namespace are Node's business (so is root in tsrun's own
	 * user namespace, TSRUN_USERNS: src/rootless.ts). */
	if (geteuid() != 0 || getenv("TSRUN_USERNS"))
		slow();
	/* Node opens /dev/null on a closed fd 0-2 before anything else; so must we, or the
	 * socket to the helper could take one of them. */
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			slow();
	/* A test hook Node warns about in every command (cli/program.ts). */
	if (getenv("TSRUN_TEST_OMIT_STEPS") && *getenv("TSRUN_TEST_OMIT_STEPS"))
		slow();
	/* Set, even empty (resolve('') is the current directory), TSRUN_ROOT counts for Node. */
	if (getenv("TSRUN_ROOT"))
		root = getenv("TSRUN_ROOT");
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--root") == 0 && i + 1 < argc)
			root = argv[++i];
		else if (strncmp(argv[i], "--root=", 7) == 0)
			root = argv[i] + 7;
		else
			slow(); /* -D, --insecure-registry, --version, --help: Node's */
	}
	if (i >= argc || !plain_path(root))
		slow();
#ifndef TSRUN_FRONT_NO_PS
	if (strcmp(argv[i], "ps") == 0)
		return ps_main(argc, argv, i + 1);
#endif
	if (strcmp(argv[i], "exec") != 0)
		slow();
	struct request r = {0};
	const char *ref;
	if (parse_exec(argc, argv, i + 1, &r, &ref) < 0)
		slow();
	const char *id = container_id(ref);
	if (!id)
		slow();
	char containers[PATH_MAX], dir[PATH_MAX];
	path_in(dir, path_in(containers, root, "containers"), id);
	long pid = running_pid(dir);
	char *plan = pid > 0 ? build_plan(dir, pid, &r) : NULL;
	if (!plan)
		slow();
	return run_helper(plan, dir);
}
