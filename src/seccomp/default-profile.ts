// docker's default seccomp profile, as data in docker's own JSON format.
//
// Transcribed from moby/profiles seccomp/default.json at commit 190fa92cb2750186268c960ce30718d3495a228d
// (2025; the profile of docker 28.x, which moved it out of moby/moby profiles/seccomp/default.json),
// with ONE deliberate difference: `add_key`, `keyctl` and `request_key` are not in the allow list.
// docker refused them from 2015 (the kernel keyring was not namespaced) until moby/profiles PR #2
// (2025); tsrun keeps refusing them, as every docker before 28 and containerd do. Like docker 25+,
// the `io_uring_*` syscalls are refused (moby PR #46762: io_uring bypasses per-syscall filtering).
// And one addition: `socket` is refused when the LOW 32 bits of its family are AF_VSOCK. docker's
// rule (`family != 40`) compares 64 bits, but the kernel reads the family as an int, so
// socket(0x100000028, ...) would pass docker's rule and still open a vsock socket.
//
// How to read it: everything not allowed gets EPERM (defaultAction). The first rule is the plain
// allow list; the others allow a syscall only with certain arguments (`args`), on certain
// architectures (`includes.arches`), or when the container has a capability (`includes.caps`,
// checked against its bounding set). So `mount`, `unshare`, `setns` and a `clone` that makes
// namespaces are refused unless the container has CAP_SYS_ADMIN, `ptrace` is allowed (kernel >=
// 4.8 closed the seccomp bypass through it), and `clone3` fails with ENOSYS so that glibc falls
// back to `clone`, whose flags a filter can see (clone3 passes them in memory).
import type { SeccompProfile } from './types.js';

const cap = (...caps: string[]) => ({ caps });
const arches = (...names: string[]) => ({ arches: names });

export const DEFAULT_PROFILE_SOURCE = 'builtin: docker 28 (moby/profiles @190fa92c) without the keyring syscalls, AF_VSOCK checked on 32 bits';

export const DEFAULT_PROFILE: SeccompProfile = {
  defaultAction: 'SCMP_ACT_ERRNO',
  defaultErrnoRet: 1, // EPERM
  archMap: [
    { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
    { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
    { architecture: 'SCMP_ARCH_MIPS64', subArchitectures: ['SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64N32'] },
    { architecture: 'SCMP_ARCH_MIPS64N32', subArchitectures: ['SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64'] },
    { architecture: 'SCMP_ARCH_MIPSEL64', subArchitectures: ['SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64N32'] },
    { architecture: 'SCMP_ARCH_MIPSEL64N32', subArchitectures: ['SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64'] },
    { architecture: 'SCMP_ARCH_S390X', subArchitectures: ['SCMP_ARCH_S390'] },
    { architecture: 'SCMP_ARCH_RISCV64', subArchitectures: null },
  ],
  syscalls: [
    {
      names: [
        'accept', 'accept4', 'access', 'adjtimex', 'alarm', 'bind', 'brk', 'cachestat', 'capget', 'capset',
        'chdir', 'chmod', 'chown', 'chown32', 'clock_adjtime', 'clock_adjtime64', 'clock_getres',
        'clock_getres_time64', 'clock_gettime', 'clock_gettime64', 'clock_nanosleep', 'clock_nanosleep_time64',
        'close', 'close_range', 'connect', 'copy_file_range', 'creat', 'dup', 'dup2', 'dup3', 'epoll_create',
        'epoll_create1', 'epoll_ctl', 'epoll_ctl_old', 'epoll_pwait', 'epoll_pwait2', 'epoll_wait',
        'epoll_wait_old', 'eventfd', 'eventfd2', 'execve', 'execveat', 'exit', 'exit_group', 'faccessat',
        'faccessat2', 'fadvise64', 'fadvise64_64', 'fallocate', 'fanotify_mark', 'fchdir', 'fchmod', 'fchmodat',
        'fchmodat2', 'fchown', 'fchown32', 'fchownat', 'fcntl', 'fcntl64', 'fdatasync', 'fgetxattr', 'flistxattr',
        'flock', 'fork', 'fremovexattr', 'fsetxattr', 'fstat', 'fstat64', 'fstatat64', 'fstatfs', 'fstatfs64',
        'fsync', 'ftruncate', 'ftruncate64', 'futex', 'futex_requeue', 'futex_time64', 'futex_wait', 'futex_waitv',
        'futex_wake', 'futimesat', 'getcpu', 'getcwd', 'getdents', 'getdents64', 'getegid', 'getegid32', 'geteuid',
        'geteuid32', 'getgid', 'getgid32', 'getgroups', 'getgroups32', 'getitimer', 'getpeername', 'getpgid',
        'getpgrp', 'getpid', 'getppid', 'getpriority', 'getrandom', 'getresgid', 'getresgid32', 'getresuid',
        'getresuid32', 'getrlimit', 'get_robust_list', 'getrusage', 'getsid', 'getsockname', 'getsockopt',
        'get_thread_area', 'gettid', 'gettimeofday', 'getuid', 'getuid32', 'getxattr', 'getxattrat',
        'inotify_add_watch', 'inotify_init', 'inotify_init1', 'inotify_rm_watch', 'io_cancel', 'ioctl',
        'io_destroy', 'io_getevents', 'io_pgetevents', 'io_pgetevents_time64', 'ioprio_get', 'ioprio_set',
        'io_setup', 'io_submit', 'ipc', 'kill', 'landlock_add_rule', 'landlock_create_ruleset',
        'landlock_restrict_self', 'lchown', 'lchown32', 'lgetxattr', 'link', 'linkat', 'listen', 'listmount',
        'listxattr', 'listxattrat', 'llistxattr', '_llseek', 'lremovexattr', 'lseek', 'lsetxattr', 'lstat',
        'lstat64', 'madvise', 'map_shadow_stack', 'membarrier', 'memfd_create', 'memfd_secret', 'mincore', 'mkdir',
        'mkdirat', 'mknod', 'mknodat', 'mlock', 'mlock2', 'mlockall', 'mmap', 'mmap2', 'mprotect', 'mq_getsetattr',
        'mq_notify', 'mq_open', 'mq_timedreceive', 'mq_timedreceive_time64', 'mq_timedsend',
        'mq_timedsend_time64', 'mq_unlink', 'mremap', 'mseal', 'msgctl', 'msgget', 'msgrcv', 'msgsnd', 'msync',
        'munlock', 'munlockall', 'munmap', 'name_to_handle_at', 'nanosleep', 'newfstatat', '_newselect', 'open',
        'openat', 'openat2', 'pause', 'pidfd_open', 'pidfd_send_signal', 'pipe', 'pipe2', 'pkey_alloc', 'pkey_free',
        'pkey_mprotect', 'poll', 'ppoll', 'ppoll_time64', 'prctl', 'pread64', 'preadv', 'preadv2', 'prlimit64',
        'process_mrelease', 'pselect6', 'pselect6_time64', 'pwrite64', 'pwritev', 'pwritev2', 'read', 'readahead',
        'readlink', 'readlinkat', 'readv', 'recv', 'recvfrom', 'recvmmsg', 'recvmmsg_time64', 'recvmsg',
        'remap_file_pages', 'removexattr', 'removexattrat', 'rename', 'renameat', 'renameat2', 'restart_syscall',
        'riscv_hwprobe', 'rmdir', 'rseq', 'rt_sigaction', 'rt_sigpending', 'rt_sigprocmask', 'rt_sigqueueinfo',
        'rt_sigreturn', 'rt_sigsuspend', 'rt_sigtimedwait', 'rt_sigtimedwait_time64', 'rt_tgsigqueueinfo',
        'sched_getaffinity', 'sched_getattr', 'sched_getparam', 'sched_get_priority_max', 'sched_get_priority_min',
        'sched_getscheduler', 'sched_rr_get_interval', 'sched_rr_get_interval_time64', 'sched_setaffinity',
        'sched_setattr', 'sched_setparam', 'sched_setscheduler', 'sched_yield', 'seccomp', 'select', 'semctl',
        'semget', 'semop', 'semtimedop', 'semtimedop_time64', 'send', 'sendfile', 'sendfile64', 'sendmmsg',
        'sendmsg', 'sendto', 'setfsgid', 'setfsgid32', 'setfsuid', 'setfsuid32', 'setgid', 'setgid32', 'setgroups',
        'setgroups32', 'setitimer', 'setpgid', 'setpriority', 'setregid', 'setregid32', 'setresgid', 'setresgid32',
        'setresuid', 'setresuid32', 'setreuid', 'setreuid32', 'setrlimit', 'set_robust_list', 'setsid',
        'setsockopt', 'set_thread_area', 'set_tid_address', 'setuid', 'setuid32', 'setxattr', 'setxattrat',
        'shmat', 'shmctl', 'shmdt', 'shmget', 'shutdown', 'sigaltstack', 'signalfd', 'signalfd4', 'sigprocmask',
        'sigreturn', 'socketcall', 'socketpair', 'splice', 'stat', 'stat64', 'statfs', 'statfs64', 'statmount',
        'statx', 'symlink', 'symlinkat', 'sync', 'sync_file_range', 'syncfs', 'sysinfo', 'tee', 'tgkill', 'time',
        'timer_create', 'timer_delete', 'timer_getoverrun', 'timer_gettime', 'timer_gettime64', 'timer_settime',
        'timer_settime64', 'timerfd_create', 'timerfd_gettime', 'timerfd_gettime64', 'timerfd_settime',
        'timerfd_settime64', 'times', 'tkill', 'truncate', 'truncate64', 'ugetrlimit', 'umask', 'uname', 'unlink',
        'unlinkat', 'uretprobe', 'utime', 'utimensat', 'utimensat_time64', 'utimes', 'vfork', 'vmsplice', 'wait4',
        'waitid', 'waitpid', 'write', 'writev',
      ],
      action: 'SCMP_ACT_ALLOW',
    },
    { names: ['process_vm_readv', 'process_vm_writev', 'ptrace'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '4.8' } },
    // Any socket but AF_VSOCK (40): vsock reaches the host or other VMs whatever the network namespace.
    // tsrun's addition, checked first: AF_VSOCK with garbage in the high 32 bits is refused too.
    {
      names: ['socket'],
      action: 'SCMP_ACT_ERRNO',
      errnoRet: 1,
      args: [{ index: 0, value: 0xffffffff, valueTwo: 40, op: 'SCMP_CMP_MASKED_EQ' }],
      comment: 'tsrun: the kernel reads the family as a 32-bit int',
    },
    { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 40, op: 'SCMP_CMP_NE' }] },
    // personality(): PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and 0xffffffff (a query).
    ...[0, 8, 131072, 131080, 4294967295].map((value) => ({
      names: ['personality'],
      action: 'SCMP_ACT_ALLOW',
      args: [{ index: 0, value, op: 'SCMP_CMP_EQ' }],
    })),
    { names: ['sync_file_range2', 'swapcontext'], action: 'SCMP_ACT_ALLOW', includes: arches('ppc64le') },
    {
      names: ['arm_fadvise64_64', 'arm_sync_file_range', 'sync_file_range2', 'breakpoint', 'cacheflush', 'set_tls'],
      action: 'SCMP_ACT_ALLOW',
      includes: arches('arm', 'arm64'),
    },
    { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW', includes: arches('amd64', 'x32') },
    { names: ['modify_ldt'], action: 'SCMP_ACT_ALLOW', includes: arches('amd64', 'x32', 'x86') },
    { names: ['s390_pci_mmio_read', 's390_pci_mmio_write', 's390_runtime_instr'], action: 'SCMP_ACT_ALLOW', includes: arches('s390', 's390x') },
    { names: ['riscv_flush_icache'], action: 'SCMP_ACT_ALLOW', includes: arches('riscv64') },
    { names: ['open_by_handle_at'], action: 'SCMP_ACT_ALLOW', includes: cap('CAP_DAC_READ_SEARCH') },
    {
      names: [
        'bpf', 'clone', 'clone3', 'fanotify_init', 'fsconfig', 'fsmount', 'fsopen', 'fspick', 'lookup_dcookie',
        'lsm_get_self_attr', 'lsm_list_modules', 'lsm_set_self_attr', 'mount', 'mount_setattr', 'move_mount',
        'open_tree', 'perf_event_open', 'quotactl', 'quotactl_fd', 'setdomainname', 'sethostname', 'setns',
        'syslog', 'umount', 'umount2', 'unshare',
      ],
      action: 'SCMP_ACT_ALLOW',
      includes: cap('CAP_SYS_ADMIN'),
    },
    // Without CAP_SYS_ADMIN, clone() only without a CLONE_NEW* flag:
    // 0x7E020000 = NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET.
    {
      names: ['clone'],
      action: 'SCMP_ACT_ALLOW',
      args: [{ index: 0, value: 2114060288, op: 'SCMP_CMP_MASKED_EQ' }],
      excludes: { caps: ['CAP_SYS_ADMIN'], arches: ['s390', 's390x'] },
    },
    {
      names: ['clone'],
      action: 'SCMP_ACT_ALLOW',
      args: [{ index: 1, value: 2114060288, op: 'SCMP_CMP_MASKED_EQ' }],
      comment: 's390 parameter ordering for clone is different',
      includes: arches('s390', 's390x'),
      excludes: cap('CAP_SYS_ADMIN'),
    },
    { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38, excludes: cap('CAP_SYS_ADMIN') }, // ENOSYS
    { names: ['reboot'], action: 'SCMP_ACT_ALLOW', includes: cap('CAP_SYS_BOOT') },
    { names: ['chroot'], action: 'SCMP_ACT_ALLOW', includes: cap('CAP_SYS_CHROOT') },
    { names: ['delete_module', 'init_module', 'finit_module'], action: 'SCMP_ACT_ALLOW', includes: cap('CAP_SYS_MODULE') },
    { names: ['acct'], action: 'SCMP_ACT_ALLOW', includes: cap('CAP_SYS_PACCT') },
    {
      names: ['kcmp', 'pidfd_getfd', 'process_madvise', 'process_vm_readv', 'process_vm_writev', 'ptrace'],
      action: 'SCMP_ACT_ALLOW',
      includes: cap('CAP_SYS_PTRACE'),
    },
    { names: ['iopl', 'ioperm'], action: 'SCMP_ACT_ALLOW', includes: cap('CAP_SYS_RAWIO') },
    { names: ['settimeofday', 'stime', 'clock_settime', 'clock_settime64'], action: 'SCMP_ACT_ALLOW', includes: cap('CAP_SYS_TIME') },
    { names: ['vhangup'], action: 'SCMP_ACT_ALLOW', includes: cap('CAP_SYS_TTY_CONFIG') },
    {
      names: ['get_mempolicy', 'mbind', 'set_mempolicy', 'set_mempolicy_home_node'],
      action: 'SCMP_ACT_ALLOW',
      includes: cap('CAP_SYS_NICE'),
    },
    { names: ['syslog'], action: 'SCMP_ACT_ALLOW', includes: cap('CAP_SYSLOG') },
    { names: ['bpf'], action: 'SCMP_ACT_ALLOW', includes: cap('CAP_BPF') },
    { names: ['perf_event_open'], action: 'SCMP_ACT_ALLOW', includes: cap('CAP_PERFMON') },
  ],
};
