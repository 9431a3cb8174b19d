/*
 * caps.c: who the container runs as, and with which capabilities.
 *
 * Order matters: `user` first (setgroups/setgid/setuid, keeping capabilities
 * across setuid with PR_SET_KEEPCAPS), then `caps`, which still needs
 * CAP_SETPCAP to shrink the bounding set. No libcap: two raw syscalls and a
 * few prctl()s are all there is to it.
 */
#include <fcntl.h>
#include <linux/capability.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <grp.h>

#include "helper.h"

static const char *const capnames[] = {
	"chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill",
	"setgid", "setuid", "setpcap", "linux_immutable", "net_bind_service",
	"net_broadcast", "net_admin", "net_raw", "ipc_lock", "ipc_owner",
	"sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
	"sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time",
	"sys_tty_config", "mknod", "lease", "audit_write", "audit_control",
	"setfcap", "mac_override", "mac_admin", "syslog", "wake_alarm",
	"block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
};
#define NCAPNAMES (int)(sizeof(capnames) / sizeof(*capnames))

/* The highest capability this kernel knows. */
static int last_cap(struct child *c)
{
	char buf[16] = "";
	/* The host's /proc (c->procfd): the container's could be covered. */
	int fd = openat(c->procfd, "sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0 && atoi(buf) > 0 && atoi(buf) < 64)
			return atoi(buf);
	}
	int cap = 0; /* no /proc: ask the bounding set until it says EINVAL */
	while (cap < 63 && prctl(PR_CAPBSET_READ, cap + 1, 0, 0, 0) >= 0)
		cap++;
	return cap;
}

static int parse_caps(const char *list, int last, uint64_t *set)
{
	*set = 0;
	if (strcmp(list, "-") == 0)
		return 0;
	if (strcmp(list, "all") == 0) {
		*set = last >= 63 ? ~0ull : (1ull << (last + 1)) - 1;
		return 0;
	}
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, ",");
		const char *name = strncasecmp(p, "cap_", 4) ? p : p + 4;
		size_t nlen = len - (size_t)(name - p);
		int i;
		for (i = 0; i < NCAPNAMES; i++)
			if (strlen(capnames[i]) == nlen && !strncasecmp(name, capnames[i], nlen))
				break;
		if (i == NCAPNAMES || i > last)
			return -1;
		*set |= 1ull << i;
		p += len + (p[len] == ',');
	}
	return 0;
}

/* "1<<CAP_CHOWN|1<<CAP_KILL", as strace prints a capability set */
static const char *caps_str(uint64_t set)
{
	static char bufs[3][1400];
	static unsigned k;
	char *b = bufs[k++ % 3], *w = b;
	*w = '\0';
	for (int i = 0; i < 64 && w < b + sizeof(bufs[0]) - 40; i++) {
		if (!(set & (1ull << i)))
			continue;
		w += sprintf(w, "%s1<<CAP_", w == b ? "" : "|");
		for (const char *s = i < NCAPNAMES ? capnames[i] : "?"; *s; s++)
			*w++ = (char)(*s >= 'a' && *s <= 'z' ? *s - 32 : *s);
		*w = '\0';
	}
	return *b ? b : "0";
}

static long do_capset(uint64_t eff, uint64_t perm, uint64_t inh)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2] = {
		{(uint32_t)eff, (uint32_t)perm, (uint32_t)inh},
		{(uint32_t)(eff >> 32), (uint32_t)(perm >> 32), (uint32_t)(inh >> 32)},
	};
	return TR(syscall(SYS_capset, &h, d),
		  "capset({version=_LINUX_CAPABILITY_VERSION_3, pid=0}, {effective=%s, "
		  "permitted=%s, inheritable=%s})", caps_str(eff), caps_str(perm), caps_str(inh));
}

int step_caps(struct child *c, char **a, int n)
{
	int last = last_cap(c);
	uint64_t bound, eff, want_perm, inh = 0, amb = 0;
	if (parse_caps(a[0], last, &bound) < 0 || parse_caps(a[1], last, &eff) < 0)
		return fail_msg(c, EINVAL, "caps: unknown capability in %s / %s", a[0], a[1]);
	/* An OCI bundle may name all five sets; tsrun's own containers give two
	 * (permitted = effective, no inheritable or ambient ones). */
	want_perm = eff;
	if ((n > 2 && parse_caps(a[2], last, &want_perm) < 0) || (n > 3 && parse_caps(a[3], last, &inh) < 0) ||
	    (n > 4 && parse_caps(a[4], last, &amb) < 0))
		return fail_msg(c, EINVAL, "caps: unknown capability in the permitted, inheritable or ambient set");
	if (eff & ~want_perm)
		return fail_msg(c, EINVAL, "caps: the effective set must be within the permitted one");
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		return fail(c, errno, "capget");
	uint64_t perm = d[0].permitted | (uint64_t)d[1].permitted << 32;
	/* setuid() to a non-root uid emptied the effective set (KEEPCAPS only
	 * keeps the permitted one): raise it again to have CAP_SETPCAP. */
	uint64_t cur = d[0].effective | (uint64_t)d[1].effective << 32;
	if (cur != perm && do_capset(perm, perm, 0) < 0)
		return fail(c, errno, "capset");
	/* The bounding set limits what any later execve() can ever gain. */
	char dropped[1400] = "";
	for (int cap = 0; cap <= last; cap++) {
		if (bound & (1ull << cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
			return fail(c, errno, "drop %s from the bounding set",
				    cap < NCAPNAMES ? capnames[cap] : "?");
		if (strlen(dropped) < sizeof(dropped) - 40)
			strcat(strcat(dropped, *dropped ? ", " : ""), caps_str(1ull << cap) + 3);
	}
	trace_line("prctl(PR_CAPBSET_DROP, {%s}) = 0 /* once per capability */", dropped);
	/* Ambient capabilities would survive execve() even for a non-root
	 * user; the container gets none (EINVAL: kernel < 4.3, has none). */
	if (TR(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0),
	       "prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)") < 0 && errno != EINVAL)
		return fail(c, errno, "clear ambient capabilities");
	/* docker's: permitted = effective, inheritable empty. */
	if (do_capset(eff, want_perm, inh) < 0)
		return fail(c, errno, "capset (are the effective caps permitted?)");
	/* The kernel raises an ambient capability only if it is permitted and
	 * inheritable; runc's own `spec` asks for ambient ones without
	 * inheritable ones, and runc skips those (with a warning): so do we. */
	for (int cap = 0; cap <= last; cap++)
		if ((amb & want_perm & inh & (1ull << cap)) &&
		    TR(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0),
		       "prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, %s, 0, 0)", caps_str(1ull << cap) + 3) < 0)
			return fail(c, errno, "raise the ambient capability %s",
				    cap < NCAPNAMES ? capnames[cap] : "?");
	return 0;
}

/* What execve() would do to our capabilities: the init reaper never
 * execs, yet must not keep more than the container's program gets. A
 * non-root user without file capabilities ends up with none. */
void caps_like_exec(void)
{
	prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	if (geteuid() != 0)
		do_capset(0, 0, 0);
}

static int parse_id(const char *s, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	*out = (unsigned)v;
	return *s && !*end && v < 0xffffffffu ? 0 : -1;
}

int step_user(struct child *c, char **a, int n)
{
	(void)n;
	unsigned uid, gid;
	gid_t groups[256];
	int ng = 0;
	if (parse_id(a[0], &uid) < 0 || parse_id(a[1], &gid) < 0)
		return fail_msg(c, EINVAL, "user: bad uid/gid %s:%s", a[0], a[1]);
	if (strcmp(a[2], "-")) {
		for (const char *p = a[2]; *p && ng < 256; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
			unsigned g;
			char tmp[16];
			snprintf(tmp, sizeof(tmp), "%.*s", (int)strcspn(p, ","), p);
			if (parse_id(tmp, &g) < 0)
				return fail_msg(c, EINVAL, "user: bad group %s", tmp);
			groups[ng++] = g;
		}
	}
	/* Groups first, while we are still allowed to (CAP_SETGID), and always:
	 * the host's supplementary groups must not follow us in. */
	if (TR(setgroups((size_t)ng, groups), "setgroups(%d, [...])", ng) < 0) {
		/* In a user namespace with setgroups "deny" there is nothing to
		 * drop and nothing we may do: fine when no groups were asked. */
		int e = errno;
		char sg[8] = "";
		int fd = openat(c->procfd, "self/setgroups", O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			(void)!read(fd, sg, sizeof(sg) - 1);
			close(fd);
		}
		if (ng || e != EPERM || strncmp(sg, "deny", 4))
			return fail(c, e, "setgroups");
	}
	if (TR(setgid(gid), "setgid(%u)", gid) < 0)
		return fail(c, errno, "setgid %u", gid);
	/* setuid() away from root would empty the permitted set; KEEPCAPS
	 * keeps it for the caps step (execve() clears KEEPCAPS again). */
	if (TR(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "prctl(PR_SET_KEEPCAPS, 1)") < 0)
		return fail(c, errno, "keepcaps");
	if (TR(setuid(uid), "setuid(%u)", uid) < 0)
		return fail(c, errno, "setuid %u", uid);
	return 0;
}
