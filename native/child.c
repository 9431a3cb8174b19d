/*
 * child.c: the container's first process, from clone() to execve().
 *
 * It joins its cgroups (the monitor does, for a child in a new user namespace),
 * waits until the monitor says "go" (tsrun has readied its network by then),
 * runs the plan's steps in order and execs. A failing step
 * sends (step, op, errno, message) to the monitor and exits: nothing of the
 * container's program ever runs in a half-built container.
 */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <limits.h>
#include <linux/magic.h>

#include "helper.h"

static struct child *C;

static void child_trace(const char *at, const char *text)
{
	imsg_send(C->sock, MSG_TRACE, C->step, -1, text, at, NULL);
}

static int vfail(struct child *c, int err, int with_errno, const char *fmt, va_list ap)
{
	int n = vsnprintf(c->err_msg, sizeof(c->err_msg), fmt, ap);
	if (with_errno && n >= 0 && (size_t)n < sizeof(c->err_msg))
		snprintf(c->err_msg + n, sizeof(c->err_msg) - (size_t)n, ": %s", errmsg(err));
	c->err_errno = err;
	return -1;
}

/* Record why the step failed ("<what>: <strerror>"); returns -1. */
int fail(struct child *c, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(c, err, 1, fmt, ap);
	va_end(ap);
	return -1;
}

/* The same with an exact message (exec's docker-compatible wording). */
int fail_msg(struct child *c, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(c, err, 0, fmt, ap);
	va_end(ap);
	return -1;
}

unsigned parse_octal(const char *s, int *ok)
{
	char *end;
	unsigned long v = strtoul(s, &end, 8);
	*ok = *s && !*end && v <= 07777;
	return (unsigned)v;
}

/* -------------------------------------------------------- the small steps */

static int step_setsid(struct child *c, char **a, int n)
{
	(void)a, (void)n;
	/* A new session: the container is not part of the user's terminal
	 * session, so ^C there or a terminal hangup does not reach it. */
	return TR(setsid(), "setsid()") < 0 ? fail(c, errno, "setsid") : 0;
}

static int step_sethostname(struct child *c, char **a, int n)
{
	(void)n;
	return TR(sethostname(a[0], strlen(a[0])), "sethostname(%s)", q(a[0])) < 0 ?
		fail(c, errno, "sethostname %s", a[0]) : 0;
}

static int step_propagation(struct child *c, char **a, int n)
{
	(void)n;
	/* clone(CLONE_NEWNS) copied the host's mounts with their propagation:
	 * with "shared" mounts (systemd's default) our mounts would appear on
	 * the host. MS_REC|MS_PRIVATE cuts that link for the whole tree. */
	unsigned long f = strcmp(a[0], "private") == 0 ? MS_PRIVATE :
			  strcmp(a[0], "slave") == 0 ? MS_SLAVE : 0;
	if (!f)
		return fail_msg(c, EINVAL, "propagation must be private or slave, not %s", a[0]);
	return TR(mount(NULL, "/", NULL, MS_REC | f, NULL), "mount(NULL, \"/\", NULL, %s, NULL)",
		  mount_flags_str(MS_REC | f)) < 0 ? fail(c, errno, "make / %s", a[0]) : 0;
}

static int step_chdir_host(struct child *c, char **a, int n)
{
	(void)n;
	return TR(chdir(a[0]), "chdir(%s)", q(a[0])) < 0 ? fail(c, errno, "chdir %s", a[0]) : 0;
}

static int step_chdir(struct child *c, char **a, int n)
{
	(void)n;
	char cwd[PATH_MAX];
	/* Resolved in root without magic links: a working directory such as
	 * /proc/self/fd/7 (a leaked host fd, CVE-2024-21626) cannot be used. */
	int fd = in_root(c, a[0], O_PATH | O_DIRECTORY, 0);
	if (fd < 0)
		return fail(c, errno, "chdir to %s", a[0]);
	if (TR(fchdir(fd), "fchdir(%d)", fd) < 0)
		return fail(c, errno, "chdir to %s", a[0]);
	close(fd);
	/* Belt and braces: the kernel's getcwd() says "(unreachable)/..." for
	 * a directory outside our root. (glibc's getcwd() hides that prefix,
	 * hence the raw syscall.) */
	long r = TR(syscall(SYS_getcwd, cwd, sizeof(cwd)), "getcwd(%s, %zu)",
		    q(cwd), sizeof(cwd));
	if (r < 0)
		return fail(c, errno, "getcwd after chdir to %s", a[0]);
	if (cwd[0] != '/')
		return fail_msg(c, EPERM, "working directory %s is outside the container", a[0]);
	return 0;
}

static const struct { const char *name; int res; } rlimits[] = {
#define R(x) {#x, x}
	R(RLIMIT_CPU),     R(RLIMIT_FSIZE),   R(RLIMIT_DATA),     R(RLIMIT_STACK),
	R(RLIMIT_CORE),    R(RLIMIT_RSS),     R(RLIMIT_NPROC),    R(RLIMIT_NOFILE),
	R(RLIMIT_MEMLOCK), R(RLIMIT_AS),      R(RLIMIT_LOCKS),    R(RLIMIT_SIGPENDING),
	R(RLIMIT_MSGQUEUE), R(RLIMIT_NICE),   R(RLIMIT_RTPRIO),   R(RLIMIT_RTTIME),
#undef R
};

static int rlim_value(const char *s, rlim_t *v)
{
	char *end;
	if (strcmp(s, "unlimited") == 0) {
		*v = RLIM_INFINITY;
		return 0;
	}
	*v = (rlim_t)strtoull(s, &end, 10);
	return *s && !*end ? 0 : -1;
}

static int step_rlimit(struct child *c, char **a, int n)
{
	(void)n;
	const char *name = strncasecmp(a[0], "rlimit_", 7) ? a[0] : a[0] + 7;
	struct rlimit rl;
	for (size_t i = 0; i < sizeof(rlimits) / sizeof(*rlimits); i++) {
		if (strcasecmp(name, rlimits[i].name + 7)) /* after "RLIMIT_" */
			continue;
		if (rlim_value(a[1], &rl.rlim_cur) || rlim_value(a[2], &rl.rlim_max))
			return fail_msg(c, EINVAL, "rlimit %s: bad value", a[0]);
		return TR(setrlimit(rlimits[i].res, &rl),
			  "prlimit64(0, %s, {rlim_cur=%s, rlim_max=%s}, NULL)",
			  rlimits[i].name, a[1], a[2]) < 0 ?
			fail(c, errno, "set rlimit %s", a[0]) : 0;
	}
	return fail_msg(c, EINVAL, "unknown rlimit %s", a[0]);
}

static int step_no_new_privs(struct child *c, char **a, int n)
{
	(void)a, (void)n;
	/* execve() can then never grant privileges: setuid bits and file
	 * capabilities are ignored from here on, in this process tree. */
	return TR(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS, 1)") < 0 ?
		fail(c, errno, "no_new_privs") : 0;
}

static int step_env(struct child *c, char **a, int n)
{
	(void)n;
	char **e = realloc(c->env, sizeof(char *) * (size_t)(c->nenv + 2));
	if (!e)
		return fail(c, ENOMEM, "env");
	c->env = e;
	e[c->nenv++] = a[0];
	e[c->nenv] = NULL;
	/* No syscall: a trace line all the same, so that every step shows. */
	trace_line("/* envp[%d] = %s, for execve */", c->nenv - 1, q(a[0]));
	return 0;
}

static const struct step_def steps[] = {
	{"setsid", 0, 0, step_setsid},         {"sethostname", 1, 1, step_sethostname},
	{"propagation", 1, 1, step_propagation}, {"chdir-host", 1, 1, step_chdir_host},
	{"mount", 5, 5, step_mount},           {"root", 1, 1, step_root},
	{"mkdir", 2, 2, step_mkdir},           {"touch", 2, 2, step_touch},
	{"mount-in", 5, 5, step_mount_in},     {"mknod", 5, 5, step_mknod},
	{"chown", 3, 3, step_chown},           {"symlink", 2, 2, step_symlink},
	{"pivot-root", 0, 0, step_pivot_root},
	{"mask", 1, 1, step_mask},             {"readonly", 1, 1, step_readonly},
	{"remount-ro", 1, 2, step_remount_ro}, {"console", 0, 0, step_console},
	{"rlimit", 3, 3, step_rlimit},         {"no-new-privs", 0, 0, step_no_new_privs},
	{"user", 3, 3, step_user},             {"caps", 2, 5, step_caps},
	{"seccomp", 1, 1, step_seccomp},       {"chdir", 1, 1, step_chdir},
	{"env", 1, 1, step_env},               {"init", 0, 0, step_init},
	{"exec", 1, -1, step_exec},            {"lo-up", 0, 0, step_lo_up},
	{"net-up", 4, 4, step_net_up},
	{"setns", 2, 2, step_setns},           {"idmap-mount", 1, 1, step_idmap_mount},
	{"sysctl", 2, 2, step_sysctl},         {"umask", 1, 1, step_umask},
	{"wait-start", 1, 1, step_wait_start}, {"hooks", 0, 0, step_hooks},
};

const struct step_def *step_lookup(const char *name)
{
	for (size_t i = 0; i < sizeof(steps) / sizeof(*steps); i++)
		if (strcmp(steps[i].name, name) == 0)
			return &steps[i];
	return NULL;
}

/* Whether the child joins its cgroups itself (see monitor.c): not from a new
 * user namespace, where it has no say over the host's cgroup files. */
int cgroup_self_attach(const struct plan *p)
{
	return !(p->clone_flags & CLONE_NEWUSER);
}

/* Join each cgroup of the plan that clone3 did not put us in at birth: the
 * `tasks` file of a cgroup v1 hierarchy with "0" (this thread alone: no
 * threadgroup lock to wait for), cgroup.procs of a cgroup2 one. */
static int join_cgroups(struct child *c)
{
	for (int i = 0; i < c->plan->n_cgroup_procs; i++) {
		const char *procs = c->plan->cgroup_procs[i];
		char path[4096 + 16], dir[4096];
		struct statfs fs;
		if (i == c->joined)
			continue;
		if (cgroup_dir(procs, dir, sizeof(dir)) < 0)
			return fail(c, EINVAL, "not a cgroup.procs path: %s", procs);
		int v1 = statfs(dir, &fs) == 0 && fs.f_type != CGROUP2_SUPER_MAGIC;
		snprintf(path, sizeof(path), "%s/%s", dir, v1 ? "tasks" : "cgroup.procs");
		int fd = (int)TR(open(path, O_WRONLY | O_CLOEXEC), "openat(AT_FDCWD, %s, O_WRONLY|O_CLOEXEC)", q(path));
		if (fd < 0 || TR(write(fd, "0", 1), "write(%d, \"0\", 1)", fd) != 1) {
			int e = errno;
			if (fd >= 0)
				close(fd);
			return fail(c, e, "join the cgroup %s", dir);
		}
		close(fd);
	}
	return 0;
}

_Noreturn void child_main(struct child *c, int nullfd)
{
	sigset_t none;
	char go;
	C = c;
	g_trace_sink = child_trace;
	/* Undo what the monitor set up for itself: blocked signals and an
	 * ignored SIGPIPE would otherwise survive execve() into the container. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	prctl(PR_SET_NAME, "tsrun-child", 0, 0, 0);
	/* Nothing of the monitor's own fds 0-2 (the caller's terminal) is
	 * passed on: stdin is the monitor's pipe (input.c) or /dev/null,
	 * stdout and stderr are pipes to it (logs.c); a `console` step later
	 * puts the PTY over all three. dup2() clears CLOEXEC on the copies;
	 * the monitor's own ends, its log file and the rest stay behind. */
	out_close_in_child();
	in_close();
	lifecycle_close_in_child();
	if (c->plan->stdio_pass) {
		/* runtime mode: the caller's fds 0-2 (conmon's or the shim's
		 * pipes) are the container's, as runc passes its own on. */
		close(nullfd);
	} else {
		dup2(c->in >= 0 ? c->in : nullfd, 0);
		if (c->in >= 0)
			close(c->in);
		close(nullfd);
		for (int i = 0; i < 2; i++) {
			dup2(c->out[i], 1 + i);
			close(c->out[i]);
		}
	}
	/* Modes in the plan are exact (/dev/null must be 0666); exec sets
	 * docker's 0022 back before execve(). */
	umask(0);
	/* While tsrun hears our pid and readies the network, not after "go". */
	if (cgroup_self_attach(c->plan) && join_cgroups(c) < 0) {
		imsg_send(c->sock, MSG_ERROR, 0, -1, "cgroup-procs", errname(c->err_errno), c->err_msg);
		_exit(125);
	}
	if (read(c->sock, &go, 1) != 1)
		_exit(125); /* the monitor is gone: never start */
	/* In a new user namespace we are nobody until the monitor has written
	 * our uid_map/gid_map (before "g"). While our host uid is still 0, open
	 * what idmap-mount steps will need (userns.c); then become the
	 * namespace's root, so files we create (a tmpfs /dev, ...) have an owner
	 * the kernel can map. */
	if (c->plan->clone_flags & CLONE_NEWUSER) {
		if (userns_open_targets(c) < 0) {
			imsg_send(c->sock, MSG_ERROR, 0, -1, "idmap-mount", errname(c->err_errno), c->err_msg);
			_exit(125);
		}
		if (TR(setresgid(0, 0, 0), "setresgid(0, 0, 0)") < 0 || TR(setresuid(0, 0, 0), "setresuid(0, 0, 0)") < 0) {
			fail(c, errno, "become root of the user namespace (uid_map/gid_map written?)");
			imsg_send(c->sock, MSG_ERROR, 0, -1, "clone", errname(c->err_errno), c->err_msg);
			_exit(125);
		}
	}
	/* Now in the container's cgroup: that becomes the cgroup namespace's
	 * root, so the container sees itself at "/" (see monitor.c). */
	if ((c->plan->clone_flags & CLONE_NEWCGROUP) &&
	    TR(unshare(CLONE_NEWCGROUP), "unshare(CLONE_NEWCGROUP)") < 0) {
		fail(c, errno, "unshare the cgroup namespace");
		imsg_send(c->sock, MSG_ERROR, 0, -1, "clone", errname(c->err_errno), c->err_msg);
		_exit(125);
	}
	/* Before any step can mount anything: the /proc through which
	 * mount_fd() names fds (mounts.c). */
	if (proc_open(c) < 0) {
		imsg_send(c->sock, MSG_ERROR, 0, -1, "proc", errname(c->err_errno), c->err_msg);
		_exit(125);
	}
	c->env = calloc(1, sizeof(char *));
	for (int i = 0; i < c->plan->n_steps; i++) {
		const struct step *st = &c->plan->steps[i];
		c->step = i + 1;
		snprintf(c->err_op, sizeof(c->err_op), "%s", st->argv[0]);
		if (st->def->run(c, st->argv + 1, st->argc - 1) < 0) {
			imsg_send(c->sock, MSG_ERROR, c->step, -1, c->err_op,
				  errname(c->err_errno), c->err_msg);
			_exit(c->exit_code);
		}
	}
	_exit(125); /* not reached: the plan ends with exec */
}
