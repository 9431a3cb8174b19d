/*
 * sysctl.c: the `sysctl <name> <value>` step (docker's --sysctl).
 *
 * Writes <value> to /proc/sys/<name, dots as slashes> of the container's own
 * /proc, after pivot_root and before /proc/sys is made read-only. tsrun
 * allows only names that the container's namespaces scope (net.*, IPC and
 * UTS ones), so nothing here reaches the host. The path is resolved in the
 * container's root, never following a link out of it.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/vfs.h>
#include <linux/magic.h>

#include "helper.h"

int step_sysctl(struct child *c, char **a, int n)
{
	(void)n;
	char path[512];
	int len = snprintf(path, sizeof(path), "/proc/sys/%s", a[0]);
	if (len < 0 || (size_t)len >= sizeof(path) || strstr(a[0], "..") || strchr(a[0], '/'))
		return fail_msg(c, EINVAL, "sysctl: bad name %s", a[0]);
	for (char *p = path + 10; *p; p++)
		if (*p == '.')
			*p = '/';
	int fd = in_root(c, path, O_WRONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return fail(c, errno, "sysctl %s: open %s", a[0], path);
	/* The container's procfs, and nothing a mount could put in its place. */
	struct statfs fs;
	if (fstatfs(fd, &fs) < 0 || fs.f_type != PROC_SUPER_MAGIC) {
		close(fd);
		return fail_msg(c, EPERM, "sysctl %s: %s is not in a proc file system", a[0], path);
	}
	size_t vlen = strlen(a[1]);
	ssize_t w = TR(write(fd, a[1], vlen), "write(%d, %s, %zu)", fd, q(a[1]), vlen);
	int e = errno;
	close(fd);
	if (w != (ssize_t)vlen)
		return fail(c, w < 0 ? e : EIO, "sysctl %s=%s", a[0], a[1]);
	return 0;
}
