package seccomp

// allowedSyscalls are the syscalls allowed whatever their arguments, grouped
// by purpose. The list follows the unconditional allowlist of Docker's
// default seccomp profile (moby/profiles, seccomp/default.json) with these
// differences:
//
//   - dropped: ptrace, process_vm_readv and process_vm_writev (inspecting
//     other processes), name_to_handle_at (file handles are the first half of
//     open_by_handle_at escapes), adjtimex and clock_adjtime (whether a call
//     only reads the clock lives in a struct the filter cannot see),
//     modify_ldt (only 16-bit code needs it, and it has a history of kernel
//     bugs), epoll_ctl_old and epoll_wait_old (never implemented), and the
//     native AIO calls io_setup and the rest (a host-wide count, see
//     blockedSyscalls);
//   - dropped because cove only runs 64-bit code: every 32-bit-only name
//     (the *32, *64 and *_time64 variants, socketcall, ipc, mmap2 and so on);
//   - moved to rules that check their arguments (see policy in policy.go): clone, clone3,
//     socket, socketpair, personality and ioctl;
//   - kept from Docker's architecture-specific entries: arch_prctl (x86_64).
//
// Names that the running architecture does not have (the legacy x86_64
// calls on arm64, for instance) are skipped when the filter is built, as
// libseccomp does for Docker's profile.
var allowedSyscalls = [][]string{
	// Process lifecycle. clone and clone3 are checked in rules.
	{
		"execve", "execveat", "exit", "exit_group", "fork", "vfork",
		"wait4", "waitid", "kill", "tgkill", "tkill",
		"pidfd_open", "pidfd_send_signal", "process_mrelease",
		"getpid", "getppid", "gettid", "getpgid", "getpgrp", "getsid",
		"setpgid", "setsid", "set_tid_address", "getrusage", "times",
		"prctl", "arch_prctl", "set_robust_list", "get_robust_list",
		"rseq", "restart_syscall", "capget", "capset",
		// A process may add filters of its own; they can only narrow this one.
		"seccomp",
	},
	// Credentials. Changing them still needs CAP_SETUID or CAP_SETGID.
	{
		"getuid", "geteuid", "getgid", "getegid", "getgroups",
		"getresuid", "getresgid", "setuid", "setgid", "setgroups",
		"setreuid", "setregid", "setresuid", "setresgid",
		"setfsuid", "setfsgid",
	},
	// Signals.
	{
		"rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
		"rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
		"rt_tgsigqueueinfo", "sigaltstack", "signalfd", "signalfd4",
		"pause", "alarm", "getitimer", "setitimer",
	},
	// Clocks and timers (reading only: setting the clock is refused).
	{
		"clock_getres", "clock_gettime", "clock_nanosleep", "nanosleep",
		"gettimeofday", "time",
		"timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
		"timer_settime", "timerfd_create", "timerfd_gettime", "timerfd_settime",
	},
	// Scheduling, limits, randomness and system information.
	{
		"getrandom",
		"sched_getaffinity", "sched_getattr", "sched_getparam",
		"sched_get_priority_max", "sched_get_priority_min",
		"sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity",
		"sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield",
		"getpriority", "setpriority", "ioprio_get", "ioprio_set",
		"getrlimit", "setrlimit", "prlimit64", "getcpu", "sysinfo", "uname",
		"umask",
	},
	// Memory.
	{
		"brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "mincore",
		"msync", "mlock", "mlock2", "mlockall", "munlock", "munlockall",
		"membarrier", "memfd_create", "memfd_secret",
		"pkey_alloc", "pkey_free", "pkey_mprotect", "remap_file_pages",
		"map_shadow_stack", "mseal", "get_thread_area", "set_thread_area",
		"futex", "futex_waitv", "futex_wake", "futex_wait", "futex_requeue",
	},
	// I/O on file descriptors. ioctl is checked in rules.
	{
		"read", "write", "readv", "writev", "pread64", "pwrite64",
		"preadv", "pwritev", "preadv2", "pwritev2", "lseek",
		"close", "close_range", "dup", "dup2", "dup3", "fcntl", "flock",
		"fsync", "fdatasync", "sync", "syncfs", "sync_file_range",
		"fallocate", "ftruncate", "truncate", "fadvise64", "readahead",
		"sendfile", "splice", "tee", "vmsplice", "copy_file_range",
		"cachestat", "pipe", "pipe2",
	},
	// Paths and file metadata. newfstatat is called fstatat in the library's
	// arm64 table.
	{
		"open", "openat", "openat2", "creat", "access", "faccessat",
		"faccessat2", "stat", "lstat", "fstat", "newfstatat", "fstatat",
		"statx", "statfs", "fstatfs", "getdents", "getdents64",
		"getcwd", "chdir", "fchdir", "mkdir", "mkdirat", "mknod", "mknodat",
		"rmdir", "rename", "renameat", "renameat2", "link", "linkat",
		"symlink", "symlinkat", "unlink", "unlinkat", "readlink",
		"readlinkat", "chmod", "fchmod", "fchmodat", "fchmodat2",
		"chown", "fchown", "fchownat", "lchown",
		"utime", "utimes", "utimensat", "futimesat",
	},
	// Extended attributes.
	{
		"getxattr", "lgetxattr", "fgetxattr", "getxattrat",
		"setxattr", "lsetxattr", "fsetxattr", "setxattrat",
		"listxattr", "llistxattr", "flistxattr", "listxattrat",
		"removexattr", "lremovexattr", "fremovexattr", "removexattrat",
	},
	// Waiting for events. fanotify_mark is harmless without fanotify_init,
	// which is refused.
	{
		"poll", "ppoll", "select", "pselect6",
		"epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait",
		"epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2",
		"inotify_init", "inotify_init1", "inotify_add_watch",
		"inotify_rm_watch", "fanotify_mark",
	},
	// Sockets already opened. socket and socketpair are checked in rules.
	{
		"bind", "connect", "listen", "accept", "accept4",
		"getsockname", "getpeername", "getsockopt", "setsockopt",
		"sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
		"shutdown",
	},
	// System V and POSIX IPC, confined to the sandbox's IPC namespace.
	{
		"msgget", "msgsnd", "msgrcv", "msgctl",
		"semget", "semop", "semtimedop", "semctl",
		"shmget", "shmat", "shmdt", "shmctl",
		"mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive",
		"mq_notify", "mq_getsetattr",
	},
	// Reading the sandbox's own mount table.
	{"statmount", "listmount"},
	// Landlock can only take rights away.
	{"landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self"},
	// Return path of uprobes placed by the host; does nothing otherwise.
	{"uretprobe"},
}

// blockedSyscalls are refused with EPERM whatever their arguments. Nothing
// allows them (the default action refuses them already); the list documents
// the promise and Filter refuses to build a policy that breaks it. Several
// are allowed by Docker unconditionally (ptrace, process_vm_*,
// name_to_handle_at, adjtimex, clock_adjtime, modify_ldt) or to containers
// with a capability; user code in a cove sandbox has none.
var blockedSyscalls = []string{
	// Kernel interfaces with a long record of privilege escalations.
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	"keyctl", "add_key", "request_key",
	"bpf", "perf_event_open", "userfaultfd",
	// Reading or writing other processes.
	"ptrace", "process_vm_readv", "process_vm_writev",
	"kcmp", "pidfd_getfd", "process_madvise",
	// Namespaces, mounts and the root directory.
	"mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
	"move_mount", "open_tree", "open_tree_attr", "fsopen", "fsconfig",
	"fsmount", "fspick", "mount_setattr",
	// Kernel and machine administration.
	"kexec_load", "kexec_file_load", "init_module", "finit_module",
	"delete_module", "reboot", "swapon", "swapoff", "acct",
	"quotactl", "quotactl_fd", "lookup_dcookie", "nfsservctl", "syslog",
	"vhangup", "sethostname", "setdomainname",
	// File handles bypass path-based confinement.
	"name_to_handle_at", "open_by_handle_at",
	// Setting or steering the clock.
	"clock_settime", "settimeofday", "adjtimex", "clock_adjtime",
	// Raw hardware and segment access (x86 only).
	"iopl", "ioperm", "modify_ldt",
	"fanotify_init",
	// Linux native AIO. Every context reserves events from one count
	// shared by the whole host (fs.aio-max-nr, 65536 by default), which
	// no cgroup or rlimit bounds: one io_setup(65536) from a sandbox
	// left every other process on the host, and every other sandbox,
	// with EAGAIN. glibc's POSIX AIO uses threads, not these calls.
	"io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents",
	"io_pgetevents",
}
