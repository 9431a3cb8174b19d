/*
 * status.c: the status file, what `tsrun ps` and `inspect` read.
 *
 * A detached container has no tsrun process watching it: the monitor is the
 * only one who knows its state. It writes that down as a few key=value lines
 * whenever the state changes, atomically (a temp file renamed over the old
 * one), so a reader sees the old or the new file, never half of one:
 *
 *   status=running            created, running, restarting, exited
 *   pid=4242                  the container's first process (host pid), 0 if none
 *   monitor_pid=4240          this monitor, and its start time (field 22 of
 *   monitor_start_time=81234  /proc/<pid>/stat): a dead monitor or a reused pid
 *   exit_code=                docker's code of the last run (128+n: signal n)
 *   exit_signal=
 *   started_at=2026-11-22T01:02:03.123456789Z
 *   finished_at=
 *   restart_count=0
 *   error=                    why the last start failed
 *   checksum=1a2b3c4d         FNV-1a (32 bits) of every byte before this line
 *
 * and newlines up to STATUS_SIZE bytes. A full disk must not lose an exit
 * code: the temp file needs a new block, which a full file system does not
 * have. So every status file is exactly STATUS_SIZE bytes, and the monitor
 * keeps the one it last wrote open: when temp + rename fails, it overwrites
 * that file in place (pwrite of the same bytes), into the blocks it already
 * has. A reader can then catch the file half-overwritten; the checksum tells
 * it so, and it must read again. (Not on a copy-on-write file system, btrfs:
 * there an overwrite needs new blocks too. monitor.c retries the final
 * status for as long as it has to.)
 *
 * No printf and no gmtime(): glibc's gmtime() reads /etc/localtime on first
 * use, and the monitor should touch as little as it can (its RSS).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "helper.h"

/* The size of every status file: the lines above take at most ~790 bytes
 * (with an error of ERROR_MAX), and 1 KiB takes no more disk than 300
 * bytes would: one block on most file systems. */
#define STATUS_SIZE 1024
#define ERROR_MAX 511

static const char *path;
static char tmp_path[4096 + 8], self_pid[16], self_start[24];
static int kept = -1; /* the file at `path`, as we last wrote it */

/* two decimal digits */
static char *put2(char *w, unsigned v)
{
	*w++ = (char)('0' + v / 10 % 10);
	*w++ = (char)('0' + v % 10);
	return w;
}

/* "2026-11-22T01:02:03.123456789Z": RFC 3339 with nanoseconds, UTC. */
char *rfc3339(char out[40], const struct timespec *ts)
{
	long long secs = ts->tv_sec, days = secs / 86400, rem = secs % 86400;
	if (rem < 0) { /* before 1970 */
		rem += 86400;
		days--;
	}
	/* days since 1970-01-01 -> civil date (H. Hinnant's algorithm) */
	long long z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
	unsigned day = doy - (153 * mp + 2) / 5 + 1, mon = mp < 10 ? mp + 3 : mp - 9;
	unsigned year = (unsigned)(yoe + era * 400 + (mon <= 2));
	char *w = out;
	w = put2(put2(w, year / 100), year % 100);
	*w++ = '-';
	w = put2(w, mon);
	*w++ = '-';
	w = put2(w, day);
	*w++ = 'T';
	w = put2(w, (unsigned)(rem / 3600));
	*w++ = ':';
	w = put2(w, (unsigned)(rem / 60 % 60));
	*w++ = ':';
	w = put2(w, (unsigned)(rem % 60));
	*w++ = '.';
	for (long ns = ts->tv_nsec, d = 100000000; d; d /= 10)
		*w++ = (char)('0' + ns / d % 10);
	*w++ = 'Z';
	*w = '\0';
	return out;
}

/* Field 22 of /proc/self/stat: when we started, in clock ticks after boot.
 * With our pid it names this process exactly, even after pid reuse. */
static void read_start_time(void)
{
	char buf[1024];
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	/* the command name (field 2) may hold spaces and ')': skip past the last ')' */
	char *p = strrchr(buf, ')');
	for (int field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (!p)
		return;
	size_t len = strcspn(++p, " ");
	if (len < sizeof(self_start)) {
		memcpy(self_start, p, len);
		self_start[len] = '\0';
	}
}

int status_init(const char *p)
{
	path = p;
	if (!path)
		return 0;
	if (strlen(path) > 4096)
		return errno = ENAMETOOLONG, -1;
	strcat(strcpy(tmp_path, path), ".tmp");
	itoa_s(self_pid, getpid());
	read_start_time();
	return 0;
}

static char *kv(char *w, const char *key, const char *val)
{
	w = stpcpy(stpcpy(stpcpy(w, key), "="), val ? val : "");
	*w++ = '\n';
	return w;
}

static uint32_t fnv1a(const char *b, size_t n)
{
	uint32_t h = 2166136261u;
	while (n--)
		h = (h ^ (unsigned char)*b++) * 16777619u;
	return h;
}

/* The whole file, padded with newlines to STATUS_SIZE. */
static void format(char buf[STATUS_SIZE], const struct status *s)
{
	char num[16], t1[40], t2[40], *w = buf;
	w = kv(w, "status", s->state);
	w = kv(w, "pid", itoa_s(num, s->pid));
	w = kv(w, "monitor_pid", self_pid);
	w = kv(w, "monitor_start_time", self_start);
	w = kv(w, "exit_code", s->exited ? itoa_s(num, s->exit_code) : "");
	w = kv(w, "exit_signal", s->exited ? itoa_s(num, s->exit_signal) : "");
	w = kv(w, "started_at", s->started_at.tv_sec ? rfc3339(t1, &s->started_at) : "");
	w = kv(w, "finished_at", s->exited ? rfc3339(t2, &s->finished_at) : "");
	w = kv(w, "restart_count", itoa_s(num, s->restart_count));
	w = stpcpy(w, "error=");
	for (const char *c = s->error; c && *c && c - s->error < ERROR_MAX; c++)
		*w++ = *c == '\n' || *c == '\r' ? ' ' : *c; /* one line */
	*w++ = '\n';
	uint32_t sum = fnv1a(buf, (size_t)(w - buf));
	w = stpcpy(w, "checksum=");
	for (int shift = 28; shift >= 0; shift -= 4)
		*w++ = "0123456789abcdef"[sum >> shift & 0xf];
	memset(w, '\n', (size_t)(buf + STATUS_SIZE - w));
}

int status_write(const struct status *s)
{
	char buf[STATUS_SIZE];
	if (!path)
		return 0;
	format(buf, s);
	/* temp + rename: readers never see a half-written file */
	int fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0644);
	if (fd >= 0 && write_all(fd, buf, STATUS_SIZE) == 0 && rename(tmp_path, path) == 0) {
		if (kept >= 0)
			close(kept); /* the file we just replaced: let its blocks go */
		kept = fd;
		return 0;
	}
	int e = errno;
	if (fd >= 0) {
		close(fd);
		unlink(tmp_path);
	}
	/* No room for a new file (ENOSPC, EDQUOT): overwrite the old one in
	 * place, into its own blocks. The checksum covers the moment between. */
	if (kept >= 0 && pwrite(kept, buf, STATUS_SIZE, 0) == STATUS_SIZE)
		return 0;
	errno = e;
	return -1;
}

int status_readable(void)
{
	return path && access(path, F_OK) == 0;
}

/* The container must not get a host file it can write to: an `init` PID 1
 * never execs, so close-on-exec alone would not take it away. */
void status_close_in_child(void)
{
	if (kept >= 0)
		close(kept);
	kept = -1;
}
