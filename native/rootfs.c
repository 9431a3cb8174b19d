/*
 * rootfs.c: switch to the container's root, then hide and freeze parts of it.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "helper.h"

/* The per-mount flags in force on the mount an fd is on. A remount must
 * repeat them: in a user namespace the kernel locks nosuid/nodev/noexec/
 * atime flags it inherited, and a remount that would clear one is EPERM. */
unsigned long mount_flags_of(int fd)
{
	static const struct { unsigned long st, ms; } map[] = {
		{ST_RDONLY, MS_RDONLY},     {ST_NOSUID, MS_NOSUID},
		{ST_NODEV, MS_NODEV},       {ST_NOEXEC, MS_NOEXEC},
		{ST_SYNCHRONOUS, MS_SYNCHRONOUS}, {ST_MANDLOCK, MS_MANDLOCK},
		{ST_NOATIME, MS_NOATIME},   {ST_NODIRATIME, MS_NODIRATIME},
		{ST_RELATIME, MS_RELATIME},
	};
	struct statvfs sv;
	unsigned long ms = 0;
	if (fstatvfs(fd, &sv) < 0)
		return 0;
	for (size_t i = 0; i < sizeof(map) / sizeof(*map); i++)
		if (sv.f_flag & map[i].st)
			ms |= map[i].ms;
	return ms;
}

/*
 * pivot_root, never chroot: chroot only changes this process's view, and a
 * process with CAP_SYS_CHROOT can climb out of it; pivot_root changes the
 * mount namespace's root, and once the old root is unmounted the host's
 * filesystem is simply not in the container's namespace any more.
 *
 * pivot_root(".", ".") (an LXC trick, used by runc) needs no put_old
 * directory in the image: the old root ends up mounted on top of the new
 * one, and umount2(MNT_DETACH) lazily takes it away.
 */
int step_pivot_root(struct child *c, char **a, int n)
{
	(void)a, (void)n;
	if (c->rootfd < 0)
		return fail_msg(c, EINVAL, "pivot-root needs a root step before it");
	int oldroot = (int)TR(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC),
			      "openat(AT_FDCWD, \"/\", O_PATH|O_DIRECTORY|O_CLOEXEC)");
	if (oldroot < 0)
		return fail(c, errno, "open /");
	if (TR(fchdir(c->rootfd), "fchdir(%d)", c->rootfd) < 0)
		return fail(c, errno, "chdir to the new root");
	if (TR(syscall(SYS_pivot_root, ".", "."), "pivot_root(\".\", \".\")") < 0)
		return fail(c, errno, "pivot_root");
	/* Our cwd is now where the old root sits; the kernel does not promise
	 * it, so say it with the fd we kept (as runc does). */
	if (TR(fchdir(oldroot), "fchdir(%d)", oldroot) < 0)
		return fail(c, errno, "chdir to the old root");
	if (TR(umount2(".", MNT_DETACH), "umount2(\".\", MNT_DETACH)") < 0)
		return fail(c, errno, "unmount the old root");
	close(oldroot);
	if (TR(chdir("/"), "chdir(\"/\")") < 0)
		return fail(c, errno, "chdir /");
	int fd = (int)TR(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC),
			 "openat(AT_FDCWD, \"/\", O_PATH|O_DIRECTORY|O_CLOEXEC)");
	if (fd < 0)
		return fail(c, errno, "open the new /");
	close(c->rootfd);
	c->rootfd = fd;
	return 0;
}

/* Open an in-root path that may legitimately be missing (masks differ
 * between kernels). Returns -2 for "missing: skip". */
static int open_optional(struct child *c, const char *path)
{
	int fd = in_root(c, path, O_PATH, 0);
	if (fd < 0 && (errno == ENOENT || errno == ENOTDIR))
		return -2;
	return fd;
}

/*
 * After a mask or a read-only step: look the path up again and check it is
 * what the step made it, or the container does not start. A mount that went
 * somewhere else (issue 13: every mask and /proc/sys "succeeded" on /home)
 * is caught here rather than trusted.
 */
static int check_masked(struct child *c, const char *path, int dir)
{
	struct stat st;
	struct statfs fs;
	struct statvfs vfs;
	int fd = in_root(c, path, O_PATH, 0), ok = 0;
	if (fd >= 0 && fstat(fd, &st) == 0) {
		if (dir)
			ok = S_ISDIR(st.st_mode) && fstatfs(fd, &fs) == 0 && fs.f_type == TMPFS_MAGIC &&
			     fstatvfs(fd, &vfs) == 0 && (vfs.f_flag & ST_RDONLY);
		else
			ok = S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3);
	}
	if (fd >= 0)
		close(fd);
	return ok ? 0 : fail_msg(c, EPERM, "mask %s: not masked after the mount (%s); refusing to start",
				 path, dir ? "no empty read-only tmpfs there" : "not /dev/null there");
}

static int check_readonly(struct child *c, const char *path)
{
	struct statvfs vfs;
	int fd = in_root(c, path, O_PATH, 0);
	int ok = fd >= 0 && fstatvfs(fd, &vfs) == 0 && (vfs.f_flag & ST_RDONLY);
	if (fd >= 0)
		close(fd);
	return ok ? 0 : fail_msg(c, EPERM, "readonly %s: still writable after the remount; refusing to start", path);
}

int step_mask(struct child *c, char **a, int n)
{
	(void)n;
	struct stat st;
	int fd = open_optional(c, a[0]);
	if (fd == -2)
		return 0;
	if (fd < 0 || fstat(fd, &st) < 0)
		return fail(c, errno, "mask %s", a[0]);
	int dir = S_ISDIR(st.st_mode);
	if (dir) {
		/* An empty read-only tmpfs hides the directory's content. */
		if (mount_fd(c, "tmpfs", -1, fd, "tmpfs", MS_RDONLY, NULL) < 0)
			return fail(c, errno, "mask %s", a[0]);
	} else {
		/* /dev/null on top of a file: reads are empty, writes vanish. It
		 * must be the real one, 1:3, not a file planted in the image. */
		struct stat ns;
		int null = in_root(c, "/dev/null", O_PATH, 0);
		if (null < 0 || fstat(null, &ns) < 0)
			return fail(c, errno, "mask %s: open /dev/null", a[0]);
		if (!S_ISCHR(ns.st_mode) || ns.st_rdev != makedev(1, 3))
			return fail_msg(c, EPERM, "mask %s: /dev/null is not the 1:3 device", a[0]);
		if (mount_fd(c, NULL, null, fd, NULL, MS_BIND, NULL) < 0)
			return fail(c, errno, "mask %s", a[0]);
		close(null);
	}
	close(fd);
	return check_masked(c, a[0], dir);
}

int remount_ro_fd(struct child *c, int fd, int recursive)
{
	if (recursive) {
		/* Every mount below too: -v /:/host:ro must not leave /host/proc
		 * or /host/dev/shm writable (docker 25+ does the same). */
		struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
		if (TR(mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)),
		       "mount_setattr(%d, \"\", AT_EMPTY_PATH|AT_RECURSIVE, {attr_set=MOUNT_ATTR_RDONLY})",
		       fd) == 0)
			return 0;
		if (errno != ENOSYS)
			return -1;
		/* Linux < 5.12: the top mount only, as docker does there. */
	}
	unsigned long fl = MS_BIND | MS_REMOUNT | MS_RDONLY | mount_flags_of(fd);
	return mount_fd(c, NULL, -1, fd, NULL, fl, NULL);
}

static int remount_ro(struct child *c, const char *path, int recursive)
{
	int fd = in_root(c, path, O_PATH, 0);
	if (fd < 0)
		return fail(c, errno, "reopen %s", path);
	if (remount_ro_fd(c, fd, recursive) < 0)
		return fail(c, errno, "remount %s read-only", path);
	close(fd);
	return check_readonly(c, path);
}

int step_readonly(struct child *c, char **a, int n)
{
	(void)n;
	int fd = open_optional(c, a[0]);
	if (fd == -2)
		return 0;
	if (fd < 0)
		return fail(c, errno, "readonly %s", a[0]);
	/* A path is not a mount of its own: bind it onto itself to get one
	 * whose read-only flag affects only this subtree. */
	if (mount_fd(c, NULL, fd, fd, NULL, MS_BIND | MS_REC, NULL) < 0)
		return fail(c, errno, "bind %s onto itself", a[0]);
	close(fd);
	return remount_ro(c, a[0], 1); /* reopened: fd is under the new mount */
}

int step_remount_ro(struct child *c, char **a, int n)
{
	if (n == 2 && strcmp(a[1], "rec"))
		return fail_msg(c, EINVAL, "remount-ro %s: the second field must be rec, not %s", a[0], a[1]);
	return remount_ro(c, a[0], n == 2);
}
