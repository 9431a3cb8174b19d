/*
 * attach.c: a detached container's terminal, served on a unix socket
 * (`tsrun attach`, `tsrun start -ai`, `tsrun run -it`).
 *
 * With a TTY the monitor keeps the PTY master (tty.c) and logs what the
 * container prints (logs.c). With an `attach-socket` line it also listens on
 * a unix socket in the container's directory, as podman's conmon does, and
 * relays the PTY to whoever connects: output to every client, input from any,
 * the window size from the last that sent one. Clients come and go: detach
 * keys are the client's business (it just closes), and the container never
 * waits for one. A client that does not read loses what does not fit in its
 * bounded buffer, whole frames at a time; the loop never blocks on it.
 *
 * Every message, both ways, is a frame: a type byte, the payload's length
 * (2 bytes, big-endian), the payload. See README.md, "Attach socket".
 *
 * Memory: a few small structs, and per client an 8 KiB frame buffer and a
 * 32 KiB output buffer in .bss, which cost nothing until a client uses them
 * and are given back when it leaves.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "helper.h"

#define MAX_CLIENTS 4
#define HDR 3           /* type, length (big-endian u16) */
#define IN_MAX 4096     /* the largest payload a client may send */
#define RX_CAP 8192     /* a client's frame buffer: HDR + IN_MAX, in whole pages */
#define OUT_CAP 32768   /* output a slow client may have waiting */
#define CTL_ROOM 64     /* kept free in OUT_CAP for the 'x' frame */
#define END_WAIT_MS 1000 /* at the end of a run: for clients to take the rest */

static int lsock = -1;
static const char *sock_path;

/* Zero-filled (.bss, not .data: the helper copies its own file for every
 * container); attach_open() marks the slots free. Nothing else here runs
 * without a socket. */
static struct client {
	int fd;       /* -1: a free slot */
	size_t rlen;  /* bytes of an incoming frame in rxbufs[i] */
	size_t olen;  /* bytes waiting in outbufs[i] */
} clients[MAX_CLIENTS];
/* page-aligned: given back to the kernel when their client leaves */
static unsigned char outbufs[MAX_CLIENTS][OUT_CAP] __attribute__((aligned(4096)));
static unsigned char rxbufs[MAX_CLIENTS][RX_CAP] __attribute__((aligned(4096)));

/* Input on its way to the PTY (non-blocking: a container that does not read
 * its input must not stall the loop); no client is read meanwhile. */
static unsigned char pend[IN_MAX];
static size_t plen, poff;

static struct winsize want; /* the last size a client asked for */
static int have_want;

int attach_open(const struct plan *p)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (!p->attach_socket)
		return 0;
	sock_path = p->attach_socket;
	for (int i = 0; i < MAX_CLIENTS; i++)
		clients[i].fd = -1;
	/* sun_path holds 107 bytes, and a store's container directory alone
	 * can be longer: bind the file's own name, from inside its directory
	 * (we are single-threaded, and go back to / at once). */
	const char *slash = strrchr(sock_path, '/');
	const char *name = slash + 1;
	if (strlen(name) >= sizeof(addr.sun_path) || !*name) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(addr.sun_path, name);
	char dir[4096];
	snprintf(dir, sizeof(dir), "%.*s", slash == sock_path ? 1 : (int)(slash - sock_path), sock_path);
	int dfd = (int)TR(open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC), "openat(AT_FDCWD, %s, O_PATH|O_DIRECTORY|O_CLOEXEC)", q(dir));
	if (dfd < 0)
		return -1;
	lsock = (int)TR(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0),
			"socket(AF_UNIX, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC, 0)");
	int r = -1, e;
	if (lsock >= 0 && TR(fchdir(dfd), "fchdir(%d)", dfd) == 0) {
		/* A socket left by a monitor that was killed: ours now. Anything
		 * else by that name is not ours to remove, and bind fails. */
		struct stat st;
		if (lstat(name, &st) == 0 && S_ISSOCK(st.st_mode))
			TR(unlink(name), "unlink(%s)", q(name));
		/* 0600: only tsrun's user may type into the container's terminal */
		mode_t old = umask(0177);
		r = (int)TR(bind(lsock, (struct sockaddr *)&addr, sizeof(addr)), "bind(%d, {AF_UNIX, %s})", lsock, q(name));
		e = errno;
		umask(old);
		(void)!chdir("/"); /* where the helper always is */
		errno = e;
	}
	if (r == 0)
		r = (int)TR(listen(lsock, MAX_CLIENTS), "listen(%d, %d)", lsock, MAX_CLIENTS);
	e = errno;
	close(dfd);
	if (r < 0 && lsock >= 0) {
		close(lsock);
		lsock = -1;
	}
	errno = e;
	return r;
}

static void drop(struct client *c)
{
	close(c->fd);
	c->fd = -1;
	c->rlen = c->olen = 0;
	/* The monitor lives as long as the container: what an attach session
	 * touched (its buffers, the code that served it) goes back once the
	 * last client has left, as after the start (main.c). */
	madvise(outbufs[c - clients], OUT_CAP, MADV_DONTNEED);
	madvise(rxbufs[c - clients], RX_CAP, MADV_DONTNEED);
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].fd >= 0)
			return;
	rss_trim();
}

/* Write what waits in out; -1 when the client is gone (and dropped). */
static int flush_out(struct client *c)
{
	unsigned char *out = outbufs[c - clients];
	size_t off = 0;
	while (off < c->olen) {
		ssize_t w = write(c->fd, out + off, c->olen - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			break;
		if (w <= 0) { /* EPIPE, ECONNRESET: it went away */
			drop(c);
			return -1;
		}
		off += (size_t)w;
	}
	memmove(out, out + off, c->olen - off);
	c->olen -= off;
	return 0;
}

/* One frame for one client: written at once if nothing is waiting, else
 * queued; dropped whole when it does not fit (output only: `room` keeps
 * space for the control frames). */
static void send_frame(struct client *c, char type, const void *b, size_t n, size_t room)
{
	unsigned char hdr[HDR] = {(unsigned char)type, (unsigned char)(n >> 8), (unsigned char)n};
	size_t done = 0;
	if (c->olen == 0) {
		struct iovec iov[2] = {{hdr, HDR}, {(void *)b, n}};
		ssize_t w;
		do
			w = writev(c->fd, iov, 2);
		while (w < 0 && errno == EINTR);
		if (w < 0 && errno != EAGAIN) {
			drop(c);
			return;
		}
		done = w < 0 ? 0 : (size_t)w;
		if (done == HDR + n)
			return;
	} else if (c->olen + HDR + n + room > OUT_CAP) {
		return; /* a client that does not keep up misses this much */
	}
	/* the rest of a frame already begun must go out, whatever the room */
	unsigned char *out = outbufs[c - clients] + c->olen;
	for (size_t i = done; i < HDR + n; i++)
		*out++ = i < HDR ? hdr[i] : ((const unsigned char *)b)[i - HDR];
	c->olen += HDR + n - done;
}

static void accept_one(void)
{
	int fd = (int)accept4(lsock, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	for (int i = 0; i < MAX_CLIENTS; i++) {
		if (clients[i].fd < 0) {
			clients[i].fd = fd;
			clients[i].rlen = clients[i].olen = 0;
			send_frame(&clients[i], 'r', "1", 1, 0); /* version 1: go ahead */
			return;
		}
	}
	static const char busy[] = "too many clients attached to this container (4)";
	unsigned char hdr[HDR] = {'e', 0, sizeof(busy) - 1};
	struct iovec iov[2] = {{hdr, HDR}, {(void *)busy, sizeof(busy) - 1}};
	(void)!writev(fd, iov, 2); /* an empty socket buffer takes it */
	close(fd);
}

static void flush_in(void)
{
	int master = tty_master();
	while (plen) {
		ssize_t w = master < 0 ? -1 : write(master, pend + poff, plen);
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (w <= 0) {
			plen = 0; /* no PTY (between runs), or it is gone: drop the input */
			return;
		}
		poff += (size_t)w;
		plen -= (size_t)w;
	}
}

static void resize(void)
{
	int master = tty_master();
	if (master >= 0)
		TR(ioctl(master, TIOCSWINSZ, &want), "ioctl(%d, TIOCSWINSZ, {ws_row=%d, ws_col=%d})",
		   master, want.ws_row, want.ws_col);
}

/* Handle the whole frames a client sent, while the PTY takes input. */
static void parse(struct client *c)
{
	unsigned char *rx = rxbufs[c - clients];
	while (c->fd >= 0 && c->rlen >= HDR && !plen) {
		size_t n = (size_t)rx[1] << 8 | rx[2];
		if (n > IN_MAX) {
			drop(c); /* not a tsrun client */
			return;
		}
		if (c->rlen < HDR + n)
			return;
		const unsigned char *b = rx + HDR;
		if (rx[0] == 'i' && n) {
			memcpy(pend, b, n);
			plen = n;
			poff = 0;
			flush_in();
		} else if (rx[0] == 'w' && n == 4) {
			want = (struct winsize){.ws_row = (unsigned short)(b[0] << 8 | b[1]),
						.ws_col = (unsigned short)(b[2] << 8 | b[3])};
			have_want = 1;
			resize(); /* the kernel tells the container (SIGWINCH) */
		} /* other types: from a later client, ignored */
		c->rlen -= HDR + n;
		memmove(rx, rx + HDR + n, c->rlen);
	}
}

int attach_poll_fds(struct pollfd *pfd, int n)
{
	if (lsock < 0)
		return n;
	pfd[n++] = (struct pollfd){.fd = lsock, .events = POLLIN};
	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = &clients[i];
		short ev = (short)((!plen && c->rlen < RX_CAP ? POLLIN : 0) | (c->olen ? POLLOUT : 0));
		if (c->fd >= 0 && ev)
			pfd[n++] = (struct pollfd){.fd = c->fd, .events = ev};
	}
	/* tty.c polls the master for its output; we only for room for input */
	if (plen && tty_master() >= 0)
		pfd[n++] = (struct pollfd){.fd = tty_master(), .events = POLLOUT};
	return n;
}

static void client_ready(struct client *c, short revents)
{
	if ((revents & POLLOUT) && flush_out(c) < 0)
		return;
	if (!(revents & (POLLIN | POLLHUP | POLLERR)) || plen || c->rlen == RX_CAP)
		return;
	ssize_t r = read(c->fd, rxbufs[c - clients] + c->rlen, RX_CAP - c->rlen);
	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
		drop(c); /* detached (or gone): the container goes on */
		return;
	}
	if (r > 0)
		c->rlen += (size_t)r;
	parse(c);
}

void attach_handle(struct pollfd *pfd, int n)
{
	for (int k = 0; k < n; k++) {
		if (!pfd[k].revents)
			continue;
		if (pfd[k].fd == lsock) {
			accept_one();
			continue;
		}
		if (pfd[k].fd == tty_master()) {
			flush_in();
			continue;
		}
		for (int i = 0; i < MAX_CLIENTS; i++)
			if (clients[i].fd == pfd[k].fd)
				client_ready(&clients[i], pfd[k].revents);
	}
	/* Input taken by the PTY: what else the clients sent can go now. */
	for (int i = 0; i < MAX_CLIENTS && !plen; i++)
		if (clients[i].fd >= 0)
			parse(&clients[i]);
}

void attach_output(const char *b, size_t n)
{
	if (lsock < 0)
		return;
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].fd >= 0)
			send_frame(&clients[i], 'o', b, n, CTL_ROOM);
}

int attach_winsize(struct winsize *ws)
{
	if (have_want)
		*ws = want;
	return have_want ? 0 : -1;
}

static long long ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* The run is over (its output drained): tell the clients how it ended,
 * give them a moment to take what waits, and let them go. A restart's PTY
 * is a new one; whoever wants it attaches again. */
void attach_run_end(int code, int sig)
{
	char msg[32];
	if (lsock < 0)
		return;
	size_t len = (size_t)snprintf(msg, sizeof(msg), "%d %d", code, sig);
	plen = 0;
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].fd >= 0)
			send_frame(&clients[i], 'x', msg, len, 0);
	for (long long end = ms_now() + END_WAIT_MS;;) {
		struct pollfd pfd[MAX_CLIENTS];
		int n = 0;
		for (int i = 0; i < MAX_CLIENTS; i++)
			if (clients[i].fd >= 0 && clients[i].olen)
				pfd[n++] = (struct pollfd){.fd = clients[i].fd, .events = POLLOUT};
		long long left = end - ms_now();
		if (!n || left <= 0 || poll(pfd, (nfds_t)n, (int)left) <= 0)
			break;
		for (int i = 0; i < MAX_CLIENTS; i++)
			if (clients[i].fd >= 0 && clients[i].olen)
				flush_out(&clients[i]);
	}
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].fd >= 0)
			drop(&clients[i]);
}

/* In the container's first process: none of this is its to keep (an
 * `init` PID 1 never execs, so close-on-exec is not enough). */
void attach_close_in_child(void)
{
	if (lsock < 0)
		return;
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].fd >= 0)
			close(clients[i].fd);
	if (lsock >= 0)
		close(lsock);
}

/* The monitor is done: nobody will serve the socket again. */
void attach_close(void)
{
	if (lsock < 0)
		return;
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].fd >= 0)
			drop(&clients[i]);
	close(lsock);
	lsock = -1;
	unlink(sock_path);
}
