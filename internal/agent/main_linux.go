package agent

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"runtime"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove/internal/cgroups"
	"github.com/cove-sandbox/cove/internal/seccomp"
)

// Main runs the agent. It is called by cove's main when IsAgentInvocation
// reports true, and never returns.
func Main() {
	// The main thread stays with the main goroutine: on cgroup v1 the
	// process's memory is charged to the main thread's cgroup, so the fork
	// thread, which moves into the user's cgroups, must be another one.
	runtime.LockOSThread()
	// Nothing in the sandbox may read this process's memory, fds or
	// environment through /proc, or ptrace it.
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	f := os.NewFile(fdConn, "conn")
	conn, err := net.FileConn(f)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cove agent: host connection: %v\n", err)
		os.Exit(70)
	}
	f.Close()
	typ, payload, err := readFrame(conn)
	if err != nil || typ != frameRequest {
		fmt.Fprintf(os.Stderr, "cove agent: reading boot config: %v\n", err)
		os.Exit(70)
	}
	var cfg BootConfig
	if err := json.Unmarshal(payload, &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "cove agent: decoding boot config: %v\n", err)
		os.Exit(70)
	}
	srv, abi, err := boot(&cfg)
	reply := BootReply{OK: err == nil, Landlock: abi}
	if err != nil {
		reply.Error = err.Error()
		if se, ok := err.(*SetupError); ok {
			reply.Layer = se.Layer
			reply.Error = se.Err.Error()
		}
	}
	if werr := writeJSONFrame(conn, frameResult, reply); werr != nil || err != nil {
		os.Exit(71)
	}
	srv.serve(conn)
	os.Exit(0)
}

// boot finishes the sandbox's isolation. The order matters: mounts need
// capabilities that are dropped later, the fork thread must enter its
// cgroups and cgroup namespace before seccomp forbids unshare, and seccomp
// comes last so that everything before it may use what it forbids.
func boot(cfg *BootConfig) (*server, int, error) {
	if err := setupRoot(cfg); err != nil {
		return nil, 0, err
	}
	if err := unix.Sethostname([]byte(hostnameOrDefault(cfg.Hostname))); err != nil {
		return nil, 0, layerErr("hostname", err)
	}
	if err := setupNetwork(); err != nil {
		return nil, 0, layerErr("loopback network", err)
	}
	if err := setRlimits(cfg); err != nil {
		return nil, 0, layerErr("rlimits", err)
	}
	files := make([]*os.File, cfg.CgroupFiles)
	for i := range files {
		files[i] = os.NewFile(uintptr(fdFirstCgroup+i), fmt.Sprintf("cgroup%d", i))
		unix.CloseOnExec(fdFirstCgroup + i)
	}
	cg, err := cgroups.OpenDelegated(cgroups.Version(cfg.CgroupVersion), files)
	if err != nil {
		return nil, 0, layerErr("cgroups", err)
	}
	srv := newServer(cfg, cg)
	if err := srv.startForker(); err != nil {
		return nil, 0, layerErr("cgroups", err)
	}
	if err := dropPrivileges(); err != nil {
		return nil, 0, layerErr("capabilities", err)
	}
	abi := 0
	if cfg.Landlock {
		var err error
		if abi, err = restrictLandlock(cfg, files); err != nil {
			return nil, 0, layerErr("landlock", err)
		}
	}
	// No descriptor the agent holds may reach a user process: Go opens
	// its own with O_CLOEXEC, and this covers what the agent inherited.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return nil, 0, layerErr("file descriptors", err)
	}
	if err := seccomp.Load(seccomp.Options{AllowClone3: cfg.CgroupVersion == 2}); err != nil {
		return nil, 0, layerErr("seccomp", err)
	}
	return srv, abi, nil
}

func setRlimits(cfg *BootConfig) error {
	set := func(res int, v uint64) error {
		if v == 0 {
			return nil
		}
		return unix.Setrlimit(res, &unix.Rlimit{Cur: v, Max: v})
	}
	if err := set(unix.RLIMIT_NOFILE, cfg.NoFile); err != nil {
		return fmt.Errorf("RLIMIT_NOFILE: %w", err)
	}
	if err := set(unix.RLIMIT_FSIZE, cfg.FSize); err != nil {
		return fmt.Errorf("RLIMIT_FSIZE: %w", err)
	}
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return fmt.Errorf("RLIMIT_CORE: %w", err)
	}
	return nil
}

// restrictLandlock confines the agent and everything it starts: the whole
// tree is read-only except the workspace, /tmp, /dev/shm and a few devices.
// The agent's delegated cgroup directories stay writable to the agent; no
// path inside the sandbox leads to them.
func restrictLandlock(cfg *BootConfig, cgroupFiles []*os.File) (int, error) {
	abi, err := ll.LandlockGetABIVersion()
	if err != nil || abi < 1 {
		// No Landlock in this kernel: best effort by design.
		return 0, nil
	}
	var cgPaths []string
	for _, f := range cgroupFiles {
		cgPaths = append(cgPaths, fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	}
	rules := []landlock.Rule{
		landlock.RODirs("/"),
		landlock.RWDirs("/workspace", "/tmp", "/dev/shm", "/dev/pts"),
		landlock.RWFiles("/dev/null", "/dev/zero", "/dev/full", "/dev/tty").IgnoreIfMissing(),
	}
	if len(cgPaths) > 0 {
		rules = append(rules, landlock.RWDirs(cgPaths...))
	}
	if err := landlock.V5.BestEffort().RestrictPaths(rules...); err != nil {
		return 0, err
	}
	return abi, nil
}
