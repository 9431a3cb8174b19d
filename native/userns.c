/*
 * userns.c: a container in its own user namespace (`--userns=private`).
 *
 * Its root is an unprivileged host uid, yet its image files must still look
 * owned by root inside. The kernel's idmapped mounts (Linux >= 5.12) give
 * exactly that without touching a single file on disk:
 *
 *   monitor (host root)                    child (root of the new userns)
 *   clone(CLONE_NEWUSER|...)
 *   write /proc/<child>/uid_map, gid_map
 *   for each `idmap-mount <path>` step:
 *     open_tree(path, OPEN_TREE_CLONE)      a private copy of the mount,
 *     mount_setattr(MOUNT_ATTR_IDMAP,       seen through the child's maps
 *                   /proc/<child>/ns/user)
 *   "g", then the fds (SCM_RIGHTS)  ---->   setresuid(0), ...
 *                                            idmap-mount <path>:
 *                                              move_mount(fd, path)
 *                                            mount overlay (same lowerdirs)
 *
 * Only the monitor can idmap a mount of a host filesystem (it takes
 * CAP_SYS_ADMIN where that filesystem was mounted); only the child can attach
 * it in its own mount namespace. Through the idmapped store a file that is
 * uid 0 on disk is the container's uid 0, and what the container's root
 * writes into its upper dir is stored as uid 0: layers stay shared with every
 * other container, whatever its map.
 */
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "helper.h"

#define MAX_IDMAPS 8
static int idmap_fds[MAX_IDMAPS];
static int targets[MAX_IDMAPS], n_targets, next_target; /* in the child */
static int n_idmap_fds;

static int write_map(pid_t pid, const char *file, const char *map)
{
	char path[64], msg[256];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	int fd = (int)TR(open(path, O_WRONLY | O_CLOEXEC), "openat(AT_FDCWD, %s, O_WRONLY|O_CLOEXEC)",
			 q(path));
	size_t len = strlen(map);
	if (fd < 0 || TR(write(fd, map, len), "write(%d, %s, %zu)", fd, q(map), len) != (ssize_t)len) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		snprintf(msg, sizeof(msg), "write %s: %s", path, errmsg(e));
		errno = e;
		return start_failed("uid-map", e, msg);
	}
	close(fd);
	return 0;
}

static void close_idmaps(void)
{
	while (n_idmap_fds > 0)
		close(idmap_fds[--n_idmap_fds]);
}

/* After clone, before "g": the child's maps, then its idmapped mounts. */
int userns_prepare(const struct plan *p, pid_t child)
{
	char path[64], msg[600];
	close_idmaps(); /* a failed run before may have left some */
	if (!(p->clone_flags & CLONE_NEWUSER))
		return 0;
	if ((p->uid_map && write_map(child, "uid_map", p->uid_map) < 0) ||
	    (p->gid_map && write_map(child, "gid_map", p->gid_map) < 0))
		return -1;
	int nsfd = -1;
	for (int i = 0; i < p->n_steps; i++) {
		const struct step *st = &p->steps[i];
		if (strcmp(st->argv[0], "idmap-mount") != 0)
			continue;
		const char *dir = st->argv[1];
		if (nsfd < 0) {
			snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)child);
			nsfd = (int)TR(open(path, O_RDONLY | O_CLOEXEC),
				       "openat(AT_FDCWD, %s, O_RDONLY|O_CLOEXEC)", q(path));
			if (nsfd < 0)
				return start_failed("idmap-mount", errno, "open the user namespace");
		}
		int fd = (int)TR(open_tree(AT_FDCWD, dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC),
				 "open_tree(AT_FDCWD, %s, OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC)", q(dir));
		struct mount_attr attr = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)nsfd};
		if (fd < 0 || TR(mount_setattr(fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)),
				 "mount_setattr(%d, \"\", AT_EMPTY_PATH, {attr_set=MOUNT_ATTR_IDMAP, userns_fd=%d})",
				 fd, nsfd) < 0) {
			int e = errno;
			if (fd >= 0)
				close(fd);
			close(nsfd);
			snprintf(msg, sizeof(msg), "idmapped mount of %s: %s%s", dir, errmsg(e),
				 e == EINVAL ? " (the filesystem does not support idmapped mounts)" : "");
			return start_failed("idmap-mount", e, msg);
		}
		if (n_idmap_fds == MAX_IDMAPS) {
			close(fd);
			close(nsfd);
			return start_failed("idmap-mount", E2BIG, "too many idmap-mount steps");
		}
		idmap_fds[n_idmap_fds++] = fd;
	}
	if (nsfd >= 0)
		close(nsfd);
	return 0;
}

/* Right after "g": one message with one fd for each idmap-mount step. */
void userns_send(int sock)
{
	for (int i = 0; i < n_idmap_fds; i++)
		imsg_send(sock, 'M', 0, idmap_fds[i], NULL, NULL, NULL);
	close_idmaps();
}

/*
 * In the child, before it becomes root of its user namespace: open the
 * idmap-mount targets. Until then its host uid is still 0 (only unmapped), so
 * it may walk a root-only parent such as a 0700 --root; afterwards it is an
 * unprivileged host uid that may not. (The monitor cannot open them for it:
 * a target must be in the child's own mount namespace.)
 */
int userns_open_targets(struct child *c)
{
	for (int i = 0; i < c->plan->n_steps && n_targets < MAX_IDMAPS; i++) {
		const struct step *st = &c->plan->steps[i];
		if (strcmp(st->argv[0], "idmap-mount") != 0)
			continue;
		int fd = (int)TR(open(st->argv[1], O_PATH | O_DIRECTORY | O_CLOEXEC),
				 "openat(AT_FDCWD, %s, O_PATH|O_DIRECTORY|O_CLOEXEC)", q(st->argv[1]));
		if (fd < 0)
			return fail(c, errno, "open %s", st->argv[1]);
		targets[n_targets++] = fd;
	}
	return 0;
}

int step_idmap_mount(struct child *c, char **a, int n)
{
	(void)n;
	struct imsg m;
	if (!(c->plan->clone_flags & CLONE_NEWUSER))
		return fail_msg(c, EINVAL, "idmap-mount needs a new user namespace (clone newuser)");
	if (next_target >= n_targets)
		return fail_msg(c, EPROTO, "idmap-mount %s: its target was not opened", a[0]);
	int target = targets[next_target++];
	if (imsg_recv(c->sock, &m, 0) != 1 || m.fd < 0) {
		close(target);
		return fail_msg(c, EPROTO, "idmap-mount %s: the monitor sent no mount", a[0]);
	}
	/* Over the path itself, then into it: relative paths (lowerdir=l/...,
	 * the rootfs) resolve through the idmapped copy from here on. */
	int r = (int)TR(move_mount(m.fd, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH),
			"move_mount(%d, \"\", %d, \"\", MOVE_MOUNT_F_EMPTY_PATH|MOVE_MOUNT_T_EMPTY_PATH)",
			m.fd, target);
	int e = errno;
	if (r == 0 && TR(fchdir(m.fd), "fchdir(%d)", m.fd) < 0)
		r = -1, e = errno;
	close(m.fd);
	close(target);
	if (r < 0)
		return fail(c, e, "attach the idmapped mount of %s", a[0]);
	return 0;
}
