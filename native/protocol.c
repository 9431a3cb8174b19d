/*
 * protocol.c: the two wires of the helper.
 *
 * 1. fd 3, to tsrun: text lines of percent-encoded fields (see README.md).
 * 2. an internal SOCK_SEQPACKET socketpair, child -> monitor. SEQPACKET keeps
 *    message boundaries (one trace line = one message), carries the PTY master
 *    with SCM_RIGHTS, and is created CLOEXEC: when the child's execve()
 *    succeeds the kernel closes the child's end and the monitor reads EOF.
 *    That EOF is the only reliable "exec worked" signal there is.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helper.h"

static int proto_gone; /* tsrun went away: stay silent, keep monitoring */

int proto_alive(void) { return !proto_gone; }

/* tsrun is done with us (it went away, or the container is restarting and
 * only the status file speaks from now on). /dev/null takes fd 3's place
 * rather than a close(): the number stays taken, so no pipe or socket we
 * open later can become "fd 3" by accident. */
void proto_close(void)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);
	proto_gone = 1;
	if (fd >= 0 && fd != PROTO_FD) {
		dup3(fd, PROTO_FD, O_CLOEXEC);
		close(fd);
	}
}

static char out[16384];
static size_t outlen;

static void put_field(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	if (outlen)
		out[outlen++] = ' ';
	if (!*s && outlen < sizeof(out) - 2) {
		out[outlen++] = '%'; /* a lone "%" is the empty string */
		return;
	}
	for (; *s && outlen < sizeof(out) - 5; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '%' || ch < 0x21 || ch > 0x7e) {
			out[outlen++] = '%';
			out[outlen++] = hex[ch >> 4];
			out[outlen++] = hex[ch & 15];
		} else {
			out[outlen++] = (char)ch;
		}
	}
}

static void flush_line(void)
{
	out[outlen++] = '\n';
	for (size_t off = 0; off < outlen && !proto_gone;) {
		ssize_t n = write(PROTO_FD, out + off, outlen - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			proto_gone = 1; /* EPIPE (SIGPIPE is ignored) */
		else
			off += (size_t)n;
	}
	outlen = 0;
}

void proto_send(const char *first, ...)
{
	va_list ap;
	if (proto_gone)
		return;
	va_start(ap, first);
	for (const char *f = first; f; f = va_arg(ap, const char *))
		put_field(f);
	va_end(ap);
	flush_line();
}

/* Decimal without printf: the monitor lives as long as the container, and
 * every libc page it touches (vfprintf's code is large) counts in its RSS. */
char *itoa_s(char buf[16], long v)
{
	char tmp[24], *w = tmp + sizeof(tmp);
	unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
	*--w = '\0';
	do
		*--w = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0)
		*--w = '-';
	return memcpy(buf, w, (size_t)(tmp + sizeof(tmp) - w));
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	return -1;
}

/* Decode one field in place. %00 is refused: no syscall argument can hold it. */
int pct_decode(char *s)
{
	char *w = s;
	if (strcmp(s, "%") == 0) {
		*s = '\0';
		return 0;
	}
	for (char *r = s; *r; r++) {
		if (*r != '%') {
			*w++ = *r;
			continue;
		}
		int hi = hexval(r[1]), lo = hi < 0 ? -1 : hexval(r[2]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			return -1;
		*w++ = (char)(hi << 4 | lo);
		r += 2;
	}
	*w = '\0';
	return 0;
}

/* A growing buffer of bytes read from fd 3, consumed line by line. */
static struct { char *buf; size_t len, cap, off; } rd;

int proto_fill(int fd)
{
	if (rd.off) {
		memmove(rd.buf, rd.buf + rd.off, rd.len - rd.off);
		rd.len -= rd.off;
		rd.off = 0;
	}
	if (rd.cap - rd.len < 4096) {
		if (rd.cap > (64u << 20))
			return errno = E2BIG, -1; /* no plan is that big */
		size_t cap = rd.cap ? rd.cap * 2 : 8192;
		char *b = realloc(rd.buf, cap);
		if (!b)
			return -1;
		rd.buf = b;
		rd.cap = cap;
	}
	ssize_t n;
	do
		n = read(fd, rd.buf + rd.len, rd.cap - rd.len - 1);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		rd.len += (size_t)n;
	return n < 0 ? -1 : (int)(n > 0);
}

/* The next complete line (valid until the next proto_fill), or NULL. */
char *proto_read_line(void)
{
	char *start = rd.buf + rd.off;
	char *nl = rd.len > rd.off ? memchr(start, '\n', rd.len - rd.off) : NULL;
	if (!nl)
		return NULL;
	*nl = '\0';
	rd.off = (size_t)(nl - rd.buf) + 1;
	return start;
}

/* --------------------------------------------- internal child -> monitor */

int imsg_send(int sock, char type, int step, int fd, const char *s0,
	      const char *s1, const char *s2)
{
	char buf[IMSG_MAX];
	size_t len = 0;
	const char *strs[3] = {s0, s1, s2};
	int32_t st = step;
	buf[len++] = type;
	memcpy(buf + len, &st, sizeof(st));
	len += sizeof(st);
	for (int i = 0; i < 3 && strs[i]; i++) {
		size_t l = strnlen(strs[i], sizeof(buf) - len - 1);
		memcpy(buf + len, strs[i], l);
		len += l;
		buf[len++] = '\0';
	}
	struct iovec iov = {buf, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } cm;
	if (fd >= 0) {
		/* SCM_RIGHTS: the kernel installs a copy of fd in the receiver. */
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.b;
		mh.msg_controllen = sizeof(cm.b);
		struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &fd, sizeof(int));
	}
	ssize_t n;
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -1 : 0;
}

int imsg_recv(int sock, struct imsg *m, int flags)
{
	struct iovec iov = {m->buf, sizeof(m->buf) - 1};
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } cm;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = cm.b, .msg_controllen = sizeof(cm.b)};
	ssize_t n;
	do /* MSG_CMSG_CLOEXEC: a received PTY master must not leak into exec */
		n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n == 0 ? 0 : -1;
	m->fd = -1;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h))
		if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS)
			memcpy(&m->fd, CMSG_DATA(h), sizeof(int));
	if ((size_t)n < 1 + sizeof(int32_t))
		return errno = EPROTO, -1;
	m->buf[n] = '\0';
	m->type = m->buf[0];
	int32_t st;
	memcpy(&st, m->buf + 1, sizeof(st));
	m->step = st;
	m->ns = 0;
	for (char *p = m->buf + 5; p < m->buf + n && m->ns < 4; p += strlen(p) + 1)
		m->s[m->ns++] = p;
	for (int i = m->ns; i < 4; i++)
		m->s[i] = "";
	return 1;
}

/* ------------------------------------------------------------ errno names */

#define E(x) [x] = #x
static const char *const errnames[] = {
	E(EPERM), E(ENOENT), E(ESRCH), E(EINTR), E(EIO), E(ENXIO), E(E2BIG),
	E(ENOEXEC), E(EBADF), E(ECHILD), E(EAGAIN), E(ENOMEM), E(EACCES),
	E(EFAULT), E(ENOTBLK), E(EBUSY), E(EEXIST), E(EXDEV), E(ENODEV),
	E(ENOTDIR), E(EISDIR), E(EINVAL), E(ENFILE), E(EMFILE), E(ENOTTY),
	E(ETXTBSY), E(EFBIG), E(ENOSPC), E(ESPIPE), E(EROFS), E(EMLINK),
	E(EPIPE), E(EDOM), E(ERANGE), E(EDEADLK), E(ENAMETOOLONG), E(ENOLCK),
	E(ENOSYS), E(ENOTEMPTY), E(ELOOP), E(ENOMSG), E(ENODATA), E(ENOLINK),
	E(EPROTO), E(EOVERFLOW), E(EBADFD), E(ELIBBAD), E(EILSEQ), E(EUSERS),
	E(ENOTSOCK), E(EMSGSIZE), E(EOPNOTSUPP), E(EADDRINUSE), E(ENETDOWN),
	E(ECONNRESET), E(ENOBUFS), E(ETIMEDOUT), E(ECONNREFUSED), E(ESTALE),
	E(EDQUOT), E(ECANCELED), E(ENOKEY), E(EKEYREVOKED), E(EOWNERDEAD),
};
#undef E

/* strerror() in lower case, like Go's and so docker's error strings. */
const char *errmsg(int e)
{
	static char buf[128];
	snprintf(buf, sizeof(buf), "%s", strerror(e));
	if (buf[0] >= 'A' && buf[0] <= 'Z' && (buf[1] < 'A' || buf[1] > 'Z'))
		buf[0] += 'a' - 'A';
	return buf;
}

const char *errname(int e)
{
	static char buf[16];
	if (e > 0 && (size_t)e < sizeof(errnames) / sizeof(*errnames) && errnames[e])
		return errnames[e];
	snprintf(buf, sizeof(buf), "E%d", e);
	return buf;
}

/* docker's convention: 127 command not found, 126 not executable, 125 us. */
int exit_code_for(const char *op, const char *en)
{
	/* wait-start checks the program exec will run, and fails as exec would */
	if (strcmp(op, "exec") == 0 || strcmp(op, "wait-start") == 0) {
		if (strcmp(en, "ENOENT") == 0)
			return 127;
		if (!strcmp(en, "EACCES") || !strcmp(en, "EPERM") || !strcmp(en, "ENOEXEC") ||
		    !strcmp(en, "EISDIR"))
			return 126;
	}
	return 125;
}
