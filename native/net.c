/*
 * net.c: the `lo-up` step.
 *
 * A new network namespace starts with only a loopback interface, and it is
 * down: nothing could even connect to 127.0.0.1. The container's other
 * interfaces (a veth end) are tsrun's business, done from the host side
 * between "pid" and "go"; bringing up lo is done from inside.
 */
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helper.h"

int step_lo_up(struct child *c, char **a, int n)
{
	(void)a, (void)n;
	struct ifreq ifr;
	/* Any socket will do as a handle for the interface ioctls. */
	int fd = (int)TR(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0),
			 "socket(AF_INET, SOCK_DGRAM|SOCK_CLOEXEC, 0)");
	if (fd < 0)
		return fail(c, errno, "socket");
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return fail(c, errno, "read the flags of lo");
	ifr.ifr_flags |= IFF_UP;
	if (TR(ioctl(fd, SIOCSIFFLAGS, &ifr), "ioctl(%d, SIOCSIFFLAGS, {ifr_name=\"lo\", "
	       "ifr_flags=IFF_UP|IFF_LOOPBACK|IFF_RUNNING})", fd) < 0)
		return fail(c, errno, "bring lo up");
	close(fd);
	return 0;
}
