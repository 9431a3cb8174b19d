/*
 * mounts.c: paths inside the container root, and mounts onto them.
 *
 * The rootfs is built from an image, and an image can contain anything:
 * /proc -> /, /dev -> /etc, /etc/hosts -> /etc/shadow. A plain
 * mount("proc", "<rootfs>/proc") would follow such a symlink out to the host
 * (CVE-2021-30465 class). So every in-root path is opened with openat2() and
 * RESOLVE_IN_ROOT: the kernel resolves it as if the root fd were "/" (an
 * absolute symlink or "..", however many, stays inside), with
 * RESOLVE_NO_MAGICLINKS so /proc/self/... links cannot jump out either.
 *
 * We then mount onto what that fd holds, named by its magic link
 * "self/fd/N" — looked up in c->procfd, the host's /proc as it was before the
 * first step, never in the container's /proc. A volume at /proc/self (or a
 * symlink in the image that leads a volume there) would otherwise decide
 * where every later "/proc/self/fd/N" goes: the masks and read-only steps
 * landed on /home, and /proc/sys stayed writable (issue 13). mount(2) has no
 * dirfd argument, so for the call the working directory becomes c->procfd
 * and the name is relative to it; the old working directory comes back right
 * after (overlay lowerdirs and, with an idmapped store, bind sources are
 * relative to it).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <unistd.h>
#include <limits.h>

#include "helper.h"

#ifndef SYS_openat2
#define SYS_openat2 437 /* same number on x86_64 and aarch64 */
#endif
#ifndef RESOLVE_NO_MAGICLINKS
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_IN_ROOT 0x10
#endif
struct tsrun_open_how { uint64_t flags, mode, resolve; }; /* = struct open_how */

int proc_open(struct child *c)
{
	struct statfs fs;
	c->procfd = (int)TR(open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC),
			    "openat(AT_FDCWD, \"/proc\", O_PATH|O_DIRECTORY|O_CLOEXEC)");
	if (c->procfd < 0)
		return fail(c, errno, "open the host's /proc");
	if (fstatfs(c->procfd, &fs) < 0 || fs.f_type != PROC_SUPER_MAGIC)
		return fail_msg(c, ENOTSUP, "the host's /proc is not a proc file system");
	return 0;
}

/* While mount(2) runs here the working directory is the /proc handle: a
 * relative path in `src` or `data` would be looked up there. tsrun never
 * passes one (a bind's source is opened first, in first_mount(); the
 * rootfs, whose overlay data has relative lowerdirs, is mounted by
 * step_mount() onto a host path, without this). */
int mount_fd(struct child *c, const char *src, int srcfd, int tgtfd, const char *fs,
	     unsigned long flags, const char *data)
{
	char s[32], t[32];
	if (srcfd >= 0) {
		snprintf(s, sizeof(s), "self/fd/%d", srcfd);
		src = s;
	}
	snprintf(t, sizeof(t), "self/fd/%d", tgtfd);
	int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cwd < 0)
		return -1;
	long r = TR(fchdir(c->procfd), "fchdir(%d)", c->procfd);
	int e = errno;
	if (r == 0) {
		r = MNT(src, t, fs, flags, data);
		e = errno;
		/* Back where relative store paths resolve. Failing that, the
		 * call fails: its step fails, and nothing after it runs. */
		if (TR(fchdir(cwd), "fchdir(%d)", cwd) < 0)
			r = -1, e = errno;
	}
	close(cwd);
	errno = e;
	return (int)r;
}

static const char *oflags_str(int f)
{
	static char b[160];
	const char *acc = (f & O_ACCMODE) == O_RDWR ? "O_RDWR" :
			  (f & O_ACCMODE) == O_WRONLY ? "O_WRONLY" : "O_RDONLY";
	snprintf(b, sizeof(b), "%s%s%s%s%s%s%s|O_CLOEXEC", (f & O_PATH) ? "O_PATH" : acc,
		 (f & O_DIRECTORY) ? "|O_DIRECTORY" : "", (f & O_NOFOLLOW) ? "|O_NOFOLLOW" : "",
		 (f & O_CREAT) ? "|O_CREAT" : "", (f & O_NOCTTY) ? "|O_NOCTTY" : "",
		 (f & O_NONBLOCK) ? "|O_NONBLOCK" : "", "");
	return b;
}

int in_root(struct child *c, const char *path, int oflags, unsigned mode)
{
	struct tsrun_open_how how = {
		.flags = (uint64_t)(oflags | O_CLOEXEC),
		.mode = (oflags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_NO_MAGICLINKS | (c->rootfd >= 0 ? RESOLVE_IN_ROOT : 0),
	};
	int dirfd = c->rootfd >= 0 ? c->rootfd : AT_FDCWD;
	return (int)TR(syscall(SYS_openat2, dirfd, path, &how, sizeof(how)),
		       "openat2(%d, %s, {flags=%s, resolve=%s}, %zu)", dirfd, q(path),
		       oflags_str(oflags), c->rootfd >= 0 ?
		       "RESOLVE_NO_MAGICLINKS|RESOLVE_IN_ROOT" : "RESOLVE_NO_MAGICLINKS",
		       sizeof(how));
}

/* Open the parent directory of an in-root path and return its last name. */
static int in_root_parent(struct child *c, const char *path, char *base, size_t len)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	for (size_t l = strlen(dir); l > 1 && dir[l - 1] == '/';)
		dir[--l] = '\0';
	char *slash = strrchr(dir, '/');
	snprintf(base, len, "%s", slash ? slash + 1 : dir);
	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return errno = EINVAL, -1;
	if (slash)
		slash[slash == dir] = '\0'; /* "/x" -> "/", "/a/x" -> "/a" */
	return in_root(c, slash ? dir : ".", O_PATH | O_DIRECTORY, 0);
}

int step_root(struct child *c, char **a, int n)
{
	(void)n;
	/* The trusted host path of the (already mounted) rootfs; from here on
	 * every path is resolved below this fd. */
	int fd = (int)TR(open(a[0], O_PATH | O_DIRECTORY | O_CLOEXEC),
			 "openat(AT_FDCWD, %s, O_PATH|O_DIRECTORY|O_CLOEXEC)", q(a[0]));
	if (fd < 0)
		return fail(c, errno, "open root %s", a[0]);
	if (c->rootfd >= 0)
		close(c->rootfd);
	c->rootfd = fd;
	return 0;
}

/* mkdir -p, one component at a time, each resolved in root. mkdirat() never
 * follows a symlink in its last component, so a planted link makes EEXIST
 * and the following openat2() decides, inside the root. */
int step_mkdir(struct child *c, char **a, int n)
{
	(void)n;
	int ok;
	unsigned mode = parse_octal(a[1], &ok);
	char prefix[PATH_MAX] = "", path[PATH_MAX];
	if (!ok)
		return fail_msg(c, EINVAL, "mkdir %s: bad mode %s", a[0], a[1]);
	snprintf(path, sizeof(path), "%s", a[0]);
	int parent = c->rootfd >= 0 ? fcntl(c->rootfd, F_DUPFD_CLOEXEC, 0) :
		open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (parent < 0)
		return fail(c, errno, "mkdir %s: open root", a[0]);
	char *save = NULL;
	for (char *comp = strtok_r(path, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
		strncat(prefix, "/", sizeof(prefix) - strlen(prefix) - 1);
		strncat(prefix, comp, sizeof(prefix) - strlen(prefix) - 1);
		int fd = in_root(c, prefix, O_PATH | O_DIRECTORY, 0);
		if (fd < 0 && errno == ENOENT) {
			if (TR(mkdirat(parent, comp, mode), "mkdirat(%d, %s, 0%o)", parent,
			       q(comp), mode) < 0 && errno != EEXIST)
				return fail(c, errno, "mkdir %s", prefix);
			fd = in_root(c, prefix, O_PATH | O_DIRECTORY, 0);
			char link[PATH_MAX];
			ssize_t l;
			if (fd < 0 && errno == ENOENT &&
			    (l = readlinkat(parent, comp, link, sizeof(link) - 1)) >= 0) {
				link[l] = '\0';
				return fail_msg(c, ENOENT, "mkdir %s: it is a symlink to %s, which the image does not have",
						prefix, link);
			}
		}
		if (fd < 0)
			return fail(c, errno, "mkdir %s", prefix);
		close(parent);
		parent = fd;
	}
	close(parent);
	return 0;
}

int step_touch(struct child *c, char **a, int n)
{
	(void)n;
	int ok;
	unsigned mode = parse_octal(a[1], &ok);
	if (!ok)
		return fail_msg(c, EINVAL, "touch %s: bad mode %s", a[0], a[1]);
	int fd = in_root(c, a[0], O_PATH, 0); /* exists (whatever it is): done */
	if (fd < 0 && errno == ENOENT) /* O_NONBLOCK: never hang on a FIFO */
		fd = in_root(c, a[0], O_WRONLY | O_CREAT | O_NONBLOCK, mode);
	if (fd < 0)
		return fail(c, errno, "create %s", a[0]);
	close(fd);
	return 0;
}

int step_mknod(struct child *c, char **a, int n)
{
	(void)n;
	char base[NAME_MAX + 1], *e1, *e2;
	int ok;
	unsigned mode = parse_octal(a[4], &ok);
	unsigned long maj = strtoul(a[2], &e1, 10), min = strtoul(a[3], &e2, 10);
	if (!ok || *e1 || *e2 || (strcmp(a[1], "c") && strcmp(a[1], "b")))
		return fail_msg(c, EINVAL, "mknod %s: bad arguments", a[0]);
	mode_t type = a[1][0] == 'c' ? S_IFCHR : S_IFBLK;
	int dir = in_root_parent(c, a[0], base, sizeof(base));
	if (dir < 0)
		return fail(c, errno, "mknod %s", a[0]);
	if (TR(mknodat(dir, base, type | mode, makedev(maj, min)),
	       "mknodat(%d, %s, %s|0%o, makedev(%lu, %lu))", dir, q(base),
	       type == S_IFCHR ? "S_IFCHR" : "S_IFBLK", mode, maj, min) < 0)
		return fail(c, errno, "mknod %s", a[0]);
	close(dir);
	return 0;
}

/* The owner of an in-root path (a --device node gets its host node's). */
int step_chown(struct child *c, char **a, int n)
{
	(void)n;
	char *e1, *e2;
	unsigned long uid = strtoul(a[1], &e1, 10), gid = strtoul(a[2], &e2, 10);
	if (!*a[1] || !*a[2] || *e1 || *e2 || uid > UINT32_MAX - 1 || gid > UINT32_MAX - 1)
		return fail_msg(c, EINVAL, "chown %s: bad owner %s:%s", a[0], a[1], a[2]);
	int fd = in_root(c, a[0], O_PATH | O_NOFOLLOW, 0);
	if (fd < 0)
		return fail(c, errno, "chown %s", a[0]);
	if (TR(fchownat(fd, "", (uid_t)uid, (gid_t)gid, AT_EMPTY_PATH),
	       "fchownat(%d, \"\", %lu, %lu, AT_EMPTY_PATH)", fd, uid, gid) < 0) {
		int e = errno;
		close(fd);
		return fail(c, e, "chown %s", a[0]);
	}
	close(fd);
	return 0;
}

int step_symlink(struct child *c, char **a, int n)
{
	(void)n;
	char base[NAME_MAX + 1], old[PATH_MAX];
	int dir = in_root_parent(c, a[1], base, sizeof(base));
	if (dir < 0)
		return fail(c, errno, "symlink %s", a[1]);
	if (TR(symlinkat(a[0], dir, base), "symlinkat(%s, %d, %s)", q(a[0]), dir, q(base)) < 0) {
		int e = errno; /* the very same link already there is fine */
		ssize_t l = e == EEXIST ? readlinkat(dir, base, old, sizeof(old) - 1) : -1;
		if (l >= 0)
			old[l] = '\0';
		if (l < 0 || strcmp(old, a[0]))
			return fail(c, e, "symlink %s", a[1]);
	}
	close(dir);
	return 0;
}

/* ------------------------------------------------------------------ mount */

struct mopts { unsigned long flags, prop; int bind, remount; };

static int parse_mopts(const char *s, struct mopts *m)
{
	static const struct { const char *n; unsigned long f, prop; } t[] = {
		{"ro", MS_RDONLY, 0},        {"nosuid", MS_NOSUID, 0},
		{"nodev", MS_NODEV, 0},      {"noexec", MS_NOEXEC, 0},
		{"bind", MS_BIND, 0},        {"rec", MS_REC, 0},
		{"remount", MS_REMOUNT, 0},  {"relatime", MS_RELATIME, 0},
		{"strictatime", MS_STRICTATIME, 0}, {"noatime", MS_NOATIME, 0},
		{"private", 0, MS_PRIVATE},  {"rprivate", 0, MS_REC | MS_PRIVATE},
		{"slave", 0, MS_SLAVE},      {"rslave", 0, MS_REC | MS_SLAVE},
	};
	memset(m, 0, sizeof(*m));
	if (strcmp(s, "-") == 0)
		return 0;
	for (const char *p = s; *p;) {
		size_t len = strcspn(p, ","), i;
		for (i = 0; i < sizeof(t) / sizeof(*t); i++)
			if (strlen(t[i].n) == len && !strncmp(p, t[i].n, len))
				break;
		if (i == sizeof(t) / sizeof(*t))
			return -1;
		m->flags |= t[i].f;
		m->prop |= t[i].prop;
		p += len + (p[len] == ',');
	}
	m->bind = !!(m->flags & MS_BIND);
	m->remount = !!(m->flags & MS_REMOUNT);
	return 0;
}

static const char *dash_null(const char *s) { return strcmp(s, "-") ? s : NULL; }

/* The top mount now at the target: after a mount, an fd opened before it
 * still points at the directory underneath. */
static int reopen(struct child *c, const char *inroot, const char *host)
{
	return inroot ? in_root(c, inroot, O_PATH, 0) :
		(int)TR(open(host, O_PATH | O_CLOEXEC), "openat(AT_FDCWD, %s, O_PATH|O_CLOEXEC)", q(host));
}

/* The first mount(2) of a mount step: onto tgtfd (in root), or onto the
 * host path `host` when tgtfd < 0 (the rootfs). A bind's source is opened
 * first, as mount(2) would resolve it (following a final symlink), relative
 * to the working directory the store steps set. */
static int first_mount(struct child *c, const char *src, int tgtfd, const char *host,
		       const char *fs, unsigned long flags, const char *data)
{
	if (tgtfd < 0)
		return (int)MNT(src, host, fs, flags, data);
	if (!(flags & MS_BIND) || (flags & MS_REMOUNT) || !src)
		return mount_fd(c, src, -1, tgtfd, fs, flags, data);
	int sfd = (int)TR(open(src, O_PATH | O_CLOEXEC), "openat(AT_FDCWD, %s, O_PATH|O_CLOEXEC)", q(src));
	if (sfd < 0)
		return -1;
	int r = mount_fd(c, NULL, sfd, tgtfd, NULL, flags, NULL);
	int e = errno;
	close(sfd);
	errno = e;
	return r;
}

/* tgtfd/host: the target (see first_mount); inroot/host: how to find it again. */
static int do_mount(struct child *c, char **a, int tgtfd, const char *inroot, const char *host)
{
	const char *src = dash_null(a[0]), *fs = dash_null(a[2]), *data = dash_null(a[4]);
	struct mopts m;
	if (parse_mopts(a[3], &m) < 0)
		return fail_msg(c, EINVAL, "mount on %s: unknown flag in %s", a[1], a[3]);
	unsigned long extra = m.flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
	if (m.remount) {
		if (first_mount(c, src, tgtfd, host, fs, m.flags, data) < 0)
			return fail(c, errno, "remount %s", a[1]);
	} else if (m.bind) {
		/* A bind ignores ro/nosuid/...: those need a remount of the new
		 * mount, keeping the flags the kernel locked on it. */
		if (first_mount(c, src, tgtfd, host, NULL, MS_BIND | (m.flags & MS_REC), NULL) < 0)
			return fail(c, errno, "bind mount %s on %s", a[0], a[1]);
		if (extra) {
			int fd = reopen(c, inroot, host);
			if (fd < 0)
				return fail(c, errno, "reopen %s", a[1]);
			unsigned long fl = MS_BIND | MS_REMOUNT | extra | mount_flags_of(fd);
			if (mount_fd(c, NULL, -1, fd, NULL, fl, NULL) < 0)
				return fail(c, errno, "remount %s with %s", a[1], a[3]);
			close(fd);
		}
	} else if (first_mount(c, src, tgtfd, host, fs, m.flags, data) < 0) {
		return fail(c, errno, "mount %s on %s", fs ? fs : "-", a[1]);
	}
	if (m.prop) { /* propagation is its own mount(2) call, flags alone */
		int fd = reopen(c, inroot, host);
		if (fd < 0 || mount_fd(c, NULL, -1, fd, NULL, m.prop, NULL) < 0)
			return fail(c, errno, "set propagation of %s", a[1]);
		close(fd);
	}
	return 0;
}

int step_mount(struct child *c, char **a, int n)
{
	(void)n; /* a host target: only the rootfs itself, a trusted path */
	return do_mount(c, a, -1, NULL, a[1]);
}

/*
 * /proc and /sys are the kernel's: a mount over anything in them could hide a
 * mask or fake what the helper reads there. tsrun refuses such destinations
 * when it reads the flags; this catches the path an image leads a mount to
 * with a symlink (/data -> /proc/self). Only the cgroup file systems tsrun
 * itself mounts at /sys/fs/cgroup may go there (runc allows a short list).
 */
static int kernel_target_ok(struct child *c, int fd, const char *fs, const char *path)
{
	struct statfs sfs;
	if (fstatfs(fd, &sfs) < 0)
		return fail(c, errno, "mount %s on %s: statfs the target", fs, path);
	if (sfs.f_type != PROC_SUPER_MAGIC && sfs.f_type != SYSFS_MAGIC)
		return 0;
	if (!strcmp(path, "/sys/fs/cgroup") &&
	    (!strcmp(fs, "cgroup2") || !strcmp(fs, "cgroup") || !strcmp(fs, "tmpfs")))
		return 0;
	return fail_msg(c, EPERM, "mount on %s: it leads into %s, where nothing may be mounted",
			path, sfs.f_type == PROC_SUPER_MAGIC ? "/proc" : "/sys");
}

int step_mount_in(struct child *c, char **a, int n)
{
	(void)n;
	const char *fs = a[2];
	/* As runc: proc and sysfs go on a real directory, never through a
	 * symlink (O_NOFOLLOW|O_DIRECTORY fails with ENOTDIR on a link). */
	int strict = !strcmp(fs, "proc") || !strcmp(fs, "sysfs");
	int fd = in_root(c, a[1], O_PATH | (strict ? O_NOFOLLOW | O_DIRECTORY : 0), 0);
	if (fd < 0 && strict && (errno == ENOTDIR || errno == ELOOP))
		return fail_msg(c, errno, "mount %s on %s: the target is a symlink or not a directory",
				fs, a[1]);
	if (fd < 0)
		return fail(c, errno, "mount %s on %s: resolve the target in root", fs, a[1]);
	int r = kernel_target_ok(c, fd, fs, a[1]);
	if (r == 0)
		r = do_mount(c, a, fd, a[1], NULL);
	close(fd);
	return r;
}
