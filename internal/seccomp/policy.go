package seccomp

import (
	"fmt"
	"runtime"

	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
)

// Options tunes the filter.
type Options struct {
	// AllowClone3: when false, clone3 fails with ENOSYS so libc and Go fall
	// back to clone(2), whose flags the filter can inspect. When true (needed
	// on cgroup v2 hosts where the agent starts children with
	// CLONE_INTO_CGROUP), clone3 is allowed. clone3 passes its flags in
	// memory the filter cannot read, so any process in the sandbox may then
	// ask for new namespaces, limited only by the kernel's own checks.
	AllowClone3 bool
}

// Linux ABI values the rules use; the same on x86_64 and arm64.
const (
	errnoEPERM        = 1
	errnoENOMEM       = 12
	errnoEINVAL       = 22
	errnoENOSYS       = 38
	errnoEAFNOSUPPORT = 97

	afUnix    = 1
	afInet    = 2
	afInet6   = 10
	afNetlink = 16

	// The flags that ask for huge pages of the host's reserved pool:
	// mmap's MAP_HUGETLB, memfd_create's MFD_HUGETLB, shmget's SHM_HUGETLB.
	mapHugetlb = 0x40000
	mfdHugetlb = 0x4
	shmHugetlb = 0x800

	tiocsti   = 0x5412 // push a byte into a terminal's input queue
	tioclinux = 0x541c // virtual console commands, among them selection paste

	// btrfs ioctls that create subvolumes and snapshots. Any user may use
	// them in a directory it can write to, and the new subvolume gets a
	// quota group of its own with no limit: on a btrfs workspace that
	// escapes the disk limit.
	btrfsSnapCreate     = 0x50009401
	btrfsSubvolCreate   = 0x5000940e
	btrfsSnapCreateV2   = 0x50009417
	btrfsSubvolCreateV2 = 0x50009418
	// btrfsSubvolSetflags makes a subvolume read-only, or writable again,
	// for its owner: the sandbox owns its workspace's root, and a
	// read-only workspace fails every file operation and the reset of a
	// reused sandbox with EROFS, which cove can only take for its
	// workspace volume gone read-only.
	btrfsSubvolSetflags = 0x4008941a

	// namespaceCloneFlags are CLONE_NEWTIME, CLONE_NEWNS, CLONE_NEWCGROUP,
	// CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID and
	// CLONE_NEWNET: Docker's mask plus CLONE_NEWTIME (which clone(2) cannot
	// take anyway: its low byte is the exit signal).
	namespaceCloneFlags = 0x80 | 0x20000 | 0x02000000 | 0x04000000 |
		0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
)

// allowedSocketFamilies are the address families socket and socketpair may
// use: local sockets and loopback TCP and UDP. Others fail with
// EAFNOSUPPORT, as if the kernel lacked them: notably AF_VSOCK (a channel
// to the host), AF_ALG (kernel crypto), AF_PACKET, AF_KEY, and netlink,
// whose queues of replies and messages the kernel keeps outside the
// sandbox's memory limit (a program that asks and never reads held
// gigabytes of the host's memory with a 64 MiB limit). libc does without
// netlink: getaddrinfo takes both address families as present, and what
// lists interfaces (getifaddrs, ip) fails.
var allowedSocketFamilies = []uint64{afUnix, afInet, afInet6}

// allowedPersonalities are the personality(2) arguments Docker allows:
// PER_LINUX, PER_LINUX32, UNAME26, PER_LINUX32|UNAME26, and 0xffffffff,
// which only queries. Flags such as READ_IMPLIES_EXEC and
// ADDR_NO_RANDOMIZE would weaken the process's memory protections.
var allowedPersonalities = []uint64{0x0, 0x8, 0x20000, 0x20008, 0xffffffff}

// Filter returns cove's seccomp filter for the running architecture as a
// classic BPF program: what Load installs, for inspection and tests. It
// fails on architectures other than x86_64 and arm64.
func Filter(opts Options) ([]bpf.Instruction, error) {
	prog, err := filterFor(runtime.GOARCH, opts)
	if err != nil {
		return nil, fmt.Errorf("building seccomp filter: %w", err)
	}
	return prog, nil
}

// filterFor builds the filter for a Go architecture name.
func filterFor(goarch string, opts Options) ([]bpf.Instruction, error) {
	var info *arch.Info
	switch goarch {
	case "amd64":
		info = arch.X86_64
	case "arm64":
		info = arch.AARCH64
	default:
		return nil, fmt.Errorf("unsupported architecture %s", goarch)
	}
	rules, err := policy(info, opts)
	if err != nil {
		return nil, err
	}
	return compile(info, rules, fail(errnoEPERM))
}

// policy lists the rules in the order the filter tries them; the first
// match decides, and anything unmatched fails with EPERM. Refusals that
// carve exceptions out of an allowed syscall come before the rules that
// allow it.
func policy(info *arch.Info, opts Options) ([]rule, error) {
	allowed := knownNames(info, allowedSyscalls)
	if err := checkBlocked(allowed); err != nil {
		return nil, err
	}

	rules := []rule{
		// Faking terminal input (TIOCSTI) or pasting the console selection
		// (TIOCLINUX) types commands into whatever shell owns the terminal.
		{name: "ioctl", action: fail(errnoEPERM), when: []cond{{arg: 1, op: opEqual32, value: tiocsti}}},
		{name: "ioctl", action: fail(errnoEPERM), when: []cond{{arg: 1, op: opEqual32, value: tioclinux}}},
		{name: "ioctl", action: fail(errnoEPERM), when: []cond{{arg: 1, op: opEqual32, value: btrfsSnapCreate}}},
		{name: "ioctl", action: fail(errnoEPERM), when: []cond{{arg: 1, op: opEqual32, value: btrfsSubvolCreate}}},
		{name: "ioctl", action: fail(errnoEPERM), when: []cond{{arg: 1, op: opEqual32, value: btrfsSnapCreateV2}}},
		{name: "ioctl", action: fail(errnoEPERM), when: []cond{{arg: 1, op: opEqual32, value: btrfsSubvolCreateV2}}},
		{name: "ioctl", action: fail(errnoEPERM), when: []cond{{arg: 1, op: opEqual32, value: btrfsSubvolSetflags}}},
		// Allowed here rather than with the rest: ioctl is frequent, and its
		// argument checks keep the kernel from caching the verdict.
		{name: "ioctl", action: actAllow},
		// Huge pages come from a pool the host reserves, which the
		// sandbox's memory limit does not count: asking for them fails as
		// if the pool were empty (ENOMEM for mmap and shmget, EINVAL for
		// memfd_create, as a kernel without them says), and programs fall
		// back to ordinary pages. Allowed here with their flags checked.
		{name: "mmap", action: actAllow, when: []cond{{arg: 3, op: opNoneOf32, value: mapHugetlb}}},
		{name: "mmap", action: fail(errnoENOMEM)},
		{name: "memfd_create", action: actAllow, when: []cond{{arg: 1, op: opNoneOf32, value: mfdHugetlb}}},
		{name: "memfd_create", action: fail(errnoEINVAL)},
		{name: "shmget", action: actAllow, when: []cond{{arg: 2, op: opNoneOf32, value: shmHugetlb}}},
		{name: "shmget", action: fail(errnoENOMEM)},
		// clone(2) without CLONE_NEW* flags, as in Docker's profile; the
		// kernel reads only the low 32 bits of the flags. With any of them it
		// falls through to EPERM.
		{name: "clone", action: actAllow, when: []cond{{arg: 0, op: opNoneOf32, value: namespaceCloneFlags}}},
	}
	for _, name := range []string{"socket", "socketpair"} {
		for _, family := range allowedSocketFamilies {
			rules = append(rules, rule{name: name, action: actAllow, when: []cond{{arg: 0, op: opEqual64, value: family}}})
		}
		rules = append(rules, rule{name: name, action: fail(errnoEAFNOSUPPORT)})
	}
	for _, persona := range allowedPersonalities {
		rules = append(rules, rule{name: "personality", action: actAllow, when: []cond{{arg: 0, op: opEqual64, value: persona}}})
	}
	if opts.AllowClone3 {
		allowed = append(allowed, "clone3")
	} else {
		// ENOSYS, not EPERM: glibc and Go read it as "kernel too old" and
		// fall back to clone(2).
		rules = append(rules, rule{name: "clone3", action: fail(errnoENOSYS)})
	}
	for _, name := range allowed {
		rules = append(rules, rule{name: name, action: actAllow})
	}
	return rules, nil
}

// knownNames flattens groups of syscall names, keeping those the
// architecture has.
func knownNames(info *arch.Info, groups [][]string) []string {
	var names []string
	for _, group := range groups {
		for _, name := range group {
			if _, ok := info.SyscallNames[name]; ok {
				names = append(names, name)
			}
		}
	}
	return names
}

// checkBlocked reports an allowed name that cove promises to refuse.
func checkBlocked(allowed []string) error {
	blocked := make(map[string]bool, len(blockedSyscalls))
	for _, name := range blockedSyscalls {
		blocked[name] = true
	}
	for _, name := range allowed {
		if blocked[name] {
			return fmt.Errorf("syscall %s is both allowed and blocked", name)
		}
	}
	return nil
}
