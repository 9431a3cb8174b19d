/*
 * trace.c: strace-like text for `tsrun run --trace`.
 *
 * The trace is the teaching lab's window into what a container is, so it
 * prints the real syscalls with their real arguments, the way strace would:
 *   mount("proc", "self/fd/7", "proc", MS_NOSUID|MS_NODEV, NULL) = 0
 * Strings are shown whole (strace cuts them at 32 bytes), and each line
 * carries the CLOCK_MONOTONIC time its call began: tsrun turns it into
 * "+12.3ms" on the same clock as its own host-side lines.
 */
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/mount.h>

#include "helper.h"

int g_trace;
void (*g_trace_sink)(const char *at, const char *text);

/* The one mark of a cut, "…(n more)": n is how many bytes were left out. */
#define ELLIPSIS "\xe2\x80\xa6"
#define QBUF (TRACE_TEXT_MAX + 64)

/* Rotating buffers so one trace line can quote several strings. */
static char *qbuf(void)
{
	static char bufs[8][QBUF];
	static unsigned i;
	return bufs[i++ % 8];
}

/* The whole string, quoted and escaped as strace does (-s is unlimited here:
 * an overlay's lowerdir= is the lesson, not noise). Only a string too long
 * for any trace line is cut, and then it says so: "..."…(n more). */
const char *q(const char *s)
{
	if (!s)
		return "NULL";
	char *b = qbuf(), *w = b;
	char *end = b + QBUF - 40; /* room for an escape, the quote, the mark */
	*w++ = '"';
	for (; *s && w < end; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\') {
			*w++ = '\\';
			*w++ = (char)ch;
		} else if (ch == '\n') {
			*w++ = '\\';
			*w++ = 'n';
		} else if (ch == '\t') {
			*w++ = '\\';
			*w++ = 't';
		} else if (ch < 0x20 || ch >= 0x7f) {
			w += snprintf(w, 5, "\\x%02x", ch);
		} else {
			*w++ = (char)ch;
		}
	}
	*w++ = '"';
	if (*s)
		snprintf(w, 32, ELLIPSIS "(%zu more)", strlen(s));
	else
		*w = '\0';
	return b;
}

struct flagname { unsigned long v; const char *n; };

static const char *flags(const struct flagname *t, size_t nt, unsigned long v,
			 const char *tail)
{
	char *b = qbuf(), *w = b;
	*w = '\0';
	for (size_t i = 0; i < nt; i++) {
		if ((v & t[i].v) != t[i].v || !t[i].v)
			continue;
		w += snprintf(w, (size_t)(b + 1000 - w), "%s%s", w == b ? "" : "|", t[i].n);
		v &= ~t[i].v;
	}
	if (v)
		w += snprintf(w, (size_t)(b + 1000 - w), "%s%#lx", w == b ? "" : "|", v);
	if (tail)
		snprintf(w, (size_t)(b + 1000 - w), "%s%s", w == b ? "" : "|", tail);
	if (!*b)
		strcpy(b, "0");
	return b;
}

#define F(x) {x, #x}
static const struct flagname mflags[] = {
	F(MS_RDONLY), F(MS_NOSUID), F(MS_NODEV), F(MS_NOEXEC), F(MS_SYNCHRONOUS),
	F(MS_REMOUNT), F(MS_MANDLOCK), F(MS_DIRSYNC), F(MS_NOATIME),
	F(MS_NODIRATIME), F(MS_BIND), F(MS_MOVE), F(MS_REC), F(MS_SILENT),
	F(MS_UNBINDABLE), F(MS_PRIVATE), F(MS_SLAVE), F(MS_SHARED),
	F(MS_RELATIME), F(MS_STRICTATIME), F(MS_LAZYTIME),
};
static const struct flagname cflags[] = {
	F(CLONE_NEWNS), F(CLONE_NEWCGROUP), F(CLONE_NEWUTS), F(CLONE_NEWIPC),
	F(CLONE_NEWUSER), F(CLONE_NEWPID), F(CLONE_NEWNET),
};
#undef F

const char *mount_flags_str(unsigned long f)
{
	return flags(mflags, sizeof(mflags) / sizeof(*mflags), f, NULL);
}

const char *clone_flags_str(unsigned long f)
{
	/* the low byte of clone's flags is the exit signal, as strace shows it */
	return flags(cflags, sizeof(cflags) / sizeof(*cflags), f & ~0xfful,
		     (f & 0xff) == SIGCHLD ? "SIGCHLD" : NULL);
}

long long trace_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Format a line into text (TRACE_TEXT_MAX + 1 bytes); one that does not fit
 * ends in the mark and the count of bytes left out. Returns its length. */
static size_t format(char *text, const char *fmt, va_list ap)
{
	const size_t room = TRACE_TEXT_MAX - 160; /* the result and the mark go after */
	int n = vsnprintf(text, room + 1, fmt, ap);
	if (n < 0)
		return (size_t)snprintf(text, 32, "(unprintable)");
	if ((size_t)n <= room)
		return (size_t)n;
	size_t cut = room;
	while (cut > 0 && ((unsigned char)text[cut] & 0xc0) == 0x80)
		cut--; /* not inside the mark of a quoted string */
	return cut + (size_t)snprintf(text + cut, 32, ELLIPSIS "(%zu more)", (size_t)n - cut);
}

static void emit(long long at, const char *text)
{
	char when[24];
	snprintf(when, sizeof(when), "%lld", at);
	g_trace_sink(when, text);
}

void trace_ret(long long at, long ret, int err, const char *fmt, ...)
{
	char text[TRACE_TEXT_MAX + 1];
	va_list ap;
	if (!g_trace_sink)
		return;
	va_start(ap, fmt);
	size_t n = format(text, fmt, ap);
	va_end(ap);
	if (ret < 0)
		snprintf(text + n, sizeof(text) - n, " = -1 %s (%s)", errname(err), strerror(err));
	else
		snprintf(text + n, sizeof(text) - n, " = %ld", ret);
	emit(at, text);
}

/* A line that is not one TR() call (execve before the call, a summary of
 * many calls, a comment for a step that makes none): stamped now. */
void trace_line(const char *fmt, ...)
{
	char text[TRACE_TEXT_MAX + 1];
	va_list ap;
	if (!g_trace || !g_trace_sink)
		return;
	long long at = trace_now();
	va_start(ap, fmt);
	format(text, fmt, ap);
	va_end(ap);
	emit(at, text);
}
