/*
 * init.c: the `init` step, a tiny PID 1 (what `docker run --init` gets from
 * tini).
 *
 * PID 1 of a PID namespace has two jobs most programs do not do: it must
 * reap orphaned zombies (they are re-parented to it), and the kernel
 * delivers it only signals it has a handler for, so `docker stop` would
 * otherwise be ignored by a shell or a server that does not expect to be
 * PID 1. This process forks the real program and does exactly those jobs.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helper.h"

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

static _Noreturn void reaper(pid_t child, sigset_t *set)
{
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(set, &si);
		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			kill(child, sig);
			continue;
		}
		/* Reap every zombie; leave with the status of our program,
		 * docker-style (128+n when a signal killed it). When PID 1
		 * exits, the kernel kills whatever is left in the namespace. */
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			if (pid == child)
				_exit(WIFEXITED(status) ? WEXITSTATUS(status) :
				      128 + WTERMSIG(status));
	}
}

int step_init(struct child *c, char **a, int n)
{
	(void)a, (void)n;
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(*forwarded); i++)
		sigaddset(&set, forwarded[i]);
	/* Blocked before fork() so that no signal can slip in between; a
	 * blocked signal is queued even for PID 1, and sigwaitinfo() takes it. */
	sigprocmask(SIG_BLOCK, &set, &old);
	pid_t pid = fork();
	if (pid < 0)
		return fail(c, errno, "fork");
	if (pid == 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		trace_line("fork() = %d", getpid()); /* the child reports for both */
		return 0;
	}
	/* PID 1 never execs, so close-on-exec closes nothing of ours: it holds
	 * no fd but the container's stdio. Not the channel to the monitor (EOF
	 * there says the child execed), not the root fd, above all nothing of
	 * the host (its /proc, a network namespace): with CAP_SYS_PTRACE a
	 * process in the container could reach it through /proc/1/fd
	 * (CVE-2016-9962). close_range() is Linux >= 5.9; before it, the fds
	 * we know of. */
	g_trace = 0;
	if (syscall(SYS_close_range, 3u, ~0u, 0u) < 0) {
		close(c->sock);
		if (c->rootfd >= 0)
			close(c->rootfd);
		if (c->procfd >= 0)
			close(c->procfd);
	}
	caps_like_exec();
	prctl(PR_SET_NAME, "tsrun-init", 0, 0, 0);
	proc_title("tsrun-init");
	reaper(pid, &set);
}
