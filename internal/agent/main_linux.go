package agent

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"time"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove/internal/cgroups"
	"github.com/cove-sandbox/cove/internal/seccomp/sockfilter"
)

// Main runs the agent. It is called by cove's main when IsAgentInvocation
// reports true, and never returns.
func Main() {
	if path, ok := isLauncherInvocation(); ok {
		runtime.GOMAXPROCS(1)
		runLauncher(path)
	}
	started := time.Now()
	// The agent waits on pipes and sockets; its work is small. One P keeps
	// its threads few, which makes every all-thread change at boot (the
	// capabilities, the seccomp filter) and each sandbox's start cheaper.
	runtime.GOMAXPROCS(1)
	// The main thread stays with the main goroutine: on cgroup v1 the
	// process's memory is charged to the main thread's cgroup, so the fork
	// thread, which moves into the user's cgroups, must be another one.
	runtime.LockOSThread()
	// Nothing in the sandbox may read this process's memory, fds or
	// environment through /proc, or ptrace it.
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	var cfg BootConfig
	if _, err := recvFrame(fdConn, &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "cove agent: %v\n", err)
		os.Exit(70)
	}
	reply := BootReply{StartMicros: time.Since(started).Microseconds()}
	srv, err := boot(&cfg, &reply)
	f := os.NewFile(fdConn, "conn")
	conn, cerr := net.FileConn(f)
	if cerr != nil {
		fmt.Fprintf(os.Stderr, "cove agent: host connection: %v\n", cerr)
		os.Exit(70)
	}
	f.Close()
	reply.OK = err == nil
	if err != nil {
		reply.Error = err.Error()
		if se, ok := err.(*SetupError); ok {
			reply.Layer = se.Layer
			reply.Error = se.Err.Error()
		}
	}
	if werr := writeFrame(conn, frameResult, marshalBinary(&reply)); werr != nil || err != nil {
		os.Exit(71)
	}
	// The main goroutine stays locked to the main thread but parks here
	// for good: a locked goroutine that keeps waking hands the scheduler
	// back and forth between two threads on every wake-up.
	served := make(chan struct{})
	go func() {
		srv.serve(conn)
		close(served)
	}()
	<-served
	os.Exit(0)
}

// boot finishes the sandbox's isolation. The order matters: mounts need
// capabilities that are dropped later, the fork thread must enter its
// cgroups and cgroup namespace before seccomp forbids unshare, and seccomp
// comes last so that everything before it may use what it forbids. Each
// step's duration is reported back to the host.
func boot(cfg *BootConfig, reply *BootReply) (*server, error) {
	var files []*os.File
	filter, err := sockfilter.Decode(cfg.Seccomp)
	if err != nil {
		return nil, layerErr("seccomp", err)
	}
	var (
		cg  *cgroups.Delegated
		srv *server
	)
	steps := []struct {
		layer string
		run   func() error
	}{
		{"mounts", func() error { return setupRoot(cfg) }},
		// The host creates the workspace and cgroups while the agent
		// mounts; they arrive in a second message.
		{"resources", func() error {
			var res BootResources
			passed, err := recvFrame(fdConn, &res)
			if err != nil {
				return err
			}
			if len(passed) != 2+res.CgroupFiles {
				return fmt.Errorf("got %d descriptors, want %d", len(passed), 2+res.CgroupFiles)
			}
			files = passed[2:]
			if err := attachMount(passed[1], "/etc", 0); err != nil {
				return fmt.Errorf("attaching /etc: %w", err)
			}
			return attachMount(passed[0], workspaceDir, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
		}},
		// Best effort: leftovers cost disk space, not isolation, and must
		// not keep a sandbox from starting.
		{"stale uploads", func() error { _ = removeStaleStages(); return nil }},
		{"hostname", func() error { return unix.Sethostname([]byte(hostnameOrDefault(cfg.Hostname))) }},
		{"loopback network", setupNetwork},
		{"rlimits", func() error { return setRlimits(cfg) }},
		{"cgroups", func() error {
			var err error
			if cg, err = cgroups.OpenDelegated(cgroups.Version(cfg.CgroupVersion), files); err != nil {
				return err
			}
			srv = newServer(cfg, cg)
			return srv.startForker()
		}},
		{"capabilities", dropPrivileges},
		{"landlock", func() error {
			if !cfg.Landlock {
				return nil
			}
			var err error
			reply.Landlock, err = restrictLandlock(cfg, files)
			return err
		}},
		// No descriptor the agent holds may reach a user process: Go opens
		// its own with O_CLOEXEC, and this covers what the agent inherited.
		{"file descriptors", func() error { return unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC) }},
		{"seccomp", func() error { return sockfilter.Install(filter) }},
	}
	for _, st := range steps {
		t := time.Now()
		if err := st.run(); err != nil {
			return nil, layerErr(st.layer, err)
		}
		reply.Steps = append(reply.Steps, Step{Name: st.layer, Micros: time.Since(t).Microseconds()})
	}
	return srv, nil
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
		// Refer lets files move and link between directories of these trees.
		landlock.RWDirs("/workspace", "/tmp", "/dev/shm").WithRefer(),
		// Terminals need their ioctls (the size, the line discipline, the
		// controlling terminal); the pseudo-terminals are the sandbox's
		// own devpts instance, and seccomp refuses the ioctls that inject
		// input (TIOCSTI, TIOCLINUX).
		landlock.RWDirs("/dev/pts").WithIoctlDev(),
		landlock.RWFiles("/dev/tty").WithIoctlDev().IgnoreIfMissing(),
		landlock.RWFiles("/dev/null", "/dev/zero", "/dev/full").IgnoreIfMissing(),
	}
	if len(cgPaths) > 0 {
		rules = append(rules, landlock.RWDirs(cgPaths...))
	}
	if err := landlock.V5.BestEffort().RestrictPaths(rules...); err != nil {
		return 0, err
	}
	return abi, nil
}
