/*
 * tsrun-helper: shared declarations.
 *
 * The helper has two halves that live in one binary:
 *   - the monitor (main.c, monitor.c, tty.c): reads the plan, clone()s the
 *     container's first process, speaks the protocol on fd 3, relays the TTY,
 *     forwards signals and reports the exit status;
 *   - the child (child.c and the step files): runs the plan's steps inside the
 *     new namespaces and finally execve()s the container's program.
 * They talk over one SOCK_SEQPACKET socketpair (see protocol.c).
 */
#ifndef TSRUN_HELPER_H
#define TSRUN_HELPER_H

#include <errno.h>
#include <stddef.h>
#include <sys/types.h>

#define HELPER_VERSION "1"
#define PROTO_FD 3 /* the socket to tsrun: plan in, protocol both ways */

/* ---------------------------------------------------------------- plan.c */

struct step_def;
struct step {
	char **argv; /* argv[0] is the step name, argv[1..] its decoded fields */
	int argc;
	const struct step_def *def;
};

struct plan {
	int trace, tty, stdin_null;
	const char *name;
	char **cgroup_procs;
	int n_cgroup_procs;
	unsigned long clone_flags;
	struct step *steps; /* everything after `clone`, numbered from 1 */
	int n_steps;
};

int plan_read(int fd, struct plan *p, char *err, size_t errlen);
unsigned long plan_clone_flag(const char *name); /* 0 when unknown */

/* ------------------------------------------------------------ protocol.c */

/* Lines on fd 3 (percent-encoded fields). */
void proto_send(const char *first, ...);  /* NULL-terminated list of fields */
char *itoa_s(char buf[16], long v);       /* decimal, without printf */
int proto_alive(void);
int pct_decode(char *s);                  /* in place; -1 on a bad escape */
char *proto_read_line(void);              /* next buffered line, or NULL */
int proto_fill(int fd);                   /* read once: >0 data, 0 EOF, -1 */

/* Child -> monitor messages on the internal SOCK_SEQPACKET socketpair. */
enum { MSG_TRACE = 'T', MSG_ERROR = 'E', MSG_EXEC = 'X', MSG_CONSOLE = 'C' };
#define IMSG_MAX 8192
struct imsg {
	char type;
	int step;
	const char *s[4]; /* TRACE: text; ERROR: op, errno name, message */
	int ns;
	int fd;           /* CONSOLE: the PTY master, or -1 */
	char buf[IMSG_MAX];
};
int imsg_send(int sock, char type, int step, int fd, const char *s0,
	      const char *s1, const char *s2);
int imsg_recv(int sock, struct imsg *m, int flags); /* 1 msg, 0 EOF, -1 */

const char *errname(int e);   /* "ENOENT" */
const char *errmsg(int e);    /* "no such file or directory" */
int exit_code_for(const char *op, const char *errno_name);

/* --------------------------------------------------------------- trace.c */

extern int g_trace;
extern void (*g_trace_sink)(const char *text);
const char *q(const char *s);         /* "quoted" C string, for paths */
const char *qs(const char *s);        /* quoted, cut at 32 bytes like strace */
const char *mount_flags_str(unsigned long f);
const char *clone_flags_str(unsigned long f);
void trace_ret(long ret, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void trace_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* TR(call, fmt, ...): run a syscall, and with --trace report it strace-style
 * ("mount(...) = 0" or "= -1 ENOENT (No such file or directory)"). errno is
 * preserved so the caller can still report the failure. */
#define TR(call, ...) ({                                                \
	long tr_r_ = (long)(call);                                      \
	int tr_e_ = errno;                                              \
	if (g_trace)                                                    \
		trace_ret(tr_r_, tr_e_, __VA_ARGS__);                   \
	errno = tr_e_;                                                  \
	tr_r_;                                                          \
})

/* mount(2) under TR, the call learners most want to see. */
#define MNT(src, tgt, fs, fl, data) \
	TR(mount(src, tgt, fs, fl, data), "mount(%s, %s, %s, %s, %s)", q(src), \
	   q(tgt), q(fs), mount_flags_str(fl), qs(data))

/* --------------------------------------------------------------- child.c */

struct child {
	const struct plan *plan;
	int sock;       /* to the monitor; CLOEXEC so execve closes it */
	int rootfd;     /* O_PATH fd of the container root, -1 before `root` */
	int step;       /* number of the step being run */
	char **env;     /* from the `env` steps, NULL-terminated */
	int nenv;
	int exit_code;  /* 125, or 126/127 for exec failures */
	char err_op[32];
	char err_msg[1024];
	int err_errno;
};

_Noreturn void child_main(struct child *c, int nullfd);
int fail(struct child *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int fail_msg(struct child *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
unsigned parse_octal(const char *s, int *ok);

typedef int (*step_fn)(struct child *c, char **args, int nargs);
struct step_def {
	const char *name;
	int min_args, max_args; /* max -1: unlimited */
	step_fn run;
};
const struct step_def *step_lookup(const char *name);

/* Step implementations, one group per file. */
int step_mkdir(struct child *, char **, int);      /* mounts.c */
int step_touch(struct child *, char **, int);
int step_mknod(struct child *, char **, int);
int step_symlink(struct child *, char **, int);
int step_mount(struct child *, char **, int);
int step_mount_in(struct child *, char **, int);
int step_root(struct child *, char **, int);
int step_pivot_root(struct child *, char **, int); /* rootfs.c */
int step_mask(struct child *, char **, int);
int step_readonly(struct child *, char **, int);
int step_remount_ro(struct child *, char **, int);
int step_user(struct child *, char **, int);       /* caps.c */
int step_caps(struct child *, char **, int);
void caps_like_exec(void);
int step_seccomp(struct child *, char **, int);    /* seccomp.c */
int step_console(struct child *, char **, int);    /* tty.c */
int step_init(struct child *, char **, int);       /* init.c */
int step_exec(struct child *, char **, int);       /* exec.c */
int step_lo_up(struct child *, char **, int);      /* net.c */

/* mounts.c: in-root path resolution */
int in_root(struct child *c, const char *path, int oflags, unsigned mode);
const char *fd_path(int fd); /* "/proc/self/fd/N" in a rotating buffer */
unsigned long mount_flags_of(int fd); /* rootfs.c: MS_* flags now in force */

/* ----------------------------------------------------- monitor.c, tty.c */

void proc_title(const char *title); /* main.c: what ps shows as our cmdline */

_Noreturn void monitor_run(struct plan *p);
void tty_setup(int master, int relay_stdin); /* raw mode, window size */
void tty_resize(void);
void tty_restore(void);
int tty_master(void);
struct pollfd;
int tty_poll_fds(struct pollfd *pfd, int n);  /* add fds, return new n */
void tty_handle(struct pollfd *pfd, int n);
void tty_drain(void);

#endif
