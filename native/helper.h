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
#include <signal.h>
#include <sys/types.h>
#include <time.h>

#define HELPER_VERSION "1"
#define PROTO_FD 3 /* the socket to tsrun: plan in, protocol both ways */

/* ---------------------------------------------------------------- plan.c */

struct step_def;
struct step {
	char **argv; /* argv[0] is the step name, argv[1..] its decoded fields */
	int argc;
	const struct step_def *def;
};

enum { DETACH_NO, DETACH_CREATED, DETACH_STARTED };
enum restart_policy { RESTART_NO, RESTART_ALWAYS, RESTART_UNLESS_STOPPED, RESTART_ON_FAILURE };

struct plan {
	int trace, tty, stdin_null;
	const char *name;
	char **cgroup_procs;
	int n_cgroup_procs;
	unsigned long clone_flags;
	/* lifecycle (monitor lines; NULL/0 when absent) */
	const char *log_path;        /* docker json-file log */
	unsigned long long log_max_bytes; /* 0: never rotate */
	unsigned log_max_files;      /* files kept, the current one included; 0: all */
	int attach;                  /* copy the container's output to our fds 1/2 */
	const char *attach_socket;   /* serve the PTY on this unix socket (attach.c) */
	const char *status_path;     /* key=value state file */
	const char *stop_path;       /* exists: a stop was requested, no restart */
	const char *pidns_path;      /* setns(CLONE_NEWPID) before clone (exec) */
	const char *netns_path;      /* setns(CLONE_NEWNET) before clone (with newuser) */
	const char *userns_path;     /* setns(CLONE_NEWUSER) first of all (rootless exec) */
	char *uid_map, *gid_map;     /* newuser: "<inside> <outside> <count>\n" lines */
	enum restart_policy restart;
	unsigned restart_max;        /* on-failure:N, 0: unlimited */
	char **exit_command;         /* argv run when the monitor is done, NULL-terminated */
	char **device_rules;         /* devices: what the container may use (devices.c) */
	/* runtime mode (tsrun-runtime, runc's interface) */
	int stdio_pass;              /* the child keeps our fds 0-2: no pipes, no relay */
	const char *console_socket;  /* the PTY master goes to this unix socket */
	const char *exec_fifo;       /* made and held open: `wait-start` reads it */
	int detach;                  /* DETACH_*: leave the child to our parent's reaper */
	int n_device_rules;
	/* healthcheck (health.c): NULL/0 when the container has none */
	const char *health_path;     /* the health file (JSON, replaced by rename) */
	long long health_interval_ns, health_timeout_ns, health_start_period_ns;
	unsigned health_retries;
	struct step *health_steps;   /* the probe's steps, after it joined the container */
	int n_health_steps;
	struct step *steps; /* everything after `clone`, numbered from 1 */
	int n_steps;
};

int plan_read(int fd, struct plan *p, char *err, size_t errlen);
unsigned long plan_clone_flag(const char *name); /* 0 when unknown */
/* The directory of a cgroup-procs entry (its path up to the last '/'); -1 when it has none or does not fit. */
int cgroup_dir(const char *procs, char *dir, size_t len);
/* The first cgroup-procs entry on a cgroup2 file system: its index (its directory in dir), or -1. */
int plan_cgroup2(const struct plan *p, char *dir, size_t len);

/* ------------------------------------------------------------ protocol.c */

/* Lines on fd 3 (percent-encoded fields). */
void proto_send(const char *first, ...);  /* NULL-terminated list of fields */
char *itoa_s(char buf[16], long v);       /* decimal, without printf */
int proto_alive(void);
void proto_close(void);                   /* stop talking to tsrun for good */
int pct_decode(char *s);                  /* in place; -1 on a bad escape */
char *proto_read_line(void);              /* next buffered line, or NULL */
int proto_fill(int fd);                   /* read once: >0 data, 0 EOF, -1 */

/* Child -> monitor messages on the internal SOCK_SEQPACKET socketpair. */
enum { MSG_TRACE = 'T', MSG_ERROR = 'E', MSG_EXEC = 'X', MSG_CONSOLE = 'C', MSG_READY = 'R', MSG_HOOKS = 'H' };
#define IMSG_MAX 8192
struct imsg {
	char type;
	int step;
	const char *s[4]; /* TRACE: text, time; ERROR: op, errno name, message */
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

/* A trace line's text, at most: percent-encoded on fd 3 (3 bytes for a byte
 * at worst) it still fits protocol.c's 16 KiB line, and a child's line fits
 * one IMSG_MAX message. A longer line ends in "…(n more)", never cut silently. */
#define TRACE_TEXT_MAX 5000

extern int g_trace;
/* Where a line goes: `at` is when its call began, CLOCK_MONOTONIC in decimal
 * nanoseconds (Node's process.hrtime clock: tsrun puts host and helper lines
 * on one time line). */
extern void (*g_trace_sink)(const char *at, const char *text);
const char *q(const char *s);         /* "quoted" C string, whole (see TRACE_TEXT_MAX) */
const char *mount_flags_str(unsigned long f);
const char *clone_flags_str(unsigned long f);
long long trace_now(void);            /* CLOCK_MONOTONIC, ns */
void trace_ret(long long at, long ret, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void trace_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* TR(call, fmt, ...): run a syscall, and with --trace report it strace-style
 * ("mount(...) = 0" or "= -1 ENOENT (No such file or directory)"), stamped
 * with the time the call began. errno is preserved so the caller can still
 * report the failure. */
#define TR(call, ...) ({                                                \
	long long tr_t_ = g_trace ? trace_now() : 0;                    \
	long tr_r_ = (long)(call);                                      \
	int tr_e_ = errno;                                              \
	if (g_trace)                                                    \
		trace_ret(tr_t_, tr_r_, tr_e_, __VA_ARGS__);            \
	errno = tr_e_;                                                  \
	tr_r_;                                                          \
})

/* mount(2) under TR, the call learners most want to see. */
#define MNT(src, tgt, fs, fl, data) \
	TR(mount(src, tgt, fs, fl, data), "mount(%s, %s, %s, %s, %s)", q(src), \
	   q(tgt), q(fs), mount_flags_str(fl), q(data))

/* --------------------------------------------------------------- child.c */

struct child {
	const struct plan *plan;
	int sock;       /* to the monitor; CLOEXEC so execve closes it */
	int out[2];     /* write ends of the stdout/stderr pipes to the monitor */
	int in;         /* read end of the stdin pipe from the monitor, or -1 */
	int rootfd;     /* O_PATH fd of the container root, -1 before `root` */
	int procfd;     /* O_PATH fd of the host's /proc, opened before any step:
			 * where mounts look up self/fd/N (mounts.c) */
	int joined;     /* the cgroup-procs entry clone3 put it in at birth, or -1 */
	int step;       /* number of the step being run */
	char **env;     /* from the `env` steps, NULL-terminated */
	int nenv;
	int exit_code;  /* 125, or 126/127 for exec failures */
	char err_op[32];
	char err_msg[1024];
	int err_errno;
};

_Noreturn void child_main(struct child *c, int nullfd);
int cgroup_self_attach(const struct plan *p);
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
int step_chown(struct child *, char **, int);
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
int step_umask(struct child *, char **, int);
int step_wait_start(struct child *, char **, int); /* exec.c */
int step_hooks(struct child *, char **, int);      /* exec.c */
extern int g_exec_fifo; /* exec-fifo: our O_RDWR fd of it, or -1 */
extern int g_preserve_fds; /* main.c: --preserve-fds N (fds 4.. become the container's 3..) */
/* exec.c: the file `exec` would run (a bare name searched in PATH), 0 or -1
 * with the step failed as exec would have failed */
int exec_lookup(struct child *c, const char *file, char *out, size_t outlen);
int step_lo_up(struct child *, char **, int);      /* net.c */
int step_net_up(struct child *, char **, int);     /* net.c */
int step_setns(struct child *, char **, int);      /* setns.c */
int step_idmap_mount(struct child *, char **, int); /* userns.c */
int step_sysctl(struct child *, char **, int);     /* sysctl.c */

/* userns.c, in the monitor: maps and idmapped mounts for a newuser child */
int userns_prepare(const struct plan *p, pid_t child); /* -1: start failed */
void userns_send(int sock);
int userns_open_targets(struct child *c); /* in the child, before setresuid */
int start_failed(const char *op, int err, const char *msg); /* monitor.c */
/* devices.c: index of the first malformed rule, or -1 */
int devices_check_rules(char **rules, int n);
/* devices.c: the device filter on the container's cgroup2 directory */
int devices_attach(const struct plan *p, char *msg, size_t msglen);
int userns_exec_main(int argc, char **argv); /* unshare.c: rootless tsrun's way in */

/* mounts.c: in-root path resolution, and mounts on what fds hold */
int in_root(struct child *c, const char *path, int oflags, unsigned mode);
int proc_open(struct child *c); /* c->procfd; -1 when /proc is not a procfs */
/* mount(2) with the source (srcfd >= 0) and target given as fds; src is used
 * as is when srcfd < 0 (a file system's name, or NULL). */
int mount_fd(struct child *c, const char *src, int srcfd, int tgtfd, const char *fs,
	     unsigned long flags, const char *data);
unsigned long mount_flags_of(int fd); /* rootfs.c: MS_* flags now in force */
/* rootfs.c: make the mount at fd read-only, with every mount below it when
 * `recursive` (Linux >= 5.12; before, the top one only, as docker does) */
int remount_ro_fd(struct child *c, int fd, int recursive);

/* The new mount API (Linux >= 5.2; mount_setattr 5.12). Raw syscalls: glibc
 * has wrappers only from 2.36 (Ubuntu 22.04 has 2.35). The numbers are the
 * same on every architecture (the new syscall table). */
#include <sys/mount.h>
#include <sys/syscall.h>
#include <fcntl.h>
#ifndef SYS_open_tree
#define SYS_open_tree 428
#define SYS_move_mount 429
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef MOUNT_ATTR_IDMAP /* glibc < 2.36: not in <sys/mount.h> */
#include <stdint.h>
#define MOUNT_ATTR_RDONLY 0x00000001
#define MOUNT_ATTR_IDMAP 0x00100000
struct mount_attr {
	uint64_t attr_set, attr_clr, propagation, userns_fd;
};
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#define open_tree(dfd, path, flags) syscall(SYS_open_tree, dfd, path, flags)
#define move_mount(from, fpath, to, tpath, flags) syscall(SYS_move_mount, from, fpath, to, tpath, flags)
#define mount_setattr(dfd, path, flags, attr, size) syscall(SYS_mount_setattr, dfd, path, flags, attr, size)

/* ----------------------------------------------------- monitor.c, tty.c */

void proc_title(const char *title); /* main.c: what ps shows as our cmdline */
void rss_trim(void);                /* main.c: unmap startup code we are done with */

void tty_setup(int master, int relay_stdin); /* raw mode, window size */
int console_send(const char *path, int fd); /* runtime mode: --console-socket */
void tty_resize(void);
void tty_restore(void);
void tty_detach(void); /* stop relaying fd 0, restore the terminal */
int tty_master(void);
struct pollfd;
int tty_poll_fds(struct pollfd *pfd, int n);  /* add fds, return new n */
void tty_handle(struct pollfd *pfd, int n);
void tty_drain(void);
void tty_reset(void); /* the container is gone: close its PTY (before a restart) */

/* ------------------------------------------------------------------ logs.c */

/* The container's output: copied to our fds 1/2 (attach-stdio 1) and/or
 * written to a docker json-file log, line by line. Stream 0 is stdout (and a
 * PTY's output), 1 is stderr. */
enum { OUT_STDOUT, OUT_STDERR };
int out_open(const struct plan *p);        /* open the log; -1 with errno */
void out_detach(void);                     /* stop copying to our fds 1/2 */
int out_pipes(int child_ends[2]);          /* one run's pipes; -1 with errno */
void out_close_in_child(void);             /* the child keeps none of ours */
ssize_t out_read(int stream, int fd);      /* read fd once, copy and log it */
/* Writing the copy of `stream` to our fd 1/2 failed with EPIPE: its reader is gone. */
int out_reader_gone(int stream);
int out_poll_fds(struct pollfd *pfd, int n);
void out_handle(struct pollfd *pfd, int n);
int out_timeout_ms(void);                  /* until a partial line is due; -1 */
void out_tick(void);                       /* log partial lines that are due */
void out_drain(void);                      /* the container exited: read to EOF */
int write_all(int fd, const char *b, size_t n);

/* ----------------------------------------------------------------- input.c */

/* The container's stdin without a TTY: a pipe the monitor fills from its fd 0. */
int in_pipe(const struct plan *p, int *child_end); /* one run's; -1 with errno */
void in_close(void);                               /* the run is over */
void in_detach(void);                              /* stop reading fd 0 for good */
int in_poll_fds(struct pollfd *pfd, int n);
void in_handle(struct pollfd *pfd, int n);

/* --------------------------------------------------------------- status.c */

struct status {
	const char *state;   /* created, running, restarting, exited */
	pid_t pid;           /* of the container's first process, 0 when none */
	int exited;          /* exit_code/exit_signal/finished_at are valid */
	int exit_code, exit_signal;
	struct timespec started_at, finished_at;
	unsigned restart_count;
	const char *error;   /* why the last start failed, or NULL */
};
int status_init(const char *path);         /* -1 with errno when unwritable */
/* Atomically; on a full disk in place (a checksum tells a reader it raced
 * with that). -1 with errno when neither worked; no-op without a path. */
int status_write(const struct status *s);
int status_readable(void);                 /* the file is there for tsrun to read */
void status_close_in_child(void);          /* the container never keeps its fd */
char *rfc3339(char out[40], const struct timespec *ts);

/* ---------------------------------------------------------------- attach.c */

/* The PTY of a detached container on a unix socket, for `tsrun attach`. */
struct winsize;
int attach_open(const struct plan *p);     /* listen, before the first clone; -1 with errno */
int attach_poll_fds(struct pollfd *pfd, int n);
void attach_handle(struct pollfd *pfd, int n);
void attach_output(const char *b, size_t n); /* what the PTY printed, to every client */
int attach_winsize(struct winsize *ws);    /* the size a client asked for; -1: none yet */
void attach_run_end(int code, int sig);    /* tell the clients, let them go */
void attach_close_in_child(void);
void attach_close(void);                   /* the monitor is done: close, unlink */

/* ---------------------------------------------------------------- health.c */

/* The healthcheck: a probe run inside the container on schedule, its results
 * in the health file. All no-ops without a `health` plan line. */
#define HEALTH_OUTPUT_MAX 4096 /* bytes of a probe's output kept (docker's maxOutputLen) */
struct health_result {
	struct timespec start, end;
	int exit_code;
	int truncated;   /* more output came than was kept: shown as "..." */
	size_t len;
	char out[HEALTH_OUTPUT_MAX]; /* last: only len bytes of it are copied */
};
/* health-file.c: the results as JSON, by temp file and rename */
void health_file_write(const char *path, const char *tmp_path, const char *state, unsigned streak,
		       const struct health_result *results, int nresults);
void go_duration(char out[48], long long ns); /* Go's Duration.String(): "300ms", "1m30s" */
int health_init(const struct plan *p);     /* before the first clone; -1 with errno */
void health_run_start(void);               /* a run's program started: "starting" */
void health_run_end(void);                 /* it exited: no more probes this run */
int health_poll_fds(struct pollfd *pfd, int n);
void health_handle(struct pollfd *pfd, int n);
int health_timeout_ms(void);               /* until the next probe or timeout; -1 */
void health_tick(pid_t container);         /* start a probe that is due, time one out */
void health_reap(void);                    /* on SIGCHLD: was it the probe? */
void health_close_in_child(void);          /* the container keeps none of it */

/* ------------------------------------------- lifecycle.c, monitor.c, restart.c */

/* lifecycle.c: the monitor from setup to its last exit */
_Noreturn void monitor_run(struct plan *p);
struct monitor {
	const struct plan *plan;
	unsigned run;      /* 0: the first run, the one tsrun watches on fd 3 */
	int sigfd, nullfd;
	int ever_started;  /* some run got as far as execve() */
	struct status st;  /* what the status file says */
};
_Noreturn void monitor_exit(struct monitor *m, int code);
void monitor_detach(void); /* let go of tsrun's terminal (fds 0-2) */
void lifecycle_close_in_child(void); /* the monitor's own fds the child must not keep */
/* monitor.c: one run, clone() to exit; docker's code, *failed: never ran */
int monitor_once(struct monitor *m, int *failed);
/* Send "exit <code> <signal>" for the run that just ended (the first run only). */
void monitor_report_exit(struct monitor *m);
void monitor_state(struct monitor *m, const char *state); /* + status file */
void monitor_signals(sigset_t *set); /* the ones we handle */
/* restart.c */
/* restart.c: the stop file exists (stop, rm -f: no restart after this run). */
int stop_requested(const struct plan *p);
/* restart.c: and the tsrun that wrote it, named in it, still runs: it waits for the end and
 * cleans up itself. */
int stopper_alive(const struct plan *p);
int restart_wanted(const struct plan *p, int code, unsigned restarts);
int restart_wait(const struct plan *p, int sigfd, long long ran_ms);

#endif
