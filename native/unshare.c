/*
 * unshare.c: `tsrun-helper --userns-exec`, rootless tsrun's way in.
 *
 *   tsrun-helper --userns-exec <uid-map> <gid-map> <file> <argv0> <args>...
 *
 * An ordinary user may create a user namespace, but may map only its own
 * uid into it. The setuid newuidmap/newgidmap of shadow-utils (Debian's
 * `uidmap`) also map the ranges /etc/subuid and /etc/subgid give the user.
 * So: clone a child into a new user and mount namespace, have newuidmap and
 * newgidmap write its maps, and let it exec <file> (tsrun itself) as root of
 * that namespace. There tsrun can unpack layers with their owners, mount
 * overlays and make the containers' namespaces (podman's `unshare` does the
 * same). The maps are "inside:outside:count" triples, comma-separated, as
 * newuidmap takes them.
 *
 * We stay as the child's parent: its exit status is ours, and the signals
 * a terminal or a supervisor sends us are passed on.
 */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helper.h"

static pid_t child = -1;

/* Pass on what was sent to us alone (kill, a supervisor, tsrun's own
 * forwarding). What the terminal sends (Ctrl-C, a resize) reaches the whole
 * foreground process group, the child included: passing it on would deliver
 * it twice. */
static void forward(int sig, siginfo_t *info, void *ctx)
{
	(void)ctx;
	if (child > 0 && info->si_code <= 0)
		kill(child, sig);
}

/* newuidmap <pid> <inside> <outside> <count>... from "a:b:c,d:e:f". */
static int run_map_tool(const char *tool, pid_t pid, const char *map)
{
	char *argv[3 + 3 * 340 + 1], pidstr[16], *copy = strdup(map);
	int n = 0;
	argv[n++] = (char *)tool;
	argv[n++] = itoa_s(pidstr, pid);
	for (char *save, *t = strtok_r(copy, ",:", &save); t && n < (int)(sizeof(argv) / sizeof(*argv)) - 1;
	     t = strtok_r(NULL, ",:", &save))
		argv[n++] = t;
	argv[n] = NULL;
	pid_t p = fork();
	if (p == 0) {
		execvp(tool, argv);
		fprintf(stderr, "tsrun: rootless: cannot run %s: %s (install the uidmap package)\n", tool,
			strerror(errno));
		_exit(127);
	}
	int status = 0, r = -1;
	if (p > 0)
		while ((r = (int)waitpid(p, &status, 0)) < 0 && errno == EINTR)
			;
	if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "tsrun: rootless: %s %s failed; does /etc/sub%cid give this user that range?\n",
			tool, map, tool[3]);
		free(copy);
		return -1;
	}
	free(copy);
	return 0;
}

int userns_exec_main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: tsrun-helper --userns-exec <uid-map> <gid-map> <file> <argv0> [args...]\n");
		return 125;
	}
	const char *uid_map = argv[0], *gid_map = argv[1], *file = argv[2];
	int go[2];
	if (pipe2(go, O_CLOEXEC) < 0)
		return perror("tsrun: pipe"), 125;
	child = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
	if (child < 0) {
		fprintf(stderr, "tsrun: rootless: cannot create a user namespace: %s%s\n", strerror(errno),
			errno == EPERM || errno == ENOSPC ?
			" (kernel.unprivileged_userns_clone, user.max_user_namespaces or an AppArmor rule forbid it)" : "");
		return 125;
	}
	if (child == 0) {
		char c;
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(125); /* the maps could not be written */
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
			perror("tsrun: rootless: become root of the user namespace");
			_exit(125);
		}
		/* Nothing we mount is seen outside (it could not be anyway). */
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
			perror("tsrun: rootless: make mounts private");
			_exit(125);
		}
		execvp(file, argv + 3);
		fprintf(stderr, "tsrun: rootless: exec %s: %s\n", file, strerror(errno));
		_exit(127);
	}
	close(go[0]);
	struct sigaction sa = {.sa_sigaction = forward, .sa_flags = SA_SIGINFO | SA_RESTART};
	sigemptyset(&sa.sa_mask);
	for (int s = 1; s < 32; s++)
		if (s != SIGCHLD && s != SIGKILL && s != SIGSTOP && s != SIGTSTP && s != SIGTTIN && s != SIGTTOU)
			sigaction(s, &sa, NULL);
	if (run_map_tool("newuidmap", child, uid_map) < 0 || run_map_tool("newgidmap", child, gid_map) < 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		return 125;
	}
	(void)!write(go[1], "g", 1);
	close(go[1]);
	int status;
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			return 125;
	if (WIFSIGNALED(status)) {
		/* Die the same way, so that our parent sees what happened. */
		signal(WTERMSIG(status), SIG_DFL);
		kill(getpid(), WTERMSIG(status));
		return 128 + WTERMSIG(status);
	}
	return WEXITSTATUS(status);
}
