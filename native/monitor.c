/*
 * monitor.c: clone the container's first process and watch over it.
 *
 * The monitor is the container's parent for its whole life (like podman's
 * conmon): it reaps it, forwards signals to it, relays its TTY and reports
 * "exit <code> <signal>". Its main loop is one poll() over fd 3, the internal
 * socket from the child, a signalfd and (with a TTY) stdin and the PTY master.
 */
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helper.h"

static const struct plan *P;
static pid_t child = -1;
static int sock = -1, sigfd = -1;
static int released, proto_eof, sock_eof, exec_seen, started, errored, errcode;

/* The signals we pass on. SIGWINCH is special with a TTY: it means "the
 * user's terminal was resized", and resizing the PTY makes the kernel send
 * SIGWINCH to the container's foreground process group itself. */
static const struct { int sig; const char *name; } fwd[] = {
	{SIGINT, "SIGINT"},   {SIGTERM, "SIGTERM"}, {SIGHUP, "SIGHUP"},
	{SIGQUIT, "SIGQUIT"}, {SIGUSR1, "SIGUSR1"}, {SIGUSR2, "SIGUSR2"},
	{SIGWINCH, "SIGWINCH"},
};

static void monitor_trace(const char *text)
{
	proto_send("trace", "monitor", "0", text, NULL);
}

static _Noreturn void finish(int code)
{
	tty_restore();
	exit(code);
}

/* A failure before the container started: say so, kill the child, leave. */
static _Noreturn void start_failed(const char *op, int err, const char *msg)
{
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	proto_send("error", "0", op, err ? errname(err) : "-", msg, NULL);
	finish(125);
}

static void on_message(struct imsg *m)
{
	char step[16];
	itoa_s(step, m->step);
	switch (m->type) {
	case MSG_TRACE:
		proto_send("trace", "child", step, m->s[0], NULL);
		break;
	case MSG_ERROR:
		errored = 1;
		errcode = exit_code_for(m->s[0], m->s[1]);
		proto_send("error", step, m->s[0], m->s[1], m->s[2], NULL);
		break;
	case MSG_EXEC:
		exec_seen = 1; /* the next thing is execve(): EOF means it worked */
		break;
	case MSG_CONSOLE:
		if (m->fd >= 0)
			tty_setup(m->fd, !P->stdin_null);
		/* ack: the PTY has its window size before the child goes on */
		(void)!write(sock, "k", 1);
		break;
	}
}

static void read_child(int flags)
{
	struct imsg m;
	while (!sock_eof) {
		int r = imsg_recv(sock, &m, flags);
		if (r < 0)
			return; /* EAGAIN when draining */
		if (r == 0) {
			/* Every copy of the child's end is closed: execve()
			 * succeeded (it is CLOEXEC) or the child is gone. */
			sock_eof = 1;
			if (exec_seen && !errored && !started) {
				started = 1;
				proto_send("started", NULL);
			}
			return;
		}
		on_message(&m);
		if (!(flags & MSG_DONTWAIT))
			return; /* one message per poll round */
	}
}

static _Noreturn void child_exited(int status)
{
	char c[16], s[16];
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	read_child(MSG_DONTWAIT); /* messages still queued after its death */
	tty_drain();
	if (errored)
		finish(errcode); /* "error" was sent; no "exit" line */
	if (!exec_seen) {
		char msg[128];
		snprintf(msg, sizeof(msg), "the container process died before exec (%s %d)",
			 sig ? "killed by signal" : "exit status", sig ? sig : code);
		proto_send("error", "0", "start", "-", msg, NULL);
		finish(125);
	}
	if (!started)
		proto_send("started", NULL);
	itoa_s(c, code);
	itoa_s(s, sig);
	proto_send("exit", c, s, NULL);
	finish(code);
}

static void on_signal(void)
{
	struct signalfd_siginfo si;
	while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		int sig = (int)si.ssi_signo, status;
		if (sig == SIGCHLD) {
			if (waitpid(child, &status, WNOHANG) == child)
				child_exited(status);
			continue;
		}
		if (sig == SIGWINCH && tty_master() >= 0) {
			tty_resize();
			continue;
		}
		for (size_t i = 0; i < sizeof(fwd) / sizeof(*fwd); i++)
			if (fwd[i].sig == sig)
				TR(kill(child, sig), "kill(%d, %s)", child, fwd[i].name);
	}
}

static void proto_lines(void)
{
	for (char *line; (line = proto_read_line());) {
		if (strcmp(line, "go") == 0 && !released) {
			/* Cgroup and network are ready: release the child. */
			released = 1;
			(void)!write(sock, "g", 1);
		}
		/* Anything else is not part of protocol version 1: ignored. */
	}
}

static void on_proto(void)
{
	int r = proto_fill(PROTO_FD);
	proto_lines();
	if (r <= 0) {
		proto_eof = 1; /* writing may still work; a write error ends it */
		if (!released)
			start_failed("protocol", 0, "fd 3 closed before \"go\"");
	}
}

static void write_cgroup(const char *path)
{
	char pid[16], msg[512];
	int len = (int)strlen(itoa_s(pid, child));
	int fd = (int)TR(open(path, O_WRONLY | O_CLOEXEC),
			 "openat(AT_FDCWD, %s, O_WRONLY|O_CLOEXEC)", q(path));
	if (fd < 0 || TR(write(fd, pid, (size_t)len), "write(%d, %s, %d)",
			 fd, q(pid), len) != len) {
		int e = errno;
		snprintf(msg, sizeof(msg), "write pid %d to %s: %s", child, path, errmsg(e));
		start_failed("cgroup-procs", e, msg);
	}
	close(fd);
}

_Noreturn void monitor_run(struct plan *p)
{
	int sv[2], nullfd = -1;
	sigset_t set;
	P = p;
	g_trace = p->trace;
	g_trace_sink = monitor_trace;
	if (p->stdin_null && (nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
		start_failed("stdin", errno, "open /dev/null");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		start_failed("socketpair", errno, errmsg(errno));
	/* Block the signals we handle and read them from a signalfd, so the
	 * loop is one poll(); the child unblocks them again right away. */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t i = 0; i < sizeof(fwd) / sizeof(*fwd); i++)
		sigaddset(&set, fwd[i].sig);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sigfd < 0)
		start_failed("signalfd", errno, errmsg(errno));

	/* Raw clone() with a NULL stack behaves like fork(): the child gets a
	 * copy of our memory and runs on. Unlike unshare(), CLONE_NEWPID here
	 * puts the child itself in the new PID namespace, as its PID 1.
	 * CLONE_NEWCGROUP waits: a cgroup namespace is rooted at the cgroup
	 * its creator is in at that moment, so the child unshares it only after
	 * "go", once it is in the container's cgroup (as runc does). */
	unsigned long flags = (p->clone_flags & ~(unsigned long)CLONE_NEWCGROUP) | SIGCHLD;
	child = (pid_t)syscall(SYS_clone, flags, 0, 0, 0, 0);
	if (child == 0) {
		struct child c = {.plan = p, .sock = sv[1], .rootfd = -1, .exit_code = 125};
		close(sv[0]);
		close(sigfd);
		close(PROTO_FD);
		child_main(&c, nullfd);
	}
	int e = errno;
	TR(child, "clone(child_stack=NULL, flags=%s)", clone_flags_str(flags));
	if (child < 0)
		start_failed("clone", e, errmsg(e));
	close(sv[1]);
	if (nullfd >= 0)
		close(nullfd);
	sock = sv[0];
	for (int i = 0; i < p->n_cgroup_procs; i++)
		write_cgroup(p->cgroup_procs[i]);
	char pid[16];
	itoa_s(pid, child);
	proto_send("pid", pid, NULL);
	proto_lines(); /* a "go" may already be buffered */

	for (;;) {
		struct pollfd pfd[6];
		int n = 0;
		if (!proto_eof && proto_alive())
			pfd[n++] = (struct pollfd){.fd = PROTO_FD, .events = POLLIN};
		if (!sock_eof)
			pfd[n++] = (struct pollfd){.fd = sock, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = sigfd, .events = POLLIN};
		int ntty = n;
		n = tty_poll_fds(pfd, n);
		if (poll(pfd, (nfds_t)n, -1) < 0)
			continue; /* EINTR */
		for (int i = 0; i < ntty; i++) {
			if (!pfd[i].revents)
				continue;
			if (pfd[i].fd == PROTO_FD)
				on_proto();
			else if (pfd[i].fd == sock)
				read_child(0);
			else
				on_signal();
		}
		tty_handle(pfd + ntty, n - ntty);
	}
}
