/*
 * logs.c: the container's output, as docker's json-file log driver writes it.
 *
 * The container's stdout and stderr are pipes to the monitor (with a PTY:
 * the master's output, logged as "stdout"), never our own fds. Every chunk
 * read is copied at once to our own fds 1/2 when tsrun is attached
 * (`attach-stdio 1`), and, with a `log` line, cut into lines for the log
 * file, one JSON object a line, exactly as `docker logs` expects them:
 *
 *   {"log":"hello\n","stream":"stdout","time":"2026-11-22T01:02:03.123456789Z"}
 *
 * A line without its "\n" yet is held back until the pipe has been quiet for
 * PARTIAL_IDLE_MS (a shell prompt), or until it reaches 16 KiB (docker's
 * limit), and is then logged without a "\n": joining the "log" fields gives
 * back the exact bytes. When the file would grow past max-bytes, it is
 * rotated (<path> -> <path>.1 -> <path>.2 ...), as docker does.
 *
 * Memory: one 16 KiB line buffer a stream and an 8 KiB output buffer, all
 * static; the monitor lives as long as the container.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helper.h"

#define LINE_BYTES 16384    /* docker's bufSize: longer lines are split */
#define PARTIAL_IDLE_MS 50  /* a partial line is logged after this much quiet */
#define DRAIN_IDLE_MS 100   /* after exit: stop waiting for a quiet writer */
#define DRAIN_MAX_MS 2000   /* ... or for one that never stops */

static const struct plan *P;
static int attached; /* attach-stdio: copy to our fds 1/2 */
static int logfd = -1;
static unsigned long long log_size; /* of the current file, buffered bytes included */

static struct stream {
	int fd;            /* read end of this run's pipe, -1 when none or at EOF */
	int copy_fd;       /* where attach-stdio copies it: 1 or 2 */
	const char *name;  /* "stdout", "stderr" */
	int reader_gone;   /* attach-stdio: writing our copy failed with EPIPE */
	size_t len;        /* bytes in buf: a line not logged yet */
	struct timespec at; /* when they were read (the record's "time") */
	long long at_ms;   /* the same on the monotonic clock, for PARTIAL_IDLE_MS */
	char *buf;         /* LINE_BYTES */
} streams[2] = {
	{.fd = -1, .copy_fd = 1, .name = "stdout"},
	{.fd = -1, .copy_fd = 2, .name = "stderr"},
};
/* Apart from the small structs above: zero-filled (.bss) pages cost no
 * memory until output actually flows through them. */
static char bufs[2][LINE_BYTES];

static char obuf[8192]; /* JSON on its way to the log file */
static size_t olen;

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Write everything, waiting if fd is non-blocking. -1 (errno set) when it
 * cannot be written: EPIPE, ENOSPC... the caller decides; the rest is dropped. */
int write_all(int fd, const char *b, size_t n)
{
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EAGAIN) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			poll(&p, 1, -1);
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static void log_flush(void)
{
	if (logfd >= 0 && olen)
		(void)write_all(logfd, obuf, olen); /* a full disk: nobody to tell */
	olen = 0;
}

static void oput(const char *s, size_t n)
{
	while (n) {
		if (olen == sizeof(obuf))
			log_flush();
		size_t k = sizeof(obuf) - olen < n ? sizeof(obuf) - olen : n;
		memcpy(obuf + olen, s, k);
		olen += k;
		s += k;
		n -= k;
	}
}

/* ------------------------------------------------------------------ JSON */

/* Length of the valid UTF-8 sequence at b, 0 when it is not one (or is cut
 * off at n). Overlong forms, surrogates and > U+10FFFF are invalid. */
static size_t utf8_len(const unsigned char *b, size_t n)
{
	unsigned c = b[0], cp;
	size_t len;
	if (c < 0x80)
		return 1;
	if (c < 0xc2 || c > 0xf4)
		return 0;
	len = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
	cp = c & (0x7f >> len);
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((b[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (b[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* Where to cut a full buffer so that no UTF-8 character is split. */
static size_t utf8_cut(const unsigned char *b, size_t n)
{
	for (size_t k = 1; k <= 3 && k < n; k++) {
		unsigned c = b[n - k];
		if ((c & 0xc0) == 0x80)
			continue; /* a continuation byte: look further back */
		size_t want = c >= 0xc2 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3 :
			      c >= 0xf0 && c <= 0xf4 ? 4 : 1;
		return want > k ? n - k : n;
	}
	return n;
}

/* Escape as Go's encoding/json does (so as docker does): \" \\ \n \r \t,
 * other control bytes and <, >, & as \u00XX, U+2028/2029 escaped, invalid
 * UTF-8 as \ufffd. With put == 0 only count the bytes. */
static size_t json_escape(const unsigned char *b, size_t n, int put)
{
	static const char hex[] = "0123456789abcdef";
	size_t out = 0;
	for (size_t i = 0; i < n;) {
		unsigned char c = b[i];
		char e[8];
		size_t el = 0, len = utf8_len(b + i, n - i);
		if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t') {
			e[0] = '\\';
			e[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : (char)c;
			el = 2;
		} else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
			memcpy(e, "\\u00", 4);
			e[4] = hex[c >> 4];
			e[5] = hex[c & 15];
			el = 6;
		} else if (len == 0) {
			memcpy(e, "\\ufffd", 6);
			el = 6;
			len = 1;
		} else if (len == 3 && c == 0xe2 && b[i + 1] == 0x80 && (b[i + 2] & 0xfe) == 0xa8) {
			memcpy(e, b[i + 2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
			el = 6;
		}
		if (el) {
			if (put)
				oput(e, el);
			out += el;
			i += len ? len : 1;
			continue;
		}
		if (put)
			oput((const char *)b + i, len);
		out += len;
		i += len;
	}
	return out;
}

/* ------------------------------------------------------------- rotation */

static void numbered(char *out, size_t len, unsigned i)
{
	char num[16];
	snprintf(out, len, "%s.%s", P->log_path, itoa_s(num, i));
}

/* <path>.(k-1) -> <path>.k ... <path> -> <path>.1, keeping max-files files
 * in all (docker's max-file); max-files 1 truncates in place, 0 keeps all. */
static void rotate(void)
{
	char from[4200], to[4200];
	unsigned top = P->log_max_files ? P->log_max_files - 1 : 1;
	log_flush();
	if (P->log_max_files == 1) {
		if (ftruncate(logfd, 0) == 0) /* O_APPEND: writes go to the new end */
			log_size = 0;
		return;
	}
	if (!P->log_max_files) /* no cap: shift every old file up by one */
		for (;; top++) {
			numbered(from, sizeof(from), top);
			if (access(from, F_OK) < 0)
				break;
		}
	for (unsigned i = top; i > 1; i--) {
		numbered(from, sizeof(from), i - 1);
		numbered(to, sizeof(to), i);
		rename(from, to); /* over the oldest one; a missing file is fine */
	}
	numbered(to, sizeof(to), 1);
	rename(P->log_path, to);
	close(logfd);
	logfd = open(P->log_path, O_WRONLY | O_CREAT | O_APPEND | O_TRUNC | O_CLOEXEC |
		     O_NOCTTY | O_NOFOLLOW, 0640);
	log_size = 0;
}

/* One log record: {"log":"...","stream":"...","time":"..."}\n */
static void record(struct stream *s, const char *b, size_t n)
{
	static const char a[] = "{\"log\":\"", m[] = "\",\"stream\":\"", t[] = "\",\"time\":\"",
			  z[] = "\"}\n";
	char when[40];
	if (logfd < 0)
		return;
	size_t tl = strlen(rfc3339(when, &s->at)), nl = strlen(s->name);
	size_t total = sizeof(a) - 1 + json_escape((const unsigned char *)b, n, 0) +
		       sizeof(m) - 1 + nl + sizeof(t) - 1 + tl + sizeof(z) - 1;
	/* docker's rule: rotate before a record that would pass the limit */
	if (P->log_max_bytes && log_size && log_size + total > P->log_max_bytes)
		rotate();
	if (logfd < 0)
		return;
	oput(a, sizeof(a) - 1);
	json_escape((const unsigned char *)b, n, 1);
	oput(m, sizeof(m) - 1);
	oput(s->name, nl);
	oput(t, sizeof(t) - 1);
	oput(when, tl);
	oput(z, sizeof(z) - 1);
	log_size += total;
}

/* Log the complete lines in s->buf, and the rest too if it is a full buffer. */
static void log_lines(struct stream *s, size_t from)
{
	size_t start = 0;
	for (char *nl; (nl = memchr(s->buf + from, '\n', s->len - from));) {
		size_t end = (size_t)(nl - s->buf) + 1;
		record(s, s->buf + start, end - start);
		start = from = end;
	}
	if (s->len - start == LINE_BYTES) { /* 16 KiB without a newline */
		size_t cut = utf8_cut((const unsigned char *)s->buf, s->len);
		record(s, s->buf, cut);
		start = cut;
	}
	memmove(s->buf, s->buf + start, s->len - start);
	s->len -= start;
}

static void log_partial(struct stream *s)
{
	if (s->len)
		record(s, s->buf, s->len);
	s->len = 0;
}

/* --------------------------------------------------------------- public */

int out_open(const struct plan *p)
{
	struct stat st;
	P = p;
	attached = p->attach;
	streams[0].buf = bufs[0];
	streams[1].buf = bufs[1];
	if (!p->log_path)
		return 0;
	/* O_APPEND: a restarted container, or a new monitor for a `start`,
	 * goes on where the log ends, as docker does. */
	logfd = open(p->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY |
		     O_NOFOLLOW, 0640);
	if (logfd < 0 || fstat(logfd, &st) < 0)
		return -1;
	log_size = (unsigned long long)st.st_size;
	return 0;
}

void out_detach(void)
{
	attached = 0;
}

int out_pipes(int child_ends[2])
{
	child_ends[0] = child_ends[1] = -1;
	/* Always pipes, log or not: our fds 1/2 are the caller's terminal,
	 * which nothing in the container may hold (see input.c). */
	for (int i = 0; i < 2; i++) {
		int fds[2];
		if (pipe2(fds, O_CLOEXEC) < 0) {
			int e = errno;
			if (i == 1) { /* EMFILE on the second: give back the first */
				close(streams[0].fd);
				close(child_ends[0]);
				streams[0].fd = child_ends[0] = -1;
			}
			errno = e;
			return -1;
		}
		/* ours non-blocking: one loop serves both pipes, the PTY and fd 3 */
		fcntl(fds[0], F_SETFL, O_NONBLOCK);
		streams[i].fd = fds[0];
		child_ends[i] = fds[1];
	}
	return 0;
}

void out_close_in_child(void)
{
	for (int i = 0; i < 2; i++)
		if (streams[i].fd >= 0)
			close(streams[i].fd);
	if (logfd >= 0)
		close(logfd);
}

ssize_t out_read(int stream, int fd)
{
	struct stream *s = &streams[stream];
	ssize_t n;
	do
		n = read(fd, s->buf + s->len, LINE_BYTES - s->len);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n;
	if (fd == tty_master()) /* a PTY's output also goes to `tsrun attach` */
		attach_output(s->buf + s->len, (size_t)n);
	if (attached && write_all(s->copy_fd, s->buf + s->len, (size_t)n) < 0 && errno == EPIPE)
		s->reader_gone = 1;
	if (logfd < 0) {
		s->len = 0; /* not logged: the buffer was only a scratch area */
		return n;
	}
	clock_gettime(CLOCK_REALTIME, &s->at);
	s->at_ms = now_ms();
	s->len += (size_t)n;
	log_lines(s, s->len - (size_t)n);
	log_flush(); /* `tsrun logs -f` sees it now */
	return n;
}

int out_reader_gone(int stream)
{
	return streams[stream].reader_gone;
}

int out_poll_fds(struct pollfd *pfd, int n)
{
	for (int i = 0; i < 2; i++)
		if (streams[i].fd >= 0)
			pfd[n++] = (struct pollfd){.fd = streams[i].fd, .events = POLLIN};
	return n;
}

void out_handle(struct pollfd *pfd, int n)
{
	for (int k = 0; k < n; k++) {
		for (int i = 0; i < 2; i++) {
			struct stream *s = &streams[i];
			if (!pfd[k].revents || pfd[k].fd != s->fd)
				continue;
			ssize_t r = out_read(i, s->fd);
			/* EOF: every writer is gone. Or whoever read our copy is
			 * (`tsrun run IMAGE yes | head -1`): closing the pipe makes
			 * the container's next write fail with SIGPIPE, as it would
			 * in a shell pipeline, instead of it writing forever. */
			if (r == 0 || (r < 0 && errno != EAGAIN) || s->reader_gone) {
				close(s->fd);
				s->fd = -1;
				log_partial(s);
				log_flush();
			}
		}
	}
}

int out_timeout_ms(void)
{
	int best = -1;
	long long now = now_ms();
	for (int i = 0; i < 2 && logfd >= 0; i++) {
		if (!streams[i].len)
			continue;
		long long left = streams[i].at_ms + PARTIAL_IDLE_MS - now;
		if (left < 0)
			left = 0;
		if (best < 0 || left < best)
			best = (int)left;
	}
	return best;
}

void out_tick(void)
{
	long long now = now_ms();
	int any = 0;
	for (int i = 0; i < 2; i++) {
		if (streams[i].len && now - streams[i].at_ms >= PARTIAL_IDLE_MS) {
			log_partial(&streams[i]); /* the writer paused mid-line */
			any = 1;
		}
	}
	if (any)
		log_flush();
}

void out_drain(void)
{
	/* With a PID namespace every writer died with the container's init
	 * and the pipes end at EOF. Without one, a process left behind may
	 * hold them open: take what comes, until it pauses or for DRAIN_MAX_MS. */
	long long deadline = now_ms() + DRAIN_MAX_MS;
	for (;;) {
		struct pollfd pfd[2];
		int n = out_poll_fds(pfd, 0);
		if (!n || now_ms() > deadline)
			break;
		int r = poll(pfd, (nfds_t)n, DRAIN_IDLE_MS);
		if (r == 0 || (r < 0 && errno != EINTR))
			break;
		out_handle(pfd, n);
	}
	for (int i = 0; i < 2; i++) {
		if (streams[i].fd >= 0)
			close(streams[i].fd);
		streams[i].fd = -1;
		log_partial(&streams[i]);
	}
	log_flush();
}
