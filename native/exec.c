/*
 * exec.c: the last step, execve() of the container's program.
 *
 * The environment is exactly the plan's `env` steps: nothing of the helper's
 * own environment (tsrun's, the user's shell's) reaches the container.
 * A bare name is searched in that environment's PATH, like Go's
 * exec.LookPath in runc, so errors read like docker's:
 *   exec: "nosuchcmd": executable file not found in $PATH      -> 127
 *   exec: "/etc/passwd": permission denied                     -> 126
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helper.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static const char *env_path(struct child *c)
{
	for (int i = 0; i < c->nenv; i++)
		if (strncmp(c->env[i], "PATH=", 5) == 0)
			return c->env[i] + 5;
	return DEFAULT_PATH;
}

/* First executable regular file named `file` in PATH. Returns 0 and fills
 * out, or an errno: ENOENT (nowhere), EACCES (found, not executable). */
static int look_path(struct child *c, const char *file, char *out, size_t len)
{
	int err = ENOENT;
	const char *p = env_path(c);
	for (;;) {
		size_t dl = strcspn(p, ":");
		struct stat st;
		/* an empty PATH element means the current directory */
		snprintf(out, len, "%.*s/%s", (int)(dl ? dl : 1), dl ? p : ".", file);
		if (stat(out, &st) == 0) {
			if (!S_ISDIR(st.st_mode) && faccessat(AT_FDCWD, out, X_OK, AT_EACCESS) == 0)
				return 0;
			err = EACCES;
		}
		if (!p[dl])
			return err;
		p += dl + 1;
	}
}

/* Every argument, whole; past what a trace line holds, how many are left out. */
static const char *argv_str(char **argv)
{
	static char b[TRACE_TEXT_MAX];
	char *w = b;
	int i;
	*w++ = '[';
	for (i = 0; argv[i]; i++) {
		const char *a = q(argv[i]);
		if (strlen(a) + 4 > (size_t)(b + sizeof(b) - 64 - w))
			break;
		w += snprintf(w, (size_t)(b + sizeof(b) - w), "%s%s", i ? ", " : "", a);
	}
	int rest = 0;
	while (argv[i + rest])
		rest++;
	if (rest)
		snprintf(w, (size_t)(b + sizeof(b) - w), "%s\xe2\x80\xa6(%d more)]", i ? ", " : "", rest);
	else
		strcpy(w, "]");
	return b;
}

static int exec_failed(struct child *c, const char *file, const char *path, int err)
{
	struct stat st;
	c->exit_code = exit_code_for("exec", errname(err));
	switch (err) {
	case ENOENT:
		if (stat(path, &st) < 0)
			return fail_msg(c, err, "exec: \"%s\": stat %s: no such file or directory",
					file, path);
		/* it is there: its #! interpreter or its ELF loader is not */
		return fail_msg(c, err, "exec: \"%s\": no such file or directory", file);
	case EACCES:
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			c->exit_code = 126;
			return fail_msg(c, EISDIR, "exec: \"%s\": is a directory", file);
		}
		return fail_msg(c, err, "exec: \"%s\": permission denied", file);
	case EPERM: /* e.g. a security module said no */
		return fail_msg(c, err, "exec: \"%s\": operation not permitted", file);
	case ENOEXEC:
		return fail_msg(c, err, "exec: \"%s\": exec format error", file);
	default:
		return fail(c, err, "exec: \"%s\"", file);
	}
}

/* The mode for files the container's program creates: docker's 0022, or
 * the `umask` step's (an OCI bundle's process.user.umask). */
static mode_t exec_umask = 022;

int step_umask(struct child *c, char **a, int n)
{
	(void)n;
	int ok;
	unsigned m = parse_octal(a[0], &ok);
	if (!ok || m > 0777)
		return fail_msg(c, EINVAL, "umask: bad mode %s", a[0]);
	exec_umask = (mode_t)m;
	trace_line("/* umask(0%03o) just before execve */", m);
	return 0;
}

int exec_lookup(struct child *c, const char *file, char *out, size_t len)
{
	struct stat st;
	if (!strchr(file, '/')) {
		int err = look_path(c, file, out, len);
		if (err == ENOENT) {
			c->exit_code = 127;
			return fail_msg(c, err, "exec: \"%s\": executable file not found in $PATH",
					file);
		}
		return err ? exec_failed(c, file, out, err) : 0;
	}
	snprintf(out, len, "%s", file);
	/* What execve() would say, asked beforehand (Go's LookPath for a path) */
	if (stat(file, &st) < 0)
		return exec_failed(c, file, file, errno);
	if (S_ISDIR(st.st_mode) || faccessat(AT_FDCWD, file, X_OK, AT_EACCESS) < 0)
		return exec_failed(c, file, file, EACCES);
	return 0;
}

/* runtime mode (`tsrun-runtime create`): the container is made and waits
 * here, before its program, until `start` writes a byte to the exec fifo.
 * `file` is checked first, so that a missing command fails `create` (with
 * exec's message and code), as runc's does: after `start` nobody could
 * hear of it. The monitor leaves once it hears we are ready (detach). */
int g_exec_fifo = -1;

int step_wait_start(struct child *c, char **a, int n)
{
	(void)n;
	char path[PATH_MAX], b;
	if (exec_lookup(c, a[0], path, sizeof(path)) < 0)
		return -1;
	if (g_exec_fifo < 0)
		return fail_msg(c, EINVAL, "wait-start without an exec-fifo line");
	trace_line("/* waiting on the exec fifo (fd %d) for `start` */", g_exec_fifo);
	imsg_send(c->sock, MSG_READY, c->step, -1, NULL, NULL, NULL);
	ssize_t r;
	do
		r = read(g_exec_fifo, &b, 1);
	while (r < 0 && errno == EINTR);
	if (r != 1)
		return fail(c, r < 0 ? errno : EPIPE, "wait for start on the exec fifo");
	close(g_exec_fifo);
	g_exec_fifo = -1;
	return 0;
}

/* runtime mode: the bundle's prestart/createRuntime hooks run now, with the
 * namespaces made and the root file system mounted, before pivot_root (the
 * runtime spec's moment). The monitor passes "hooks" on to tsrun-runtime,
 * which runs them and answers "hooks-done"; then we go on. */
int step_hooks(struct child *c, char **a, int n)
{
	(void)a, (void)n;
	char ack;
	trace_line("/* the hooks run now (tsrun-runtime) */");
	if (imsg_send(c->sock, MSG_HOOKS, c->step, -1, NULL, NULL, NULL) < 0)
		return fail(c, errno, "ask for the hooks");
	if (read(c->sock, &ack, 1) != 1 || ack != 'h')
		return fail_msg(c, EPIPE, "the hooks did not run (tsrun-runtime went away)");
	return 0;
}

int step_exec(struct child *c, char **a, int n)
{
	const char *file = a[0];
	char found[PATH_MAX];
	char *self[2] = {a[0], NULL};
	char **argv = n > 1 ? a + 1 : self; /* a[n] is the NULL after the fields */
	const char *path = file;
	if (!strchr(file, '/')) {
		if (exec_lookup(c, file, found, sizeof(found)) < 0)
			return -1;
		path = found;
	}
	umask(exec_umask);
	trace_line("execve(%s, %s, [%d var%s])", q(path), argv_str(argv), c->nenv,
		   c->nenv == 1 ? "" : "s");
	/* Tell the monitor that the next thing is execve(): from now on,
	 * EOF on our CLOEXEC socket means the exec worked. */
	imsg_send(c->sock, MSG_EXEC, c->step, -1, NULL, NULL, NULL);
	/* --preserve-fds N: the caller's fds 3.. (ours 4..) become the program's
	 * 3..; dup2() clears close-on-exec on them, nothing else is passed on. */
	for (int i = 0; i < g_preserve_fds; i++)
		if (dup2(4 + i, 3 + i) < 0)
			return fail(c, errno, "pass on preserved fd %d", 3 + i);
	execve(path, argv, c->env);
	return exec_failed(c, file, path, errno);
}
