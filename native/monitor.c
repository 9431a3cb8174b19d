/*
 * monitor.c: one run of the plan, from clone() to the container's exit.
 *
 * The monitor is the container's parent for its whole life (like podman's
 * conmon): it reaps it, forwards signals to it, relays its TTY, feeds its
 * log (logs.c), keeps its status file (status.c) and reports "exit <code>
 * <signal>". Its loop is one poll() over fd 3, the internal socket from the
 * child, a signalfd, the output pipes, (with a TTY) stdin and the PTY
 * master, the attach socket and its clients (attach.c), and a healthcheck
 * probe's output (health.c), whose timers also bound the wait. lifecycle.c
 * runs this once, or again under a restart policy.
 */
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sched.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helper.h"

static struct monitor *M;
static const struct plan *P;
static pid_t child = -1;
static int sock = -1;
/* the state of one run */
static int released, proto_eof, sock_eof, exec_seen, started, errored, errcode, in_hooks;
static int reaped, wstatus;
static char errtext[1024];

/* The signals we pass on. SIGWINCH is special with a TTY: it means "the
 * user's terminal was resized", and resizing the PTY makes the kernel send
 * SIGWINCH to the container's foreground process group itself. */
static const struct { int sig; const char *name; } fwd[] = {
	{SIGINT, "SIGINT"},   {SIGTERM, "SIGTERM"}, {SIGHUP, "SIGHUP"},
	{SIGQUIT, "SIGQUIT"}, {SIGUSR1, "SIGUSR1"}, {SIGUSR2, "SIGUSR2"},
	{SIGWINCH, "SIGWINCH"},
};

void monitor_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGCHLD);
	for (size_t i = 0; i < sizeof(fwd) / sizeof(*fwd); i++)
		sigaddset(set, fwd[i].sig);
}

void monitor_state(struct monitor *m, const char *state)
{
	m->st.state = state;
	if (status_write(&m->st) == 0 || strcmp(state, "exited") != 0 || !m->ever_started)
		return;
	/* The final status is all that will ever tell how the container ended:
	 * without it, tsrun takes the vanished monitor for exit code 255. Even
	 * the write in place failed (status.c: EIO, or a copy-on-write file
	 * system): keep the state and try again, less often each time, for as
	 * long as the file is there to be read, until a SIGTERM or SIGINT to
	 * the monitor says give up. Only then the exit command. */
	for (int ms = 100; status_readable(); ms = ms < 6400 ? ms * 2 : ms) {
		struct pollfd pfd = {.fd = m->sigfd, .events = POLLIN};
		struct signalfd_siginfo si;
		if (poll(&pfd, 1, ms) > 0)
			while (read(m->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
					return;
		if (status_write(&m->st) == 0)
			return;
	}
}

/* This run ended without the container's program ever running. */
static void record_failure(const char *msg, int code)
{
	if (msg != errtext)
		snprintf(errtext, sizeof(errtext), "%s", msg);
	M->st.error = errtext;
	M->st.pid = 0;
	M->st.exited = 1;
	M->st.exit_code = code;
	M->st.exit_signal = 0;
	clock_gettime(CLOCK_REALTIME, &M->st.finished_at);
}

/* A failure before the container started: say so, kill the child. The first
 * run leaves (tsrun shows the error); a restart counts it as an exit. */
int start_failed(const char *op, int err, const char *msg)
{
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		child = -1;
	}
	record_failure(msg, 125);
	if (M->run > 0)
		return -1;
	proto_send("error", "0", op, err ? errname(err) : "-", msg, NULL);
	monitor_state(M, "exited");
	monitor_exit(M, 125);
}

static void mark_started(void)
{
	started = 1;
	M->ever_started = 1;
	if (M->run == 0)
		proto_send("started", NULL);
	if (P->detach == DETACH_STARTED)
		exit(0); /* `tsrun-runtime exec -d`: the caller reaps it */
	M->st.error = NULL;
	clock_gettime(CLOCK_REALTIME, &M->st.started_at);
	monitor_state(M, "running");
	health_run_start(); /* probes from one interval on (health.c) */
	rss_trim(); /* from here on we only relay: see main.c */
}

static void on_message(struct imsg *m)
{
	char step[16];
	itoa_s(step, m->step);
	switch (m->type) {
	case MSG_TRACE:
		proto_send("trace", "child", step, m->s[1], m->s[0], NULL); /* time, text */
		break;
	case MSG_ERROR:
		errored = 1;
		errcode = exit_code_for(m->s[0], m->s[1]);
		snprintf(errtext, sizeof(errtext), "%s", m->s[2]);
		proto_send("error", step, m->s[0], m->s[1], m->s[2], NULL);
		break;
	case MSG_EXEC:
		exec_seen = 1; /* the next thing is execve(): EOF means it worked */
		break;
	case MSG_CONSOLE:
		if (m->fd >= 0 && P->console_socket) {
			/* runtime mode: the master is for conmon or the shim */
			if (console_send(P->console_socket, m->fd) < 0) {
				char msg[600];
				int e = errno;
				snprintf(msg, sizeof(msg), "send the PTY master to the console socket %s: %s",
					 P->console_socket, errmsg(e));
				close(m->fd);
				start_failed("console-socket", e, msg);
			}
			close(m->fd);
		} else if (m->fd >= 0) {
			tty_setup(m->fd, !P->stdin_null);
		}
		/* ack: the PTY has its window size before the child goes on */
		(void)!write(sock, "k", 1);
		break;
	case MSG_HOOKS:
		/* runtime mode: tsrun-runtime runs the hooks, says "hooks-done" */
		in_hooks = 1;
		proto_send("hooks", NULL);
		break;
	case MSG_READY:
		/* runtime mode: made, and waiting on the exec fifo for `start`.
		 * Our part is done; the child is left to our parent's reaper
		 * (conmon, the shim: subreapers), as runc's init is. */
		if (P->detach == DETACH_CREATED && M->run == 0) {
			proto_send("ready", NULL);
			exit(0);
		}
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
			if (exec_seen && !errored && !started)
				mark_started();
			return;
		}
		on_message(&m);
		if (!(flags & MSG_DONTWAIT))
			return; /* one message per poll round */
	}
}

static void on_signal(void)
{
	struct signalfd_siginfo si;
	while (read(M->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		int sig = (int)si.ssi_signo;
		if (sig == SIGCHLD) {
			/* Also a SIGKILL from outside (`tsrun kill`, the OOM
			 * killer): the status says 128+9 = 137. */
			if (child > 0 && waitpid(child, &wstatus, WNOHANG) == child) {
				reaped = 1;
				child = -1; /* its pid may be reused: never signal it again */
			}
			health_reap(); /* or the healthcheck's probe */
			continue;
		}
		if (sig == SIGWINCH && tty_master() >= 0) {
			tty_resize();
			continue;
		}
		for (size_t i = 0; i < sizeof(fwd) / sizeof(*fwd); i++)
			if (fwd[i].sig == sig && child > 0)
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
			userns_send(sock);
		}
		else if (strcmp(line, "hooks-done") == 0 && in_hooks) {
			in_hooks = 0;
			(void)!write(sock, "h", 1);
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
		if (in_hooks) /* nobody will run them, or say they ran */
			start_failed("protocol", 0, "fd 3 closed while the hooks ran");
		/* An attached tsrun that went away (killed) leaves us its
		 * terminal: let go of it, or we would go on relaying what the
		 * user types next at the host's prompt into the container. */
		if (P->attach)
			monitor_detach();
	}
}

static int write_cgroup(const char *path)
{
	char pid[16], msg[512];
	int len = (int)strlen(itoa_s(pid, child));
	int fd = (int)TR(open(path, O_WRONLY | O_CLOEXEC),
			 "openat(AT_FDCWD, %s, O_WRONLY|O_CLOEXEC)", q(path));
	if (fd < 0 || TR(write(fd, pid, (size_t)len), "write(%d, %s, %d)",
			 fd, q(pid), len) != len) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		snprintf(msg, sizeof(msg), "write pid %d to %s: %s", child, path, errmsg(e));
		return start_failed("cgroup-procs", e, msg);
	}
	close(fd);
	return 0;
}

/*
 * Moving a running process into a cgroup takes the kernel's cgroup threadgroup
 * lock for writing, which waits for an RCU grace period: 5-13 ms measured
 * here, on every start. Two ways around it:
 *  - a child born in its cgroup (clone3 CLONE_INTO_CGROUP, Linux >= 5.7,
 *    cgroup2 only): the first cgroup-procs file on a cgroup2 file system is
 *    joined at birth. *joined: the index of the one joined, or -1.
 *  - a thread that moves only itself (it writes "0" to a cgroup v1 `tasks`
 *    file) takes no threadgroup lock: the child, single-threaded, joins the
 *    v1 hierarchies itself (child.c), 0.3 ms instead of 6 measured here. It
 *    can while it is host root, not in a new user namespace: then the
 *    monitor writes its pid, as runc does.
 */
static pid_t fork_into_cgroup(unsigned long flags, int *joined)
{
	*joined = -1;
#ifdef CLONE_INTO_CGROUP
	char dir[4096];
	int i = plan_cgroup2(P, dir, sizeof(dir));
	int fd = i < 0 ? -1 : open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		struct clone_args args = {.flags = flags & ~(unsigned long)CSIGNAL, .exit_signal = SIGCHLD,
					  .cgroup = (__u64)fd};
		args.flags |= CLONE_INTO_CGROUP;
		pid_t p = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
		int e = errno;
		close(fd);
		if (p >= 0) {
			*joined = i;
			if (p == 0)
				return 0;
			if (g_trace)
				trace_line("clone3({flags=%s|CLONE_INTO_CGROUP, cgroup=%s}) = %d",
					   clone_flags_str(flags & ~(unsigned long)CSIGNAL), q(dir), (int)p);
			return p;
		}
		/* An older kernel (ENOSYS, E2BIG) or a cgroup it will not start a
		 * process in (EINVAL, EOPNOTSUPP: a threaded or domain-invalid one):
		 * as before. Anything else (EAGAIN at pids.max, ENOMEM) is the
		 * answer, as clone's would be. */
		if (e != ENOSYS && e != E2BIG && e != EINVAL && e != EOPNOTSUPP) {
			if (g_trace)
				trace_line("clone3({flags=%s|CLONE_INTO_CGROUP, cgroup=%s}) = -1 %s",
					   clone_flags_str(flags & ~(unsigned long)CSIGNAL), q(dir), errname(e));
			errno = e;
			return -1;
		}
	}
#endif
	pid_t p = (pid_t)syscall(SYS_clone, flags, 0, 0, 0, 0);
	int e = errno;
	if (p != 0)
		TR(p, "clone(child_stack=NULL, flags=%s)", clone_flags_str(flags));
	errno = e;
	return p;
}

/* clone() the container's first process for this run; -1 when it failed. */
static int spawn(void)
{
	int sv[2], out[2], in;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return start_failed("socketpair", errno, errmsg(errno));
	out[0] = out[1] = in = -1;
	if (!P->stdio_pass && (out_pipes(out) < 0 || in_pipe(P, &in) < 0)) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		for (int i = 0; i < 2; i++)
			if (out[i] >= 0)
				close(out[i]);
		return start_failed("stdio", e, "create the stdio pipes");
	}
	/* Raw clone() with a NULL stack behaves like fork(): the child gets a
	 * copy of our memory and runs on. Unlike unshare(), CLONE_NEWPID here
	 * puts the child itself in the new PID namespace, as its PID 1.
	 * CLONE_NEWCGROUP waits: a cgroup namespace is rooted at the cgroup
	 * its creator is in at that moment, so the child unshares it only after
	 * "go", once it is in the container's cgroup (as runc does). */
	unsigned long flags = (P->clone_flags & ~(unsigned long)CLONE_NEWCGROUP) | SIGCHLD;
	int joined;
	/* Before anything runs in the cgroup; a restart finds it still there. */
	if (M->run == 0 && P->n_device_rules > 0) {
		char msg[512];
		if (devices_attach(P, msg, sizeof(msg)) < 0) {
			int e = errno;
			close(sv[0]);
			close(sv[1]);
			for (int i = 0; i < 2; i++)
				if (out[i] >= 0)
					close(out[i]);
			if (in >= 0)
				close(in);
			return start_failed("devices", e, msg);
		}
	}
	child = fork_into_cgroup(flags, &joined);
	if (child == 0) {
		struct child c = {.plan = P, .sock = sv[1], .out = {out[0], out[1]}, .in = in,
				  .rootfd = -1, .procfd = -1, .joined = joined, .exit_code = 125};
		close(sv[0]);
		close(M->sigfd);
		close(PROTO_FD);
		status_close_in_child();
		health_close_in_child();
		child_main(&c, M->nullfd);
	}
	int e = errno;
	close(sv[1]);
	for (int i = 0; i < 2; i++)
		if (out[i] >= 0)
			close(out[i]); /* the child's ends: EOF once it and its heirs are gone */
	if (in >= 0)
		close(in);
	if (child < 0) {
		close(sv[0]);
		return start_failed("clone", e, errmsg(e));
	}
	sock = sv[0];
	for (int i = 0; i < P->n_cgroup_procs && !cgroup_self_attach(P); i++)
		if (i != joined && write_cgroup(P->cgroup_procs[i]) < 0)
			return -1;
	if (userns_prepare(P, child) < 0)
		return -1;
	M->st.pid = child;
	/* A restart stays "restarting" until it runs: "created" would read as
	 * a first start. */
	if (M->run == 0)
		M->st.state = "created";
	if (status_write(&M->st) < 0 && M->run == 0) {
		char msg[600];
		int e = errno;
		snprintf(msg, sizeof(msg), "write the status file %s: %s", P->status_path, errmsg(e));
		return start_failed("status-file", e, msg);
	}
	if (M->run == 0) {
		char pid[16];
		proto_send("pid", itoa_s(pid, child), NULL);
		proto_lines(); /* a "go" may already be buffered */
	} else {
		/* A restart: cgroup and network (a `setns` step) are the same
		 * as before, nobody has to set them up. Go at once. */
		released = 1;
		(void)!write(sock, "g", 1);
		userns_send(sock);
	}
	return 0;
}

/* Poll until the container's first process is reaped. */
static void watch(void)
{
	while (!reaped) {
		struct pollfd pfd[24];
		int n = 0;
		if (!proto_eof && proto_alive())
			pfd[n++] = (struct pollfd){.fd = PROTO_FD, .events = POLLIN};
		if (!sock_eof)
			pfd[n++] = (struct pollfd){.fd = sock, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = M->sigfd, .events = POLLIN};
		int nfixed = n;
		n = tty_poll_fds(pfd, n);
		int ntty = n;
		n = out_poll_fds(pfd, n);
		int nout = n;
		n = in_poll_fds(pfd, n);
		int nin = n;
		n = attach_poll_fds(pfd, n);
		int natt = n;
		n = health_poll_fds(pfd, n);
		int wait_ms = out_timeout_ms(), health_ms = health_timeout_ms();
		if (health_ms >= 0 && (wait_ms < 0 || health_ms < wait_ms))
			wait_ms = health_ms;
		if (poll(pfd, (nfds_t)n, wait_ms) < 0)
			continue; /* EINTR */
		for (int i = 0; i < nfixed; i++) {
			if (!pfd[i].revents)
				continue;
			if (pfd[i].fd == PROTO_FD)
				on_proto();
			else if (pfd[i].fd == sock)
				read_child(0);
			else
				on_signal();
		}
		tty_handle(pfd + nfixed, ntty - nfixed);
		out_handle(pfd + ntty, nout - ntty);
		in_handle(pfd + nout, nin - nout);
		attach_handle(pfd + nin, natt - nin);
		health_handle(pfd + natt, n - natt);
		out_tick();
		if (started && !reaped)
			health_tick(child);
	}
}

int monitor_once(struct monitor *m, int *failed)
{
	M = m;
	P = m->plan;
	released = sock_eof = exec_seen = started = errored = errcode = reaped = in_hooks = 0;
	*failed = 1;
	if (spawn() < 0) { /* only on a restart: the first run has left */
		out_drain(); /* closes this run's pipes */
		in_close();
		if (sock >= 0)
			close(sock);
		sock = -1;
		return 125;
	}
	watch();
	health_run_end(); /* no probe outlives its container's run */
	int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
	int sig = WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0;
	read_child(MSG_DONTWAIT); /* messages still queued after its death */
	/* All its output is in the log before anyone hears it exited. */
	tty_drain();
	out_drain();
	in_close(); /* a process left behind gets EOF, never our fd 0 */
	tty_reset();
	close(sock);
	sock = -1;
	if (errored) { /* "error" was sent; no "exit" line */
		record_failure(errtext, errcode);
		return errcode;
	}
	if (!exec_seen) {
		char msg[128];
		snprintf(msg, sizeof(msg), "the container process died before exec (%s %d)",
			 sig ? "killed by signal" : "exit status", sig ? sig : code);
		if (M->run == 0)
			proto_send("error", "0", "start", "-", msg, NULL);
		record_failure(msg, 125);
		return 125;
	}
	*failed = 0;
	if (!started) {
		mark_started();
		health_run_end(); /* its exit was heard before its start: over already */
	}
	M->st.pid = 0;
	M->st.exited = 1;
	M->st.exit_code = code;
	M->st.exit_signal = sig;
	clock_gettime(CLOCK_REALTIME, &M->st.finished_at);
	return code; /* "exit" is monitor_run's to send, once the status file says so */
}

void monitor_report_exit(struct monitor *m)
{
	char c[16], s[16];
	proto_send("exit", itoa_s(c, m->st.exit_code), itoa_s(s, m->st.exit_signal), NULL);
}

/* Before the first clone: everything that lasts for all runs. */
