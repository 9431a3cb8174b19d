/*
 * lifecycle.c: the monitor from the plan to its last exit.
 *
 * Set up what lasts for all runs (the log, the status file, signals, for
 * exec the PID namespace), run the plan (monitor.c), and then, as the restart
 * policy says (restart.c), run it again or end: write the final status, hand
 * over to the exit command (tsrun's cleanup of a detached container) and exit
 * with the container's code.
 */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "helper.h"

extern char **environ;

static void monitor_trace(const char *at, const char *text)
{
	proto_send("trace", "monitor", "0", at, text, NULL);
}

/* The exit command runs once we are gone, as conmon's --exit-command does:
 * a forked child execs it and we exit at once, so that it never finds this
 * monitor alive (monitor_pid in the status file). It gets our environment
 * (tsrun's) and our fds 0-2; everything else of ours is close-on-exec. */
static int host_netns = -1; /* ours before a `netns` line moved us */

/* In the container's first process: the host's network namespace is not
 * its to keep (close-on-exec is not enough: an `init` PID 1 never execs). */
void lifecycle_close_in_child(void)
{
	if (host_netns >= 0)
		close(host_netns);
	host_netns = -1;
	attach_close_in_child();
}

static void run_exit_command(const struct plan *p)
{
	sigset_t none;
	if (fork() != 0)
		return; /* nobody to tell if fork() failed */
	/* tsrun's cleanup takes the container off the host's network: it must
	 * run in the host's network namespace, not in the container's. */
	if (host_netns >= 0 && setns(host_netns, CLONE_NEWNET) < 0)
		_exit(125);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	execvpe(p->exit_command[0], p->exit_command, environ);
	_exit(127);
}

_Noreturn void monitor_exit(struct monitor *m, int code)
{
	tty_restore();
	attach_close(); /* before the exit command: nobody will answer it again */
	/* Not after a first start that failed: tsrun saw the error and undoes
	 * what it did itself. Nor while the tsrun that stops it on purpose
	 * (named in the stop file: stop, rm -f) still runs: that one waits for
	 * the end and cleans up, and a second tsrun, one per container of an
	 * `rm -f` of many, would only cost a Node start each. */
	if (m->plan->exit_command && m->ever_started && !stopper_alive(m->plan))
		run_exit_command(m->plan);
	exit(code);
}

/* Nothing of tsrun's terminal stays with us for the container's lifetime:
 * its raw mode is undone, we stop relaying our fd 0 (input.c, tty.c), fds
 * 0-2 become /dev/null, and we are in our own session (no SIGHUP when that
 * terminal goes away). For a detached container from the start; for an
 * attached one when tsrun is done or gone. */
void monitor_detach(void)
{
	tty_detach();
	in_detach();
	int fd = open("/dev/null", O_RDWR | O_NOCTTY);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	if (getsid(0) != getpid())
		setsid();
	out_detach();
}

/* A failure before there is anything to run: like monitor.c's first run. */
static _Noreturn void setup_failed(struct monitor *m, const char *op, int err, const char *msg)
{
	proto_send("error", "0", op, err ? errname(err) : "-", msg, NULL);
	m->st.exited = 1;
	m->st.exit_code = 125;
	m->st.error = msg;
	clock_gettime(CLOCK_REALTIME, &m->st.finished_at);
	monitor_state(m, "exited");
	monitor_exit(m, 125);
}

static void join_ns(struct monitor *m, const char *path, int type, const char *op, const char *what)
{
	char msg[600];
	if (!path)
		return;
	int fd = (int)TR(open(path, O_RDONLY | O_CLOEXEC), "openat(AT_FDCWD, %s, O_RDONLY|O_CLOEXEC)", q(path));
	if (fd < 0 || TR(setns(fd, type), "setns(%d, %s)", fd, clone_flags_str((unsigned long)type)) < 0) {
		int e = errno;
		snprintf(msg, sizeof(msg), "join the %s namespace %s: %s", what, path, errmsg(e));
		setup_failed(m, op, e, msg);
	}
	close(fd);
}

/* Before the first clone: everything that lasts for all runs. */
static void setup(struct monitor *m)
{
	const struct plan *p = m->plan;
	char msg[600];
	sigset_t set;
	if (!p->attach)
		monitor_detach(); /* tsrun gave us /dev/null; make sure */
	if (status_init(p->status_path) < 0)
		setup_failed(m, "status-file", errno, "status file path too long");
	if (health_init(p) < 0)
		setup_failed(m, "health", errno, "open /proc/self/ns/pid for the healthcheck");
	/* The container's stdin when it gets none of ours (input.c). */
	if ((m->nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
		setup_failed(m, "stdin", errno, "open /dev/null");
	if (out_open(p) < 0) {
		snprintf(msg, sizeof(msg), "open the log %s: %s", p->log_path, errmsg(errno));
		setup_failed(m, "log", errno, msg);
	}
	/* A detached container's PTY, for `tsrun attach` (attach.c): made
	 * once, before the first clone, and served for every run. */
	if (attach_open(p) < 0) {
		int e = errno;
		snprintf(msg, sizeof(msg), "listen on the attach socket %s: %s", p->attach_socket, errmsg(e));
		setup_failed(m, "attach-socket", e, msg);
	}
	/* Rootless `tsrun exec`: the user joins tsrun's user namespace first;
	 * only as its root may it join the namespaces that one owns. */
	join_ns(m, p->userns_path, CLONE_NEWUSER, "userns", "user");
	/* `tsrun exec`: our future children are born in the container's PID
	 * namespace (the monitor itself stays where it is). */
	join_ns(m, p->pidns_path, CLONE_NEWPID, "pidns", "PID");
	/* A bridge network with a user namespace: a child in its new userns
	 * could no longer join a network namespace the host owns; it inherits
	 * ours instead (clone without newnet). */
	if (p->netns_path)
		host_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	join_ns(m, p->netns_path, CLONE_NEWNET, "netns", "network");
	/* runtime mode: the fifo `tsrun-runtime start` writes a byte to. We
	 * make it (never an existing file) and hold it open for reading and
	 * writing, so neither open blocks; the child inherits the fd and
	 * waits on it in its `wait-start` step, after we have gone. */
	if (p->exec_fifo) {
		if (TR(mkfifo(p->exec_fifo, 0600), "mknodat(AT_FDCWD, %s, S_IFIFO|0600)", q(p->exec_fifo)) < 0 ||
		    (g_exec_fifo = (int)TR(open(p->exec_fifo, O_RDWR | O_NOFOLLOW | O_CLOEXEC),
					   "openat(AT_FDCWD, %s, O_RDWR|O_NOFOLLOW|O_CLOEXEC)", q(p->exec_fifo))) < 0) {
			int e = errno;
			snprintf(msg, sizeof(msg), "make the exec fifo %s: %s", p->exec_fifo, errmsg(e));
			setup_failed(m, "exec-fifo", e, msg);
		}
	}
	/* Block the signals we handle and read them from a signalfd, so the
	 * loop is one poll(); the child unblocks them again right away. */
	monitor_signals(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
	m->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (m->sigfd < 0)
		setup_failed(m, "signalfd", errno, errmsg(errno));
}

_Noreturn void monitor_run(struct plan *p)
{
	static struct monitor m = {.sigfd = -1, .nullfd = -1, .st = {.state = "created"}};
	m.plan = p;
	g_trace = p->trace;
	g_trace_sink = monitor_trace;
	setup(&m);
	for (;; m.run++) {
		struct timespec t0, t1;
		int failed;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		int code = monitor_once(&m, &failed);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		attach_run_end(code, failed ? 0 : m.st.exit_signal);
		/* The first start failing is tsrun's error to show (docker does
		 * not restart a container that never started either). */
		if ((failed && m.run == 0) || !restart_wanted(p, code, m.st.restart_count)) {
			/* The status file first: a `run --rm` that hears "exit"
			 * finds the container exited, without polling for it. If
			 * that write fails, "exit" goes now, and monitor_state
			 * keeps trying (a foreground tsrun must not wait on it). */
			m.st.state = "exited";
			int written = status_write(&m.st) == 0;
			if (!failed && m.run == 0)
				monitor_report_exit(&m);
			if (!written)
				monitor_state(&m, "exited");
			monitor_exit(&m, code);
		}
		if (m.run == 0) {
			if (!failed)
				monitor_report_exit(&m);
			/* After "exit" the foreground tsrun is done, as docker's
			 * client is: restarts show in the status file and log. */
			proto_close();
			monitor_detach();
		}
		m.st.restart_count++;
		monitor_state(&m, "restarting");
		long long ran_ms = (t1.tv_sec - t0.tv_sec) * 1000LL + (t1.tv_nsec - t0.tv_nsec) / 1000000;
		if (!restart_wait(p, m.sigfd, ran_ms)) {
			monitor_state(&m, "exited");
			monitor_exit(&m, code);
		}
	}
}
