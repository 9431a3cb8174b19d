/*
 * trace.c: strace-like text for `tsrun run --trace`.
 *
 * The trace is the teaching lab's window into what a container is, so it
 * prints the real syscalls with their real arguments, the way strace would:
 *   mount("proc", "/proc/self/fd/7", "proc", MS_NOSUID|MS_NODEV, NULL) = 0
 */
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>

#include "helper.h"

int g_trace;
void (*g_trace_sink)(const char *text);

/* Rotating buffers so one trace line can quote several strings. */
static char *qbuf(void)
{
	static char bufs[8][1024];
	static unsigned i;
	return bufs[i++ % 8];
}

static const char *quote(const char *s, size_t max)
{
	if (!s)
		return "NULL";
	char *b = qbuf(), *w = b;
	char *end = b + 1024 - 8; /* room for an escape, the quote, "..." */
	size_t n = 0;
	*w++ = '"';
	for (; *s && w < end && n < max; s++, n++) {
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
		w = stpcpy(w, "...");
	*w = '\0';
	return b;
}

const char *q(const char *s) { return quote(s, 4096); }
const char *qs(const char *s) { return quote(s, 32); }

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

void trace_ret(long ret, int err, const char *fmt, ...)
{
	char text[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(text, sizeof(text) - 128, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(text) - 128)
		n = (int)sizeof(text) - 129;
	if (ret < 0)
		snprintf(text + n, 128, " = -1 %s (%s)", errname(err), strerror(err));
	else
		snprintf(text + n, 128, " = %ld", ret);
	if (g_trace_sink)
		g_trace_sink(text);
}

void trace_line(const char *fmt, ...)
{
	char text[4096];
	va_list ap;
	if (!g_trace || !g_trace_sink)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	g_trace_sink(text);
}
