package seccomp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	// The filter cannot be removed once loaded, so tests load it only in a
	// copy of the test binary started for the purpose (see child_test.go).
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	os.Exit(m.Run())
}

var bothOptions = []struct {
	name string
	opts Options
}{
	{"clone3 refused", Options{}},
	{"clone3 allowed", Options{AllowClone3: true}},
}

func TestFilterAssembles(t *testing.T) {
	t.Parallel()
	for _, goarch := range []string{"amd64", "arm64"} {
		for _, tc := range bothOptions {
			t.Run(goarch+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				prog, err := filterFor(goarch, tc.opts)
				if err != nil {
					t.Fatalf("filterFor: %v", err)
				}
				raw, err := bpf.Assemble(prog)
				if err != nil {
					t.Fatalf("bpf.Assemble: %v", err)
				}
				if len(raw) == 0 || len(raw) > maxInstructions {
					t.Fatalf("program has %d instructions", len(raw))
				}
				if _, err := bpf.NewVM(prog); err != nil {
					t.Fatalf("program fails validation: %v", err)
				}
			})
		}
	}
	t.Run("native", func(t *testing.T) {
		t.Parallel()
		for _, tc := range bothOptions {
			if _, err := Filter(tc.opts); err != nil {
				t.Errorf("Filter(%+v): %v", tc.opts, err)
			}
		}
	})
	t.Run("unsupported architecture", func(t *testing.T) {
		t.Parallel()
		if _, err := filterFor("riscv64", Options{}); err == nil {
			t.Error("filterFor(riscv64) succeeded, want an error")
		}
	})
}

func TestSyscallTables(t *testing.T) {
	t.Parallel()
	known := func(name string) bool {
		_, x86 := arch.X86_64.SyscallNames[name]
		_, arm := arch.AARCH64.SyscallNames[name]
		return x86 || arm
	}
	seen := map[string]bool{}
	for _, group := range allowedSyscalls {
		for _, name := range group {
			if !known(name) {
				t.Errorf("allowed syscall %q exists on neither x86_64 nor arm64", name)
			}
			if seen[name] {
				t.Errorf("allowed syscall %q is listed twice", name)
			}
			seen[name] = true
		}
	}
	for _, name := range blockedSyscalls {
		if !known(name) {
			t.Errorf("blocked syscall %q exists on neither x86_64 nor arm64", name)
		}
		if seen[name] {
			t.Errorf("syscall %q is both allowed and blocked", name)
		}
	}
	for _, name := range []string{"clone", "clone3", "socket", "socketpair", "ioctl", "personality"} {
		if seen[name] {
			t.Errorf("%s is in the unconditional allowlist; its arguments must be checked", name)
		}
	}
	if err := checkBlocked([]string{"read", "bpf"}); err == nil {
		t.Error("checkBlocked accepted an allowlist containing bpf")
	}

	// The library's table must agree with the kernel headers' numbers, or
	// the filter would allow and refuse the wrong calls.
	info := nativeInfo(t)
	for name, nr := range map[string]int{
		"read": unix.SYS_READ, "getpid": unix.SYS_GETPID, "ioctl": unix.SYS_IOCTL,
		"socket": unix.SYS_SOCKET, "socketpair": unix.SYS_SOCKETPAIR, "clone": unix.SYS_CLONE,
		"clone3": unix.SYS_CLONE3, "personality": unix.SYS_PERSONALITY, "mount": unix.SYS_MOUNT,
		"bpf": unix.SYS_BPF, "keyctl": unix.SYS_KEYCTL, "io_uring_setup": unix.SYS_IO_URING_SETUP,
		"ptrace": unix.SYS_PTRACE, "execve": unix.SYS_EXECVE, "landlock_restrict_self": unix.SYS_LANDLOCK_RESTRICT_SELF,
	} {
		if got := info.SyscallNames[name]; got != nr {
			t.Errorf("table number for %s is %d, kernel headers say %d", name, got, nr)
		}
	}
}

// dockerAllowlist is the unconditional allowlist of Docker's default
// seccomp profile (moby/profiles, seccomp/default.json), with its
// 32-bit-only names left out, plus its x86_64 entries arch_prctl and
// modify_ldt.
var dockerAllowlist = strings.Fields(`
	accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown
	clock_adjtime clock_getres clock_gettime clock_nanosleep close close_range connect
	copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old
	epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit
	exit_group faccessat faccessat2 fadvise64 fallocate fanotify_mark fchdir fchmod fchmodat
	fchmodat2 fchown fchownat fcntl fdatasync fgetxattr flistxattr flock fork fremovexattr
	fsetxattr fstat fstatfs fsync ftruncate futex futex_requeue futex_wait futex_waitv
	futex_wake futimesat getcpu getcwd getdents getdents64 getegid geteuid getgid getgroups
	getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid
	getresuid getrlimit get_robust_list getrusage getsid getsockname getsockopt
	get_thread_area gettid gettimeofday getuid getxattr getxattrat inotify_add_watch
	inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents
	io_pgetevents ioprio_get ioprio_set io_setup io_submit kill landlock_add_rule
	landlock_create_ruleset landlock_restrict_self lchown lgetxattr link linkat listen
	listmount listxattr listxattrat llistxattr lremovexattr lseek lsetxattr lstat madvise
	map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat
	mlock mlock2 mlockall mmap mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
	mq_timedsend mq_unlink mremap mseal msgctl msgget msgrcv msgsnd msync munlock munlockall
	munmap name_to_handle_at nanosleep newfstatat open openat openat2 pause pidfd_open
	pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll prctl pread64
	preadv preadv2 prlimit64 process_mrelease pselect6 pwrite64 pwritev pwritev2 read
	readahead readlink readlinkat readv recvfrom recvmmsg recvmsg remap_file_pages
	removexattr removexattrat rename renameat renameat2 restart_syscall rmdir rseq
	rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
	rt_sigtimedwait rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam
	sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval
	sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp
	select semctl semget semop semtimedop sendfile sendmmsg sendmsg sendto setfsgid setfsuid
	setgid setgroups setitimer setpgid setpriority setregid setresgid setresuid setreuid
	setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid
	setxattr setxattrat shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4
	socketpair splice stat statfs statmount statx symlink symlinkat sync sync_file_range
	syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun timer_gettime
	timer_settime timerfd_create timerfd_gettime timerfd_settime times tkill truncate umask
	uname unlink unlinkat uretprobe utime utimensat utimes vfork vmsplice wait4 waitid write
	writev arch_prctl modify_ldt`)

// TestFollowsDocker checks that every syscall Docker allows unconditionally
// is allowed here too, is checked by a rule, or is refused on purpose, so a
// syscall cannot go missing by accident.
func TestFollowsDocker(t *testing.T) {
	t.Parallel()
	ours := map[string]bool{}
	for _, group := range allowedSyscalls {
		for _, name := range group {
			ours[name] = true
		}
	}
	checked := map[string]bool{"ioctl": true, "socketpair": true}
	dropped := map[string]bool{"epoll_ctl_old": true, "epoll_wait_old": true}
	for _, name := range blockedSyscalls {
		dropped[name] = true
	}
	for _, name := range dockerAllowlist {
		if !ours[name] && !checked[name] && !dropped[name] {
			t.Errorf("Docker allows %s; allow it, check it in a rule, or list it as blocked", name)
		}
	}
}

// Verdicts as the kernel sees them.
const (
	allow    = uint32(actAllow)
	kill     = uint32(actKillProcess)
	eperm    = uint32(actErrno) | errnoEPERM
	enosys   = uint32(actErrno) | errnoENOSYS
	eafnosup = uint32(actErrno) | errnoEAFNOSUPPORT
	enomem   = uint32(actErrno) | errnoENOMEM
	einval   = uint32(actErrno) | errnoEINVAL
)

// TestPolicyDecisions runs the assembled program in a BPF interpreter
// against hand-made syscalls, covering each rule on both architectures.
func TestPolicyDecisions(t *testing.T) {
	t.Parallel()
	for _, goarch := range []string{"amd64", "arm64"} {
		for _, tc := range bothOptions {
			t.Run(goarch+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				checkDecisions(t, goarch, tc.opts)
			})
		}
	}
}

func checkDecisions(t *testing.T, goarch string, opts Options) {
	info := arch.X86_64
	if goarch == "arm64" {
		info = arch.AARCH64
	}
	prog, err := filterFor(goarch, opts)
	if err != nil {
		t.Fatal(err)
	}
	vm := newVM(t, prog)
	nr := func(name string) uint32 {
		n, ok := info.SyscallNames[name]
		if !ok {
			t.Fatalf("no syscall %s on %s", name, info.Name)
		}
		return uint32(n)
	}
	check := func(desc string, want uint32, d seccompData) {
		t.Helper()
		if d.arch == 0 {
			d.arch = uint32(info.ID)
		}
		if got := vm.decide(t, d); got != want {
			t.Errorf("%s: verdict %#x, want %#x", desc, got, want)
		}
	}
	call := func(name string, args ...uint64) seccompData {
		d := seccompData{nr: nr(name)}
		copy(d.args[:], args)
		return d
	}

	for _, name := range []string{"read", "write", "getpid", "execve", "openat", "futex", "mmap", "wait4", "kill", "setuid", "setgroups", "prctl", "landlock_create_ruleset", "seccomp", "pidfd_open", "rt_sigreturn"} {
		check(name, allow, call(name, 0xffffffffffffffff, 1<<40))
	}
	if info == arch.X86_64 {
		for _, name := range []string{"open", "fork", "vfork", "arch_prctl", "stat"} {
			check(name, allow, call(name))
		}
	}

	for _, name := range blockedSyscalls {
		if _, ok := info.SyscallNames[name]; ok {
			check("blocked "+name, eperm, call(name))
		}
	}

	// Every number: each unconditionally allowed syscall is allowed, and
	// each number that no rule names is refused.
	conditional := map[string]bool{"ioctl": true, "socket": true, "socketpair": true, "clone": true, "clone3": true, "personality": true}
	allowedNrs := map[uint32]bool{}
	for _, name := range knownNames(info, allowedSyscalls) {
		allowedNrs[nr(name)] = true
	}
	named := map[uint32]bool{}
	for name, n := range info.SyscallNames {
		if conditional[name] {
			named[uint32(n)] = true
		}
	}
	for n := uint32(0); n < 1100; n++ {
		switch {
		case named[n]:
		case allowedNrs[n]:
			check(fmt.Sprintf("allowed syscall %d", n), allow, seccompData{nr: n, args: [6]uint64{uint64(n), 1 << 40}})
		default:
			check(fmt.Sprintf("syscall %d", n), eperm, seccompData{nr: n})
		}
	}
	check("unknown syscall number", eperm, seccompData{nr: 1000})
	check("syscall newer than the tables", eperm, seccompData{nr: 500})

	// Other ABIs.
	for _, id := range []uint32{uint32(arch.I386.ID), uint32(arch.ARM.ID), uint32(arch.X86_64.ID), uint32(arch.AARCH64.ID)} {
		if id == uint32(info.ID) {
			continue
		}
		check(fmt.Sprintf("getpid of arch %#x", id), kill, seccompData{nr: 20, arch: id})
	}
	if info == arch.X86_64 {
		check("x32 getpid", kill, seccompData{nr: x32Bit | nr("getpid")})
		check("x32 read", kill, seccompData{nr: x32Bit | nr("read")})
		check("x32 number 0x40000200", kill, seccompData{nr: 0x40000200})
		check("syscall -1", eperm, seccompData{nr: 0xffffffff})
	}

	// clone: any namespace flag refuses it.
	const sigchld = 17
	check("clone fork", allow, call("clone", sigchld))
	check("clone vfork (os/exec)", allow, call("clone", unix.CLONE_VM|unix.CLONE_VFORK|unix.CLONE_PIDFD|sigchld))
	check("clone thread (pthread, Go)", allow, call("clone", unix.CLONE_VM|unix.CLONE_FS|unix.CLONE_FILES|unix.CLONE_SIGHAND|unix.CLONE_THREAD|unix.CLONE_SYSVSEM|unix.CLONE_SETTLS|unix.CLONE_PARENT_SETTID|unix.CLONE_CHILD_CLEARTID))
	for _, flag := range []uint64{unix.CLONE_NEWUSER, unix.CLONE_NEWNS, unix.CLONE_NEWPID, unix.CLONE_NEWNET, unix.CLONE_NEWIPC, unix.CLONE_NEWUTS, unix.CLONE_NEWCGROUP, unix.CLONE_NEWTIME} {
		check(fmt.Sprintf("clone %#x", flag), eperm, call("clone", flag|sigchld))
		check(fmt.Sprintf("clone %#x with high bits", flag), eperm, call("clone", 0xffffffff00000000|flag|sigchld))
	}
	if opts.AllowClone3 {
		check("clone3", allow, call("clone3"))
	} else {
		check("clone3", enosys, call("clone3"))
	}

	// socket and socketpair: an allowlist of families.
	for _, name := range []string{"socket", "socketpair"} {
		for _, family := range []uint64{afUnix, afInet, afInet6} {
			check(fmt.Sprintf("%s family %d", name, family), allow, call(name, family, unix.SOCK_STREAM))
			check(fmt.Sprintf("%s family %d with high bits", name, family), eafnosup, call(name, 1<<32|family, unix.SOCK_STREAM))
		}
		for _, family := range []uint64{unix.AF_VSOCK, unix.AF_ALG, unix.AF_PACKET, unix.AF_KEY, unix.AF_BLUETOOTH, unix.AF_XDP, unix.AF_RDS, unix.AF_TIPC} {
			check(fmt.Sprintf("%s family %d", name, family), eafnosup, call(name, family, unix.SOCK_STREAM))
		}
	}
	// netlink: none, whose queues the memory limit does not count.
	for _, proto := range []uint64{unix.NETLINK_ROUTE, unix.NETLINK_USERSOCK, unix.NETLINK_AUDIT, unix.NETLINK_SOCK_DIAG, 1<<32 | unix.NETLINK_AUDIT} {
		check(fmt.Sprintf("netlink %#x", proto), eafnosup, call("socket", afNetlink, unix.SOCK_RAW, proto))
		check(fmt.Sprintf("netlink pair %#x", proto), eafnosup, call("socketpair", afNetlink, unix.SOCK_RAW, proto))
	}

	// Huge pages of the host's pool: refused whatever else the flags hold.
	check("mmap", allow, call("mmap", 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS))
	check("mmap of a file", allow, call("mmap", 0, 4096, unix.PROT_READ, unix.MAP_SHARED, 3))
	check("mmap with high bits", allow, call("mmap", 0, 4096, unix.PROT_READ, 1<<32|unix.MAP_PRIVATE|unix.MAP_ANONYMOUS))
	check("mmap huge", enomem, call("mmap", 0, 2<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_HUGETLB))
	check("mmap huge 1G", enomem, call("mmap", 0, 1<<30, unix.PROT_READ, unix.MAP_SHARED|unix.MAP_ANONYMOUS|unix.MAP_HUGETLB|30<<unix.MAP_HUGE_SHIFT))
	check("mmap huge with high bits", enomem, call("mmap", 0, 2<<20, unix.PROT_READ, 0xffffffff00000000|unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_HUGETLB))
	check("memfd_create", allow, call("memfd_create", 0, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING))
	check("memfd_create huge", einval, call("memfd_create", 0, unix.MFD_CLOEXEC|unix.MFD_HUGETLB))
	check("shmget", allow, call("shmget", 0, 4096, unix.IPC_CREAT|0o600))
	check("shmget huge", enomem, call("shmget", 0, 2<<20, unix.IPC_CREAT|shmHugetlb|0o600))

	// ioctl: everything but terminal injection, whatever the high bits.
	for _, req := range []uint64{unix.TCGETS, unix.TIOCGWINSZ, unix.TIOCGPTN, unix.TIOCINQ, 0xffffffff80045430} {
		check(fmt.Sprintf("ioctl %#x", req), allow, call("ioctl", 0, req))
	}
	for _, req := range []uint64{tiocsti, tioclinux, 1<<32 | tiocsti, 0xffffffff00000000 | tiocsti, 1<<63 | tioclinux,
		btrfsSnapCreate, btrfsSubvolCreate, btrfsSnapCreateV2, btrfsSubvolCreateV2, 1<<32 | btrfsSubvolCreate,
		btrfsSubvolSetflags, 1<<32 | btrfsSubvolSetflags} {
		check(fmt.Sprintf("ioctl %#x", req), eperm, call("ioctl", 0, req))
	}

	// personality: Docker's values only, compared on all 64 bits.
	for _, p := range allowedPersonalities {
		check(fmt.Sprintf("personality %#x", p), allow, call("personality", p))
	}
	for _, p := range []uint64{0x0400000, 0x0040000, 0x0100000, 1 << 32, 1<<32 | 0x8, 0xffffffffffffffff} {
		check(fmt.Sprintf("personality %#x", p), eperm, call("personality", p))
	}

	// An argument that equals a syscall number must not be taken for one:
	// sweep the tested argument of every conditional rule across the range
	// of syscall numbers.
	for v := uint64(0); v < 1024; v++ {
		want := eafnosup
		if v == afUnix || v == afInet || v == afInet6 {
			want = allow
		}
		check(fmt.Sprintf("socket family %d", v), want, call("socket", v, unix.SOCK_STREAM, v))
		check(fmt.Sprintf("socketpair family %d", v), want, call("socketpair", v, unix.SOCK_STREAM, v))
		check(fmt.Sprintf("ioctl request %d", v), allow, call("ioctl", v, v, v))

		want = allow
		if v&namespaceCloneFlags != 0 {
			want = eperm
		}
		check(fmt.Sprintf("clone flags %d", v), want, call("clone", v, v, v))

		want = eperm
		if v == 0 || v == 8 {
			want = allow
		}
		check(fmt.Sprintf("personality %d", v), want, call("personality", v))

		want = allow
		if v&mapHugetlb != 0 {
			want = enomem
		}
		check(fmt.Sprintf("mmap flags %d", v), want, call("mmap", v, v, v, v))
	}
}

// seccompData mirrors the kernel's struct seccomp_data.
type seccompData struct {
	nr   uint32
	arch uint32
	args [6]uint64
}

// bytes lays d out for bpf.VM, which loads 32-bit words big-endian: each
// word is stored so the VM reads the value a little-endian kernel would,
// the low half of each argument first.
func (d seccompData) bytes() []byte {
	b := make([]byte, offArgs+8*len(d.args))
	binary.BigEndian.PutUint32(b[offNr:], d.nr)
	binary.BigEndian.PutUint32(b[offArch:], d.arch)
	for i, a := range d.args {
		binary.BigEndian.PutUint32(b[offArgs+8*i:], uint32(a))
		binary.BigEndian.PutUint32(b[offArgs+8*i+4:], uint32(a>>32))
	}
	return b
}

type filterVM struct{ vm *bpf.VM }

// newVM loads prog into an interpreter after a round trip through the
// kernel's encoding, so the tests run what Load installs.
func newVM(t *testing.T, prog []bpf.Instruction) filterVM {
	t.Helper()
	raw, err := bpf.Assemble(prog)
	if err != nil {
		t.Fatal(err)
	}
	insts, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("program does not disassemble")
	}
	vm, err := bpf.NewVM(insts)
	if err != nil {
		t.Fatal(err)
	}
	return filterVM{vm}
}

func (f filterVM) decide(t *testing.T, d seccompData) uint32 {
	t.Helper()
	v, err := f.vm.Run(d.bytes())
	if err != nil {
		t.Fatal(err)
	}
	return uint32(v)
}

func nativeInfo(t *testing.T) *arch.Info {
	t.Helper()
	switch runtime.GOARCH {
	case "amd64":
		return arch.X86_64
	case "arm64":
		return arch.AARCH64
	}
	t.Skipf("seccomp filter not supported on %s", runtime.GOARCH)
	return nil
}

// Subprocess tests. The child (see child_test.go) reports one JSON line per
// probe.

// refusals are the probes the filter must refuse, with the errno the child
// must see. clone3 is handled apart because its verdict depends on Options.
var refusals = map[string]syscall.Errno{
	"mount":                   unix.EPERM,
	"umount2":                 unix.EPERM,
	"chroot":                  unix.EPERM,
	"pivot_root":              unix.EPERM,
	"setns":                   unix.EPERM,
	"unshare-user":            unix.EPERM,
	"unshare-mount":           unix.EPERM,
	"clone-newuser":           unix.EPERM,
	"clone-newnet":            unix.EPERM,
	"keyctl":                  unix.EPERM,
	"add_key":                 unix.EPERM,
	"request_key":             unix.EPERM,
	"bpf":                     unix.EPERM,
	"io_uring_setup":          unix.EPERM,
	"io_uring_enter":          unix.EPERM,
	"io_setup":                unix.EPERM,
	"ptrace":                  unix.EPERM,
	"process_vm_readv":        unix.EPERM,
	"perf_event_open":         unix.EPERM,
	"userfaultfd":             unix.EPERM,
	"fsopen":                  unix.EPERM,
	"open_tree":               unix.EPERM,
	"init_module":             unix.EPERM,
	"finit_module":            unix.EPERM,
	"delete_module":           unix.EPERM,
	"syslog":                  unix.EPERM,
	"kcmp":                    unix.EPERM,
	"name_to_handle_at":       unix.EPERM,
	"adjtimex":                unix.EPERM,
	"clock_settime":           unix.EPERM,
	"unknown-syscall":         unix.EPERM,
	"socket-vsock":            unix.EAFNOSUPPORT,
	"socket-alg":              unix.EAFNOSUPPORT,
	"socket-packet":           unix.EAFNOSUPPORT,
	"socket-key":              unix.EAFNOSUPPORT,
	"socket-netlink-audit":    unix.EAFNOSUPPORT,
	"socket-netlink-route":    unix.EAFNOSUPPORT,
	"socket-netlink-usersock": unix.EAFNOSUPPORT,
	"mmap-hugetlb":            unix.ENOMEM,
	"memfd-hugetlb":           unix.EINVAL,
	"socket-inet-high-bits":   unix.EAFNOSUPPORT,
	"socketpair-vsock":        unix.EAFNOSUPPORT,
	"ioctl-tiocsti":           unix.EPERM,
	"ioctl-tiocsti-high-bits": unix.EPERM,
	"ioctl-tioclinux":         unix.EPERM,
	"personality-rie":         unix.EPERM,
}

// allowedProbes must succeed under the filter.
var allowedProbes = []string{
	"getpid", "files", "proc-status", "threads", "new-threads",
	"unix-socket", "socketpair-unix", "tcp-loopback", "inet6-socket",
	"ioctl-tty", "personality-query", "setid-same", "exec-true",
	"python", "node", "bash",
}

// distinguishingAsRoot are refusals whose errno without the filter differs
// from the filter's for root on any kernel cove supports, so seeing the
// filter's errno proves the filter acted.
var distinguishingAsRoot = []string{
	"mount", "unshare-user", "clone-newuser", "keyctl", "bpf", "ptrace",
	"perf_event_open", "socket-inet-high-bits", "unknown-syscall", "personality-rie",
	"io_setup",
}

func TestLoadInChild(t *testing.T) {
	t.Parallel()
	if _, err := Filter(Options{}); err != nil {
		t.Skipf("no filter for this architecture: %v", err)
	}
	control, _ := startChild(t, "control", false)
	if control["load"].Errno != 0 {
		t.Fatalf("control child: %+v", control["load"])
	}
	if os.Geteuid() == 0 {
		for _, name := range distinguishingAsRoot {
			if got := control[name]; got.Errno == int(refusals[name]) {
				t.Errorf("without the filter %s already fails with %v; the probe cannot tell the filter acted", name, syscall.Errno(got.Errno))
			}
		}
	}

	for _, tc := range bothOptions {
		mode := "filter"
		if tc.opts.AllowClone3 {
			mode = "filter-clone3"
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, _ := startChild(t, mode, false)
			if r := got["load"]; r.Errno != 0 {
				t.Fatalf("Load: %s (errno %d)", r.Out, r.Errno)
			}

			for name, want := range refusals {
				t.Run(name, func(t *testing.T) {
					r := probeOutcome(t, got, name)
					if r.Errno != int(want) {
						t.Fatalf("%s under the filter, want %v", describe(r), want)
					}
					if control[name].Errno == int(want) {
						t.Logf("refused as it would be without the filter (%v); TestPolicyDecisions covers the filter's part", want)
					}
				})
			}
			t.Run("clone3", func(t *testing.T) {
				want := unix.ENOSYS
				if tc.opts.AllowClone3 {
					want = unix.EINVAL // the kernel's answer to an empty clone_args
				}
				if r := probeOutcome(t, got, "clone3"); r.Errno != int(want) {
					t.Errorf("%s, want %v", describe(r), want)
				}
			})
			for _, name := range allowedProbes {
				t.Run(name, func(t *testing.T) {
					if r := probeOutcome(t, got, name); r.Errno != 0 {
						t.Fatalf("failed under the filter: %s", describe(r))
					}
				})
			}
			checkOutput(t, got, "proc-status", func(out string) bool {
				return strings.Contains(out, "Seccomp:\t2\n") && strings.Contains(out, "NoNewPrivs:\t1\n")
			})
			checkOutput(t, got, "threads", func(out string) bool {
				n, err := strconv.Atoi(out)
				return err == nil && n >= 2
			})
			checkOutput(t, got, "python", func(out string) bool {
				return strings.Contains(out, "thread ok") && strings.Contains(out, `b'hi\n'`)
			})
			checkOutput(t, got, "node", func(out string) bool {
				n, err := strconv.Atoi(strings.TrimSpace(out))
				return err == nil && n > 0
			})
			checkOutput(t, got, "bash", func(out string) bool { return out == "nested\n" })
		})
	}
}

// TestForeignABIKills checks in the kernel that a syscall through the i386
// entry point or the x32 ABI kills the process.
func TestForeignABIKills(t *testing.T) {
	t.Parallel()
	if runtime.GOARCH != "amd64" {
		t.Skip("i386 and x32 exist only beside x86_64")
	}
	for _, abi := range []string{"i386", "x32"} {
		t.Run(abi, func(t *testing.T) {
			t.Parallel()
			control, state := startChild(t, "abi-"+abi+"-control", true)
			if !state.Success() {
				t.Skipf("the kernel does not run %s syscalls here: the child ended with %v", abi, state)
			}
			t.Logf("without the filter, %s getpid gave %s", abi, describe(control[abi]))

			got, state := startChild(t, "abi-"+abi+"-filter", true)
			if r := got["load"]; r.Errno != 0 {
				t.Fatalf("Load: %s", describe(r))
			}
			ws, _ := state.Sys().(syscall.WaitStatus)
			if !ws.Signaled() || ws.Signal() != syscall.SIGSYS {
				t.Errorf("child under the filter ended with %v after reporting %s; want death by SIGSYS", state, describe(got[abi]))
			}
		})
	}
}

// probeOutcome returns the child's report on a probe, skipping the test if
// the probe could not run here.
func probeOutcome(t *testing.T, got map[string]probeResult, name string) probeResult {
	t.Helper()
	r, ok := got[name]
	if !ok {
		t.Fatal("the child did not report this probe")
	}
	if r.Errno == skipped {
		t.Skip(r.Out)
	}
	return r
}

func checkOutput(t *testing.T, got map[string]probeResult, name string, ok func(string) bool) {
	t.Helper()
	if r := got[name]; r.Errno == 0 && !ok(r.Out) {
		t.Errorf("%s: unexpected output %q", name, r.Out)
	}
}

func describe(r probeResult) string {
	switch {
	case r.Errno == 0:
		return fmt.Sprintf("success %q", r.Out)
	case r.Errno > 0:
		return fmt.Sprintf("%v (%s)", syscall.Errno(r.Errno), r.Out)
	}
	return r.Out
}

// startChild runs this test binary in child mode and collects its reports.
// Unless mayDie is set, it fails the test if the child does not exit 0.
func startChild(t *testing.T, mode string, mayDie bool) (map[string]probeResult, *os.ProcessState) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()

	results := map[string]probeResult{}
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r probeResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("child %s wrote %q: %v", mode, sc.Text(), err)
		}
		results[r.Name] = r
	}
	var exitErr *exec.ExitError
	if err != nil && !(mayDie && errors.As(err, &exitErr)) {
		t.Fatalf("child %s: %v\nstderr:\n%s", mode, err, stderr.String())
	}
	return results, cmd.ProcessState
}
