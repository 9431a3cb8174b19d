/*
 * health.c: docker's HEALTHCHECK, carried out by the monitor itself.
 *
 * There is no daemon to run the probe, so the container's monitor does, as
 * docker's daemon/health.go would. The rules are docker's:
 *   - the first probe runs one interval after the program started, the next
 *     one interval after the last one ended;
 *   - exit 0 is a success: the container is "healthy" and the failing streak
 *     starts again from 0; anything else is a failure, and `retries` failures
 *     in a row make it "unhealthy";
 *   - during the start period a failure does not count (while the status is
 *     still "starting"); a success ends it;
 *   - a probe still running at its timeout is killed (SIGKILL to its process
 *     group) and counts as a failure, exit code -1;
 *   - the last 5 results are kept, each with at most 4096 bytes of output
 *     ("..." after it when there was more: the rest is read and thrown away);
 *   - when the container exits the status becomes "unhealthy"; a restart
 *     (its restart policy) starts again from "starting" with a streak of 0,
 *     and keeps the results.
 * tsrun adds one rule: while the container is paused (its cgroup frozen) a
 * probe that is due is skipped, and one that times out meanwhile is not
 * counted, since a frozen container cannot answer.
 *
 * The probe is a child of the monitor. It joins the container as `tsrun
 * exec` does: the PID namespace by the monitor (setns before fork, and back:
 * it changes only where our children go), its cgroups, then every other
 * namespace the container does not share with the monitor (mnt last), and
 * the plan's `health-step` lines, the container's process steps (rlimits,
 * no_new_privs, seccomp, user, capabilities, working directory, environment)
 * ending in the probe's exec.
 *
 * The results go to the health file (health-file.c).
 */
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helper.h"

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

#define LOG_MAX 5        /* results kept (docker's maxLogEntries) */
#define OUTPUT_MAX HEALTH_OUTPUT_MAX

static const struct plan *P;
static char tmp_path[4096 + 8];
static int running;          /* a run's program is up: probes are due */
static const char *state = "starting";
static unsigned streak;
static struct health_result results[LOG_MAX], cur;
static int nresults;
static pid_t probe = -1;
static int outfd = -1;       /* the read end of the probe's stdout and stderr */
static long long run_start, next_at, probe_start, deadline; /* CLOCK_MONOTONIC ns */
static int timed_out, discard;
static int self_pidns = -1;  /* ours: where our children go again after a probe's fork */

static void write_file(void)
{
	health_file_write(P->health_path, tmp_path, state, streak, results, nresults);
}

static long long mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int health_init(const struct plan *p)
{
	P = p;
	if (!p->health_path)
		return 0;
	if (strlen(p->health_path) > 4096)
		return errno = ENAMETOOLONG, -1;
	strcat(strcpy(tmp_path, p->health_path), ".tmp");
	self_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	return self_pidns < 0 ? -1 : 0;
}

void health_close_in_child(void)
{
	if (self_pidns >= 0)
		close(self_pidns);
	if (outfd >= 0)
		close(outfd);
	self_pidns = outfd = -1;
}

/* ------------------------------------------------------------ the probe */

/* Whether the kernel holds the container's cgroup frozen (`tsrun pause`):
 * v1's freezer.state (FREEZING too), else a cgroup2 cgroup.events. */
static int frozen(void)
{
	char dir[4096], path[4096 + 32], buf[256];
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < P->n_cgroup_procs; i++) {
			if (cgroup_dir(P->cgroup_procs[i], dir, sizeof(dir)) < 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, pass ? "cgroup.events" : "freezer.state");
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
			if (fd >= 0)
				close(fd);
			if (n <= 0)
				continue;
			buf[n] = '\0';
			if (!pass)
				return strncmp(buf, "THAWED", 6) != 0;
			if (strstr(buf, "frozen "))
				return strstr(buf, "frozen 1") != NULL;
		}
	}
	return 0;
}

static void say(const char *a, const char *b)
{
	(void)!write(2, a, strlen(a));
	(void)!write(2, b, strlen(b));
	(void)!write(2, "\n", 1);
}

/* In the probe: into the container, then the health steps (exec last). */
static _Noreturn void probe_main(pid_t ctr, int out)
{
	static const char *ns[] = {"cgroup", "ipc", "uts", "net", "user", "mnt"};
	struct child c = {.plan = P, .sock = -1, .out = {-1, -1}, .in = -1, .rootfd = -1,
			  .procfd = -1, .joined = -1, .exit_code = 125};
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	/* Its own process group: a timeout kills it with all it started. */
	setpgid(0, 0);
	prctl(PR_SET_NAME, "tsrun-health", 0, 0, 0);
	g_trace = 0;
	int null = open("/dev/null", O_RDONLY);
	if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		_exit(125);
	/* Nothing of the monitor's (fd 3, the log, the attach socket, ...). */
	if (syscall(SYS_close_range, 3u, ~0u, 0u) < 0)
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
	umask(0);
	/* Its cgroups, while still host root: counted in the container's
	 * limits, and frozen with it. */
	for (int i = 0; i < P->n_cgroup_procs; i++) {
		int fd = open(P->cgroup_procs[i], O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) != 1) {
			say("tsrun: healthcheck: join the container's cgroup ", P->cgroup_procs[i]);
			_exit(125);
		}
		close(fd);
	}
	if (proc_open(&c) < 0) {
		say("tsrun: healthcheck: ", c.err_msg);
		_exit(125);
	}
	for (size_t i = 0; i < sizeof(ns) / sizeof(*ns); i++) {
		char theirs[64], ours[64];
		struct stat a, b;
		snprintf(theirs, sizeof(theirs), "/proc/%d/ns/%s", (int)ctr, ns[i]);
		snprintf(ours, sizeof(ours), "/proc/self/ns/%s", ns[i]);
		if (stat(theirs, &a) == 0 && stat(ours, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
			continue; /* shared with the host (--network host, rootless's user ns) */
		char *args[] = {theirs, (char *)ns[i], NULL};
		if (step_setns(&c, args, 2) < 0) {
			say("tsrun: healthcheck: ", c.err_msg);
			_exit(125);
		}
	}
	c.env = calloc(1, sizeof(char *));
	for (int i = 0; i < P->n_health_steps; i++) {
		const struct step *st = &P->health_steps[i];
		c.step = i + 1;
		snprintf(c.err_op, sizeof(c.err_op), "%s", st->argv[0]);
		if (st->def->run(&c, st->argv + 1, st->argc - 1) < 0) {
			say("tsrun: healthcheck: ", c.err_msg);
			_exit(c.exit_code);
		}
	}
	_exit(125); /* not reached: the last step is exec */
}

static void start_probe(pid_t ctr)
{
	int fds[2], joined = 0;
	char path[64];
	struct stat a, b;
	memset(&cur, 0, sizeof(cur) - sizeof(cur.out));
	clock_gettime(CLOCK_REALTIME, &cur.start);
	probe_start = mono_ns();
	next_at = probe_start + P->health_interval_ns; /* if it cannot even start */
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
		return;
	fcntl(fds[1], F_SETFL, 0); /* the probe writes as to any pipe: blocking */
	/* Its PID namespace: setns() here changes only where our next child
	 * goes, and we go back to ours at once (a restart clones anew). */
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)ctr);
	if (stat(path, &a) == 0 && stat("/proc/self/ns/pid", &b) == 0 && a.st_ino != b.st_ino) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		joined = fd >= 0 && setns(fd, CLONE_NEWPID) == 0;
		if (fd >= 0)
			close(fd);
	}
	pid_t pid = fork();
	if (pid == 0)
		probe_main(ctr, fds[1]);
	if (joined)
		setns(self_pidns, CLONE_NEWPID);
	if (pid > 0)
		setpgid(pid, pid); /* as the child does: a timeout right away still finds its group */
	close(fds[1]);
	if (pid < 0) {
		close(fds[0]);
		return;
	}
	probe = pid;
	outfd = fds[0];
	deadline = probe_start + P->health_timeout_ns;
	timed_out = discard = 0;
	rss_trim(); /* fork and setns touched code the relay loop never runs */
}

/* What the probe printed: the first OUTPUT_MAX bytes kept, the rest read
 * and thrown away (a probe that prints without end costs us nothing). */
static void read_output(void)
{
	char scratch[512];
	while (outfd >= 0) {
		ssize_t r = cur.len < OUTPUT_MAX ? read(outfd, cur.out + cur.len, OUTPUT_MAX - cur.len) :
						   read(outfd, scratch, sizeof(scratch));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return; /* EAGAIN: for now, that is all */
		if (r == 0) {
			close(outfd);
			outfd = -1;
			return;
		}
		if (cur.len < OUTPUT_MAX)
			cur.len += (size_t)r;
		else
			cur.truncated = 1;
	}
}

static void record(int wstatus);

/* A probe killed by a SIGKILL we did not send is held a moment: when the
 * container's init dies, the kernel kills all of its PID namespace, and
 * init's exit waits for the probe to be reaped, so the probe is heard of
 * first. docker throws that result away (its monitor stops and drops the
 * probe's); so do we, when health_run_end() comes within HOLD_NS. Else the
 * kill was the probe's own (the OOM killer): a failure like any other. */
#define HOLD_NS 200000000LL
static int held, held_ws;
static long long held_until;

static void finish(int wstatus)
{
	probe = -1;
	read_output(); /* what it wrote before it ended; a process it left
			* behind may keep the pipe open: not waited for */
	if (outfd >= 0)
		close(outfd);
	outfd = -1;
	if (discard || !running)
		return;
	clock_gettime(CLOCK_REALTIME, &cur.end);
	if (!timed_out && WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL) {
		held = 1;
		held_ws = wstatus;
		held_until = mono_ns() + HOLD_NS;
		return;
	}
	record(wstatus);
}

static void record(int wstatus)
{
	long long now = mono_ns();
	if (timed_out) {
		char d[48];
		go_duration(d, P->health_timeout_ns);
		cur.exit_code = -1;
		cur.len = (size_t)snprintf(cur.out, sizeof(cur.out), "Health check exceeded timeout (%s)", d);
		cur.truncated = 0;
	} else {
		cur.exit_code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
	}
	if (nresults == LOG_MAX)
		memmove(&results[0], &results[1], sizeof(results[0]) * (LOG_MAX - 1));
	else
		nresults++;
	memcpy(&results[nresults - 1], &cur, sizeof(cur) - sizeof(cur.out) + cur.len);
	if (cur.exit_code == 0) {
		streak = 0;
		state = "healthy";
	} else if (strcmp(state, "starting") != 0 || probe_start - run_start >= P->health_start_period_ns) {
		if (++streak >= P->health_retries)
			state = "unhealthy";
	}
	next_at = now + P->health_interval_ns;
	write_file();
	rss_trim(); /* and so did writing the file */
}

/* ------------------------------------------------------------ the loop */

void health_run_start(void)
{
	if (!P || !P->health_path)
		return;
	health_reap(); /* see health_tick() */
	held = 0;
	running = 1;
	state = "starting";
	streak = 0;
	run_start = mono_ns();
	next_at = run_start + P->health_interval_ns;
	write_file();
}

void health_reap(void)
{
	int ws;
	if (probe > 0 && waitpid(probe, &ws, WNOHANG) == probe)
		finish(ws);
}

void health_run_end(void)
{
	if (!P || !P->health_path || !running)
		return;
	running = 0;
	held = 0; /* killed with its container: not a result */
	if (probe > 0) {
		/* Its container is gone; so goes the probe. A frozen one (cgroup
		 * v1) dies only when thawed: reaped then, by health_reap(). */
		kill(-probe, SIGKILL);
		timed_out = discard = 1; /* killed, not counted: see health_tick() */
		for (int i = 0; i < 100 && probe > 0; i++) {
			struct timespec ms10 = {0, 10000000};
			health_reap();
			if (probe > 0)
				nanosleep(&ms10, NULL);
		}
	}
	/* As docker's monitor, once it stops: "unhealthy ... for compatibility
	 * reasons" (container/health.go). A restart starts from "starting". */
	state = "unhealthy";
	write_file();
}

int health_poll_fds(struct pollfd *pfd, int n)
{
	if (outfd >= 0)
		pfd[n++] = (struct pollfd){.fd = outfd, .events = POLLIN};
	return n;
}

void health_handle(struct pollfd *pfd, int n)
{
	for (int i = 0; i < n; i++)
		if (pfd[i].fd == outfd && pfd[i].revents)
			read_output();
}

int health_timeout_ms(void)
{
	long long at;
	if (held && running)
		at = held_until;
	else if (probe > 0 && !timed_out)
		at = deadline;
	else if (probe <= 0 && running)
		at = next_at;
	else
		return -1;
	long long left = at - mono_ns();
	return left <= 0 ? 0 : left / 1000000 + 1 > 60000 ? 60000 : (int)(left / 1000000 + 1);
}

void health_tick(pid_t container)
{
	long long now;
	if (!P || !P->health_path)
		return;
	now = mono_ns();
	/* One killed while frozen may have died between two runs, where
	 * restart.c's wait took its SIGCHLD: look again. */
	if (probe > 0 && timed_out)
		health_reap();
	if (held && running && now >= held_until) { /* the container lives on */
		held = 0;
		record(held_ws);
	}
	if (held)
		return; /* no next probe before this one's result is known */
	if (probe > 0) {
		if (!timed_out && now >= deadline) {
			kill(-probe, SIGKILL);
			timed_out = 1;
			discard = frozen(); /* a frozen container could not answer */
		}
		return;
	}
	if (!running || container <= 0 || now < next_at)
		return;
	if (frozen()) {
		next_at = now + P->health_interval_ns; /* paused: skip this one */
		return;
	}
	start_probe(container);
}
