/*
 * net.c: the `lo-up` and `net-up` steps.
 *
 * A new network namespace starts with only a loopback interface, and it is
 * down: nothing could even connect to 127.0.0.1. The container's veth end
 * is made by tsrun on the host side (`ip link add ... netns NAME`); its
 * address and default route are set from inside, by `net-up`, with the same
 * ioctls `ifconfig` and `route` use: no `ip` process to start. A container in
 * a user namespace has no say over a network namespace the host owns: there
 * tsrun does it with `ip -n NAME` instead.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdlib.h>
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

static void set_in(struct sockaddr *sa, struct in_addr a)
{
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr = a;
	memcpy(sa, &sin, sizeof(sin));
}

/* net-up IFNAME ADDRESS PREFIXLEN GATEWAY|-: what `ip addr add ADDRESS/PREFIXLEN
 * brd + dev IFNAME`, `ip link set IFNAME up` and `ip route add default via
 * GATEWAY` do. Run again in the same namespace (a restart), it sets the same
 * address, and the default route that is already there stays. */
int step_net_up(struct child *c, char **a, int n)
{
	(void)n;
	struct in_addr addr, mask, brd, gw;
	char *end;
	long prefix = strtol(a[2], &end, 10);
	int has_gw = strcmp(a[3], "-") != 0;
	if (strlen(a[0]) == 0 || strlen(a[0]) >= IFNAMSIZ || inet_pton(AF_INET, a[1], &addr) != 1 ||
	    *a[2] == 0 || *end != 0 || prefix < 0 || prefix > 32 || (has_gw && inet_pton(AF_INET, a[3], &gw) != 1)) {
		errno = EINVAL;
		return fail(c, EINVAL, "net-up %s %s/%s via %s: not an interface, IPv4 address and prefix", a[0], a[1], a[2], a[3]);
	}
	mask.s_addr = prefix == 0 ? 0 : htonl(0xffffffffu << (32 - prefix));
	brd.s_addr = addr.s_addr | ~mask.s_addr;
	int fd = (int)TR(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), "socket(AF_INET, SOCK_DGRAM|SOCK_CLOEXEC, 0)");
	if (fd < 0)
		return fail(c, errno, "socket");
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, a[0]);
	char brd_text[INET_ADDRSTRLEN], mask_text[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &brd, brd_text, sizeof(brd_text));
	inet_ntop(AF_INET, &mask, mask_text, sizeof(mask_text));
	const struct {
		unsigned long req;
		const char *name;
		struct in_addr value;
		const char *text;
	} sets[] = {
		{SIOCSIFADDR, "SIOCSIFADDR", addr, a[1]},
		{SIOCSIFNETMASK, "SIOCSIFNETMASK", mask, mask_text},
		{SIOCSIFBRDADDR, "SIOCSIFBRDADDR", brd, brd_text},
	};
	for (size_t i = 0; i < sizeof(sets) / sizeof(*sets); i++) {
		set_in(&ifr.ifr_addr, sets[i].value);
		if (TR(ioctl(fd, sets[i].req, &ifr), "ioctl(%d, %s, {ifr_name=%s, addr=%s})", fd, sets[i].name,
		       q(a[0]), sets[i].text) < 0) {
			int err = errno;
			close(fd);
			return fail(c, err, "set %s's address %s/%ld", a[0], a[1], prefix);
		}
	}
	int up = ioctl(fd, SIOCGIFFLAGS, &ifr);
	if (up == 0) {
		ifr.ifr_flags |= IFF_UP;
		up = (int)TR(ioctl(fd, SIOCSIFFLAGS, &ifr), "ioctl(%d, SIOCSIFFLAGS, {ifr_name=%s, ifr_flags|=IFF_UP})", fd, q(a[0]));
	}
	if (up < 0) {
		int err = errno;
		close(fd);
		return fail(c, err, "bring %s up", a[0]);
	}
	if (has_gw) {
		struct rtentry rt;
		memset(&rt, 0, sizeof(rt));
		set_in(&rt.rt_dst, (struct in_addr){0});
		set_in(&rt.rt_genmask, (struct in_addr){0});
		set_in(&rt.rt_gateway, gw);
		rt.rt_flags = RTF_UP | RTF_GATEWAY;
		rt.rt_dev = a[0];
		if (TR(ioctl(fd, SIOCADDRT, &rt), "ioctl(%d, SIOCADDRT, {rt_dst=0.0.0.0/0, rt_gateway=%s, rt_dev=%s})", fd,
		       a[3], q(a[0])) < 0 && errno != EEXIST) {
			int err = errno;
			close(fd);
			return fail(c, err, "add the default route via %s", a[3]);
		}
	}
	close(fd);
	return 0;
}
