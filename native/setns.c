/*
 * setns.c: the `setns <path> <type>` step, joining an existing namespace.
 *
 * Two uses:
 *   - `tsrun exec`: join a running container's namespaces through its
 *     /proc/<pid>/ns/<x> files (user just before mnt if it has one, mnt LAST: after it
 *     "/" and the working directory are the container's, and a path such as
 *     /proc/<pid>/... would be looked up in the container's /proc);
 *   - a container with a restart policy: join a network namespace that
 *     outlives each run (a bind-mounted nsfs file, `ip netns add`), so that
 *     its address and published ports stay the same, instead of CLONE_NEWNET.
 * The PID namespace is the exception: setns(CLONE_NEWPID) only changes where
 * the caller's future children go, so the monitor does it before clone()
 * (the `pidns` monitor line).
 */
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "helper.h"

static const struct { const char *name; int type; const char *flag; } types[] = {
	{"net", CLONE_NEWNET, "CLONE_NEWNET"},       {"ipc", CLONE_NEWIPC, "CLONE_NEWIPC"},
	{"uts", CLONE_NEWUTS, "CLONE_NEWUTS"},       {"mnt", CLONE_NEWNS, "CLONE_NEWNS"},
	{"cgroup", CLONE_NEWCGROUP, "CLONE_NEWCGROUP"}, {"user", CLONE_NEWUSER, "CLONE_NEWUSER"},
	{"pid", CLONE_NEWPID, "CLONE_NEWPID"},
#ifdef CLONE_NEWTIME
	{"time", CLONE_NEWTIME, "CLONE_NEWTIME"},
#endif
};

int step_setns(struct child *c, char **a, int n)
{
	(void)n;
	size_t i;
	for (i = 0; i < sizeof(types) / sizeof(*types); i++)
		if (strcmp(types[i].name, a[1]) == 0)
			break;
	if (i == sizeof(types) / sizeof(*types))
		return fail_msg(c, EINVAL, "setns: unknown namespace type %s", a[1]);
	/* A plain host path: this step runs before anything changes our root. */
	int fd = (int)TR(open(a[0], O_RDONLY | O_CLOEXEC), "openat(AT_FDCWD, %s, O_RDONLY|O_CLOEXEC)",
			 q(a[0]));
	if (fd < 0)
		return fail(c, errno, "open %s", a[0]);
	/* The type makes the kernel check that fd is that kind of namespace. */
	if (TR(setns(fd, types[i].type), "setns(%d, %s)", fd, types[i].flag) < 0) {
		int e = errno;
		close(fd);
		return fail(c, e, "join the %s namespace %s", a[1], a[0]);
	}
	close(fd);
	if (types[i].type == CLONE_NEWNS) {
		/* setns() to a mount namespace sets our root and cwd to its root:
		 * the container's "/" (pivot_root made it so). In-root paths
		 * from here on (console, chdir) are resolved below it. */
		int root = (int)TR(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC),
				   "openat(AT_FDCWD, \"/\", O_PATH|O_DIRECTORY|O_CLOEXEC)");
		if (root < 0)
			return fail(c, errno, "open the container's root");
		if (c->rootfd >= 0)
			close(c->rootfd);
		c->rootfd = root;
	}
	/* Joined as host root, we are nobody there: become its root (as
	 * nsenter does), so that what we create (a PTY) has an owner. */
	if (types[i].type == CLONE_NEWUSER &&
	    (TR(setresgid(0, 0, 0), "setresgid(0, 0, 0)") < 0 || TR(setresuid(0, 0, 0), "setresuid(0, 0, 0)") < 0))
		return fail(c, errno, "become root of the user namespace %s", a[0]);
	return 0;
}
