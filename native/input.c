/*
 * input.c: the container's stdin, without a TTY (`run -i`, `exec -i`).
 *
 * The container never gets our own fd 0. That is the caller's terminal (or
 * whatever tsrun was started with), and a process the container leaves
 * behind would keep it after tsrun returns: it could read what the user next
 * types at the host prompt, or print a fake prompt (issue 13). Instead the
 * container's stdin is a pipe, and the monitor copies our fd 0 into it while
 * the container runs; its end of input is the pipe's, and when the container
 * is gone nothing of it can read our terminal. docker and podman (conmon)
 * relay stdin the same way. Its output goes through pipes too (logs.c).
 *
 * Our fd 0 stays blocking (it may be the user's shell's terminal, and its
 * flags are shared with the shell): we read it only when poll() says so. The
 * pipe is ours alone and non-blocking: a container that does not read its
 * input must not stall the loop that carries its output. What it has not
 * taken yet waits in buf, and we stop reading fd 0 meanwhile.
 */
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include "helper.h"

static int pipe_w = -1; /* this run's write end */
static int src_eof;    /* our fd 0 ended: every later run gets EOF at once */
static char buf[65536];
static size_t len, off;

int in_pipe(const struct plan *p, int *child_end)
{
	*child_end = -1;
	if (p->stdin_null || p->tty) /* /dev/null, or the PTY (tty.c) */
		return 0;
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -1;
	fcntl(fds[1], F_SETFL, O_NONBLOCK);
	pipe_w = fds[1];
	*child_end = fds[0];
	len = off = 0;
	if (src_eof)
		in_close();
	return 0;
}

/* Our fd 0 is no longer ours to read (detach): the container's stdin ends. */
void in_detach(void)
{
	src_eof = 1;
	in_close();
}

void in_close(void)
{
	if (pipe_w >= 0)
		close(pipe_w);
	pipe_w = -1;
}

int in_poll_fds(struct pollfd *pfd, int n)
{
	if (pipe_w < 0)
		return n;
	if (len > off)
		pfd[n++] = (struct pollfd){.fd = pipe_w, .events = POLLOUT};
	else if (!src_eof)
		pfd[n++] = (struct pollfd){.fd = 0, .events = POLLIN};
	return n;
}

/* Write what is buffered; the container closed its stdin: stop for good. */
static void flush(void)
{
	while (off < len) {
		ssize_t w = write(pipe_w, buf + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		if (w <= 0) { /* EPIPE: nobody reads it any more */
			in_close();
			return;
		}
		off += (size_t)w;
	}
	len = off = 0;
}

void in_handle(struct pollfd *pfd, int n)
{
	for (int i = 0; i < n && pipe_w >= 0; i++) {
		if (!pfd[i].revents)
			continue;
		if (pfd[i].fd == pipe_w) {
			flush();
		} else if (pfd[i].fd == 0) {
			ssize_t r;
			do
				r = read(0, buf, sizeof(buf));
			while (r < 0 && errno == EINTR);
			if (r < 0 && errno == EAGAIN)
				continue; /* someone made fd 0 non-blocking */
			if (r <= 0) { /* EOF, or EIO from a terminal gone */
				src_eof = 1;
				in_close();
				return;
			}
			len = (size_t)r;
			off = 0;
			flush();
		}
	}
}
