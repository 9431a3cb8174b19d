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

static const char *argv_str(char **argv)
{
	static char b[2048];
	char *w = b;
	*w++ = '[';
	for (int i = 0; argv[i] && w < b + sizeof(b) - 64; i++) {
		if (i == 8) {
			w = stpcpy(w, ", ...");
			break;
		}
		w += snprintf(w, (size_t)(b + sizeof(b) - w), "%s%s", i ? ", " : "", qs(argv[i]));
	}
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

int step_exec(struct child *c, char **a, int n)
{
	const char *file = a[0];
	char found[PATH_MAX];
	char *self[2] = {a[0], NULL};
	char **argv = n > 1 ? a + 1 : self; /* a[n] is the NULL after the fields */
	const char *path = file;
	if (!strchr(file, '/')) {
		int err = look_path(c, file, found, sizeof(found));
		if (err == ENOENT) {
			c->exit_code = 127;
			return fail_msg(c, err, "exec: \"%s\": executable file not found in $PATH",
					file);
		}
		if (err)
			return exec_failed(c, file, found, err);
		path = found;
	}
	/* The mode for files the container creates, as docker gives it. */
	umask(022);
	trace_line("execve(%s, %s, [%d var%s])", q(path), argv_str(argv), c->nenv,
		   c->nenv == 1 ? "" : "s");
	/* Tell the monitor that the next thing is execve(): from now on,
	 * EOF on our CLOEXEC socket means the exec worked. */
	imsg_send(c->sock, MSG_EXEC, c->step, -1, NULL, NULL, NULL);
	execve(path, argv, c->env);
	return exec_failed(c, file, path, errno);
}
