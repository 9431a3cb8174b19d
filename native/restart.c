/*
 * restart.c: docker's restart policies, run by the monitor itself.
 *
 * There is no daemon to restart a container that exited, so its monitor
 * does: it waits, then runs the same plan again (clone, the same steps).
 * The rules are docker's (daemon/restartmanager):
 *   no              never
 *   always          whatever the exit code
 *   unless-stopped  the same here: the two differ only when a daemon starts
 *   on-failure:N    exit code != 0, at most N restarts (0: no limit)
 * and never once a stop was requested: tsrun creates the stop file before
 * it signals the container. Between runs it waits 100 ms, doubling after
 * each restart up to a minute, back to 100 ms once a run lasted 10 s.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "helper.h"
#include "shared/procstat.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 60000
#define BACKOFF_RESET_MS 10000

static long long backoff_ms;

int stop_requested(const struct plan *p)
{
	return p->stop_path && access(p->stop_path, F_OK) == 0;
}

int stopper_alive(const struct plan *p)
{
	/* "<pid>@<start time>" of the tsrun that wrote it (src/sys/proc.ts selfToken) */
	char buf[64], now[32], state;
	long pid;
	char start[32];
	int fd = p->stop_path ? open(p->stop_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%ld@%31[0-9]", &pid, start) != 2 || pid <= 0)
		return 0;
	return proc_start_time(pid, now, sizeof(now), &state) == 0 && state != 'Z' && state != 'X' &&
	       strcmp(now, start) == 0;
}

int restart_wanted(const struct plan *p, int code, unsigned restarts)
{
	if (stop_requested(p))
		return 0;
	switch (p->restart) {
	case RESTART_ALWAYS:
	case RESTART_UNLESS_STOPPED:
		return 1;
	case RESTART_ON_FAILURE:
		return code != 0 && (p->restart_max == 0 || restarts < p->restart_max);
	case RESTART_NO:
		break;
	}
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Wait out the back-off. 0: do not restart after all (a stop was requested:
 * the stop file appeared, or SIGTERM/SIGINT/SIGHUP/SIGQUIT came while no
 * container was running to forward it to). */
int restart_wait(const struct plan *p, int sigfd, long long ran_ms)
{
	if (ran_ms >= BACKOFF_RESET_MS || backoff_ms == 0)
		backoff_ms = BACKOFF_FIRST_MS;
	else if ((backoff_ms *= 2) > BACKOFF_MAX_MS)
		backoff_ms = BACKOFF_MAX_MS;
	trace_line("restart in %lld ms", backoff_ms);
	for (long long end = now_ms() + backoff_ms, left; (left = end - now_ms()) > 0;) {
		struct pollfd pfd = {.fd = sigfd, .events = POLLIN};
		struct signalfd_siginfo si;
		/* look at the stop file at least once a second */
		if (poll(&pfd, 1, (int)(left < 1000 ? left : 1000)) > 0)
			while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT ||
				    si.ssi_signo == SIGHUP || si.ssi_signo == SIGQUIT)
					return 0;
		if (stop_requested(p))
			return 0;
	}
	return !stop_requested(p);
}
