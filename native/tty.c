/*
 * tty.c: the container's pseudo-terminal.
 *
 * Child side (the `console` step): open a PTY *inside* the container's own
 * devpts, so the container's tty names and permissions are its own, make the
 * slave its controlling terminal and stdio, and hand the master to the
 * monitor with SCM_RIGHTS.
 * Monitor side: copy our stdin to the master and the master to our stdout
 * (and the log, see logs.c), with our terminal in raw mode so every key (^C
 * too) reaches the container.
 */
#include <fcntl.h>
#include <stdio.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "helper.h"

/* ------------------------------------------------------------ monitor side */

static int master = -1, relay_in, in_eof, master_eof, raw_set;
static struct termios saved;
static char pend[4096];
static size_t plen, poff;

int tty_master(void) { return master; }

void tty_resize(void)
{
	struct winsize ws;
	if (master < 0)
		return;
	/* ours (a foreground run), else the last attached client's (attach.c) */
	if (ioctl(0, TIOCGWINSZ, &ws) == 0 || ioctl(1, TIOCGWINSZ, &ws) == 0 || attach_winsize(&ws) == 0)
		TR(ioctl(master, TIOCSWINSZ, &ws), "ioctl(%d, TIOCSWINSZ, {ws_row=%d, ws_col=%d})",
		   master, ws.ws_row, ws.ws_col);
}

void tty_setup(int m, int relay_stdin)
{
	master = m;
	/* Non-blocking: a container that does not read its input must not
	 * stall the loop that also carries its output. */
	fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
	relay_in = relay_stdin;
	/* (a restarted container gets a new PTY; our terminal is raw already) */
	if (relay_in && !raw_set && isatty(0) && tcgetattr(0, &saved) == 0) {
		/* Raw: no echo, no line editing, no ^C -> SIGINT on our side;
		 * the container's PTY does all of that for its own programs. */
		struct termios raw = saved;
		cfmakeraw(&raw);
		if (tcsetattr(0, TCSANOW, &raw) == 0)
			raw_set = 1;
	}
	tty_resize();
}

/* Stop relaying our fd 0 and give the terminal its mode back; the container
 * keeps its PTY, and what it writes still goes to the log. */
void tty_detach(void)
{
	relay_in = 0;
	in_eof = 1;
	tty_restore();
}

void tty_restore(void)
{
	if (raw_set)
		tcsetattr(0, TCSANOW, &saved);
	raw_set = 0;
}

int tty_poll_fds(struct pollfd *pfd, int n)
{
	if (master < 0)
		return n;
	if (!master_eof)
		pfd[n++] = (struct pollfd){.fd = master,
					   .events = POLLIN | (plen ? POLLOUT : 0)};
	if (relay_in && !in_eof && !plen)
		pfd[n++] = (struct pollfd){.fd = 0, .events = POLLIN};
	return n;
}

/* master -> stdout and the log (logs.c), once. Returns 0 when nothing
 * more is there now. */
static int copy_out(void)
{
	ssize_t r = out_read(OUT_STDOUT, master);
	if (out_reader_gone(OUT_STDOUT)) {
		/* Nobody reads our copy (`tsrun run -t IMAGE yes | head -1`):
		 * hang up, as a closed terminal does. The container's session
		 * gets SIGHUP and its writes fail with EIO. */
		close(master);
		master = -1;
		master_eof = 1;
		return 0;
	}
	if (r > 0)
		return 1;
	if (r == 0 || (errno != EAGAIN && errno != EINTR))
		master_eof = 1; /* EIO: every slave fd is closed */
	return 0;
}

static void flush_in(void)
{
	while (plen) {
		ssize_t w = write(master, pend + poff, plen);
		if (w <= 0) {
			if (w < 0 && errno != EAGAIN && errno != EINTR)
				plen = 0; /* the PTY is gone: drop the input */
			return;
		}
		poff += (size_t)w;
		plen -= (size_t)w;
	}
}

void tty_handle(struct pollfd *pfd, int n)
{
	for (int i = 0; i < n; i++) {
		if (!pfd[i].revents)
			continue;
		if (pfd[i].fd == master) {
			if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
				copy_out();
			if (pfd[i].revents & POLLOUT)
				flush_in();
		} else if (pfd[i].fd == 0) {
			ssize_t r = read(0, pend, sizeof(pend));
			if (r > 0) {
				plen = (size_t)r;
				poff = 0;
				flush_in();
			} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				in_eof = 1; /* stop reading; the container keeps its PTY */
			}
		}
	}
}

/* The container is gone: print what it wrote before it exited. */
void tty_drain(void)
{
	if (master >= 0)
		while (!master_eof && copy_out())
			;
}

void tty_reset(void)
{
	if (master >= 0)
		close(master);
	master = -1;
	master_eof = 0;
	plen = poff = 0;
}

/* -------------------------------------------------------------- child side */

/* runtime mode: hand the PTY master to whoever listens on `path` (conmon,
 * containerd's shim), as runc does with --console-socket: one message
 * whose data is the PTY's name and whose SCM_RIGHTS carry the fd. */
int console_send(const char *path, int fd)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	unsigned ptn;
	char name[32] = "/dev/ptmx";
	if (strlen(path) >= sizeof(addr.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(addr.sun_path, path);
	if (ioctl(fd, TIOCGPTN, &ptn) == 0)
		snprintf(name, sizeof(name), "/dev/pts/%u", ptn);
	int s = (int)TR(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0)");
	if (s < 0)
		return -1;
	if (TR(connect(s, (struct sockaddr *)&addr, sizeof(addr)), "connect(%d, {AF_UNIX, %s})", s, q(path)) < 0) {
		int e = errno;
		close(s);
		errno = e;
		return -1;
	}
	char cbuf[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {.iov_base = name, .iov_len = strlen(name)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	long r = TR(sendmsg(s, &mh, MSG_NOSIGNAL), "sendmsg(%d, {%s, SCM_RIGHTS [%d]})", s, q(name), fd);
	int e = errno;
	close(s);
	errno = e;
	return r < 0 ? -1 : 0;
}

int step_console(struct child *c, char **args, int nargs)
{
	(void)args, (void)nargs;
	struct stat st;
	int unlock = 0, peer;
	/* /dev/ptmx is a symlink to pts/ptmx: the container's own devpts
	 * instance (mounted with newinstance), resolved inside the root. */
	int m = in_root(c, "/dev/ptmx", O_RDWR | O_NOCTTY, 0);
	if (m < 0)
		return fail(c, errno, "open /dev/ptmx in the container");
	/* devpts' ptmx is char 5:2; anything else was planted in the image */
	if (fstat(m, &st) < 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) != 5 ||
	    minor(st.st_rdev) != 2)
		return fail(c, ENOTTY, "/dev/ptmx is not the devpts ptmx");
	if (TR(ioctl(m, TIOCSPTLCK, &unlock), "ioctl(%d, TIOCSPTLCK, [0])", m) < 0)
		return fail(c, errno, "unlockpt");
	/* TIOCGPTPEER opens the slave from the master itself (Linux >= 4.13):
	 * no path lookup of /dev/pts/N that an image could redirect. */
	peer = (int)TR(ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY),
		       "ioctl(%d, TIOCGPTPEER, O_RDWR|O_NOCTTY)", m);
	if (peer < 0) {
		unsigned ptn;
		char path[32];
		if (ioctl(m, TIOCGPTN, &ptn) < 0)
			return fail(c, errno, "ptsname");
		snprintf(path, sizeof(path), "/dev/pts/%u", ptn);
		if ((peer = in_root(c, path, O_RDWR | O_NOCTTY | O_NOFOLLOW, 0)) < 0)
			return fail(c, errno, "open %s", path);
	}
	if (TR(imsg_send(c->sock, MSG_CONSOLE, c->step, m, NULL, NULL, NULL),
	       "sendmsg(%d, {SCM_RIGHTS, [%d]})", c->sock, m) < 0)
		return fail(c, errno, "send the PTY master to the monitor");
	close(m);
	char ack;
	if (read(c->sock, &ack, 1) != 1) /* wait until the monitor sized it */
		return fail(c, EPIPE, "the monitor did not take the PTY");
	/* A controlling terminal belongs to a session leader. */
	if (getsid(0) != getpid() && TR(setsid(), "setsid()") < 0)
		return fail(c, errno, "setsid");
	if (TR(ioctl(peer, TIOCSCTTY, 0), "ioctl(%d, TIOCSCTTY, 0)", peer) < 0)
		return fail(c, errno, "make the PTY the controlling terminal");
	for (int fd = 0; fd < 3; fd++)
		if (TR(dup2(peer, fd), "dup2(%d, %d)", peer, fd) < 0)
			return fail(c, errno, "dup2 the PTY to fd %d", fd);
	if (peer > 2)
		close(peer);
	return 0;
}
