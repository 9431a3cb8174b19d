/*
 * tsrun-helper: the small C half of tsrun.
 *
 * Node cannot fork, and unshare()/setns() affect only the calling thread of a
 * multithreaded process, so tsrun hands a fully decided *launch plan* to this
 * single-threaded program. It clone()s the container's first process into new
 * namespaces, runs the plan's steps in it, execve()s, and stays behind as the
 * container's monitor (its parent). See README.md for the plan and protocol.
 */
#include <dirent.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "helper.h"

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/*
 * The monitor lives as long as its container, so what it holds matters. Its
 * own memory is ~150 KiB, but VmRSS also counts every page of shared code
 * (libc, ld.so, this binary) it has mapped, and the kernel maps those 64 KiB
 * at a time around each touched page ("fault-around"): reading the plan and
 * cloning touch far more libc than the relay loop will ever run again. Once
 * the container runs, drop our view of the read-only segments of each loaded
 * object. The pages stay in the page cache and the few the loop needs come
 * back on first touch. Writable segments (relocated data) are never touched;
 * only whole pages inside a read-only segment are dropped.
 */
/* Text relocations patch code pages in place: those copies must stay. */
static int has_textrel(const struct dl_phdr_info *info)
{
	for (int i = 0; i < info->dlpi_phnum; i++) {
		if (info->dlpi_phdr[i].p_type != PT_DYNAMIC)
			continue;
		const ElfW(Dyn) *d = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
		for (; d->d_tag != DT_NULL; d++)
			if (d->d_tag == DT_TEXTREL || (d->d_tag == DT_FLAGS && (d->d_un.d_val & DF_TEXTREL)))
				return 1;
	}
	return 0;
}

static int trim_object(struct dl_phdr_info *info, size_t size, void *data)
{
	uintptr_t pg = (uintptr_t)getpagesize();
	(void)size, (void)data;
	if (strstr(info->dlpi_name, "vdso") || has_textrel(info))
		return 0; /* the kernel's own page; patched code */
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W))
			continue;
		uintptr_t start = info->dlpi_addr + ph->p_vaddr, end = start + ph->p_memsz;
		start = (start + pg - 1) & ~(pg - 1);
		end &= ~(pg - 1);
		if (end > start)
			madvise((void *)start, end - start, MADV_DONTNEED);
	}
	return 0;
}

void rss_trim(void)
{
	dl_iterate_phdr(trim_object, NULL);
}

static void say(int fd, const char *s) { (void)!write(fd, s, strlen(s)); }

/* runtime mode's --preserve-fds N: fds 4..4+N-1 are the container's 3..3+N-1 (exec.c). */
int g_preserve_fds;

/* Close every inherited fd but 0-3 (and those to preserve): whatever tsrun's
 * parent leaked to us (a host directory, a socket) must never be reachable
 * from the container. */
static void close_inherited_fds(void)
{
	unsigned first = 4u + (unsigned)g_preserve_fds;
	/* ours to pass on, and only by exec.c's dup2(): close-on-exec meanwhile */
	for (int fd = 4; fd < (int)first; fd++)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	if (syscall(SYS_close_range, first, ~0u, 0u) == 0)
		return;
	/* close_range() is Linux >= 5.9: walk /proc/self/fd instead. Collect
	 * first, close after, so we do not pull entries out under readdir. */
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return;
	int fds[1024], n = 0, self = dirfd(d);
	for (struct dirent *e; (e = readdir(d)) && n < 1024;) {
		int fd = atoi(e->d_name);
		if (fd >= (int)first && fd != self)
			fds[n++] = fd;
	}
	closedir(d);
	while (n)
		close(fds[--n]);
}

/* ps shows /proc/<pid>/cmdline: we overwrite our argv strings in place
 * (like setproctitle), cut to the space argv had. */
static char *title_start;
static size_t title_room;

void proc_title(const char *title)
{
	size_t n = strlen(title);
	if (!title_start || title_room < 1)
		return;
	if (n > title_room - 1)
		n = title_room - 1;
	memset(title_start, 0, title_room);
	memcpy(title_start, title, n);
	/* Overwriting the NUL that ends the argument area tells the kernel
	 * this is a setproctitle()-style title: /proc/<pid>/cmdline then stops
	 * at the first NUL, with no trail of empty arguments. */
	title_start[title_room] = ' ';
}

/*
 * CVE-2019-5736: a process in a container that can open our /proc/<pid>/exe
 * (one that joined it with --pid host and CAP_SYS_PTRACE, or the helper made
 * to run itself inside a container through a `#!/proc/self/exe` script) holds
 * the binary every container on the host starts from. The kernel refuses to
 * write a file while it is being executed (ETXTBSY), but only while: once no
 * helper runs, a write through that fd would replace the host's helper. So,
 * as runc does, we never run from that file: first thing, we copy ourselves
 * into a memfd, seal it (no write, grow or shrink, ever), and re-exec from
 * it. What /proc/<pid>/exe then leads to is that sealed copy. One copy of
 * ~100 KiB a monitor; about a millisecond at start. Where it cannot be done
 * (no /proc, vm.memfd_noexec=2) the helper refuses to run rather than run
 * unprotected, and says which call failed. */
static const char *sealed_op = "";

static int sealed_self(void)
{
	const int seals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
	sealed_op = "open /proc/self/exe";
	int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return -1;
	int have = fcntl(self, F_GET_SEALS);
	if (have >= 0 && (have & seals) == seals) {
		close(self);
		return 0; /* the copy: go on */
	}
#ifndef MFD_EXEC
#define MFD_EXEC 0x10U
#endif
	/* MFD_EXEC: a kernel with vm.memfd_noexec (6.3+) may want it said;
	 * an older one refuses the flag it does not know. */
	sealed_op = "memfd_create";
	int mfd = memfd_create("tsrun-helper", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
	if (mfd < 0 && errno == EINVAL)
		mfd = memfd_create("tsrun-helper", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0) {
		int e = errno;
		close(self);
		errno = e;
		return -1;
	}
	sealed_op = "sendfile";
	for (;;) {
		ssize_t n = sendfile(mfd, self, NULL, 1 << 20);
		if (n == 0)
			break;
		if (n < 0 && errno != EINTR) {
			int e = errno;
			close(self);
			close(mfd);
			errno = e;
			return -1;
		}
	}
	close(self);
	sealed_op = "fcntl F_ADD_SEALS";
	if (fcntl(mfd, F_ADD_SEALS, seals) < 0) {
		int e = errno;
		close(mfd);
		errno = e;
		return -1;
	}
	return mfd;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		say(1, "tsrun-helper " HELPER_VERSION "\n");
		return 0;
	}
	int copy = sealed_self();
	if (copy > 0) {
		extern char **environ;
		fexecve(copy, argv, environ);
		sealed_op = "fexecve";
		copy = -1;
	}
	if (copy < 0) {
		int e = errno;
		say(2, "tsrun-helper: cannot run from a sealed copy of itself (CVE-2019-5736): ");
		say(2, sealed_op);
		say(2, ": ");
		say(2, errmsg(e));
		say(2, e == EACCES && !strcmp(sealed_op, "fexecve") ? " (is vm.memfd_noexec 2?)\n" : "\n");
		return 125;
	}
	if (argc > 1 && strcmp(argv[1], "--userns-exec") == 0)
		return userns_exec_main(argc - 2, argv + 2);
	if (argc == 3 && strcmp(argv[1], "--preserve-fds") == 0) {
		char *end;
		long n = strtol(argv[2], &end, 10);
		if (!*argv[2] || *end || n < 0 || n > 1000) {
			say(2, "tsrun-helper: --preserve-fds takes a count from 0 to 1000\n");
			return 125;
		}
		g_preserve_fds = (int)n;
	} else if (argc > 1) {
		say(2, "usage: tsrun-helper [--version | --userns-exec ... | --preserve-fds N]  (plan on fd 3, see native/README.md)\n");
		return 125;
	}
	/* fds 0-2 must be open, or the first file we open would become the
	 * container's stdout. */
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			return 125;
	if (fcntl(PROTO_FD, F_GETFD) < 0) {
		say(2, "tsrun-helper: fd 3 must be the plan socket (see native/README.md)\n");
		return 125;
	}
	close_inherited_fds();
	/* The monitor may live for days: its working directory must not keep
	 * the mount tsrun was started from busy (plan paths are absolute). */
	if (chdir("/") < 0)
		return 125;
	/* fd 3 belongs to the monitor; the container must not inherit it. */
	fcntl(PROTO_FD, F_SETFD, FD_CLOEXEC);
	/* Not dumpable: a process in the container cannot ptrace us or open our
	 * /proc/<pid>/fd and /proc/<pid>/exe (runc's CVE-2016-9962 and
	 * CVE-2019-5736). execve() of the container program makes it dumpable
	 * again, as a normal process should be. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	/* tsrun may go away at any time; a write to a dead fd 3 must be an
	 * EPIPE we ignore, not a signal that kills the monitor. */
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_NAME, "tsrun-monitor", 0, 0, 0);

	struct plan plan;
	char err[512];
	if (plan_read(PROTO_FD, &plan, err, sizeof(err)) < 0) {
		proto_send("error", "0", "plan", "EINVAL", err, NULL);
		return 125;
	}
	title_start = argv[0];
	title_room = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) - argv[0]);
	char title[256] = "tsrun:[monitor ";
	strncat(title, plan.name ? plan.name : "", sizeof(title) - 20);
	proc_title(strcat(title, "]"));
	monitor_run(&plan);
}
