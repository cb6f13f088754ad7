package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// The launcher is a small process, the agent binary started with
// LauncherArg, that starts every sandbox's agent on the host's behalf.
// Starting a process in a new user namespace cannot use vfork (the parent
// must write the id maps while the child waits), so the kernel copies the
// starting process's page tables and each page it writes afterwards faults:
// a cost that grows with the size of cove's server, and that the launcher,
// a few megabytes, keeps small.
//
// The host talks to it over a SOCK_SEQPACKET socket at descriptor
// launcherConn, one request and one reply at a time. A request carries the
// descriptors the agent gets as 0 to 3; the reply carries a pidfd of the
// started agent. The launcher dies with its host (parent-death signal), and
// every agent dies with the launcher, so an agent never outlives cove.

// LauncherArg, after Arg, makes the binary run as the launcher.
const LauncherArg = "launcher"

// launcherConn is the launcher's connection to the host.
const launcherConn = 3

// launcherBin is where the launcher finds the agent binary it starts,
// when it was given none by path.
const launcherBin = 4

// SpawnRequest asks the launcher to start an agent in new namespaces with
// host ids Base to Base+Size-1 mapped to 0 to Size-1 inside.
type SpawnRequest struct {
	Base int `json:"base"`
	Size int `json:"size"`
}

type spawnReply struct {
	Pid   int    `json:"pid"`
	Error string `json:"error,omitempty"`
}

// isLauncherInvocation reports whether this process is the launcher, and
// the agent binary's path when it was given one.
func isLauncherInvocation() (path string, ok bool) {
	if len(os.Args) < 3 || os.Args[2] != LauncherArg {
		return "", false
	}
	if len(os.Args) > 3 {
		path = os.Args[3]
	}
	return path, true
}

// childTCPHash is the size of the TCP connection hash table each sandbox's
// network namespace gets of its own (net.ipv4.tcp_child_ehash_entries, in
// the launcher's network namespace). Sharing the host's table, sized by
// the host's memory (262144 buckets on 24 GiB), made the kernel walk all of
// it every time a sandbox's namespace went away.
const childTCPHash = 1024

// runLauncher serves spawn requests until the host closes the connection.
func runLauncher(path string) {
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	// The launcher has a network namespace of its own (StartLauncher): the
	// setting applies to the namespaces it creates, and not to the host's.
	// Kernels before 5.19 lack it, and sandboxes share the host's table.
	_ = os.WriteFile("/proc/sys/net/ipv4/tcp_child_ehash_entries", []byte(strconv.Itoa(childTCPHash)), 0)
	var bin *os.File
	if path == "" {
		bin = os.NewFile(launcherBin, "agent")
	}
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(8*4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(launcherConn, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			// The host went away: the agents go with this process.
			os.Exit(0)
		}
		files, perr := passedFiles(oob[:oobn])
		reply := spawnReply{}
		var pidfd int = -1
		var req SpawnRequest
		switch {
		case perr != nil:
			reply.Error = perr.Error()
		case len(files) != 4:
			reply.Error = fmt.Sprintf("spawn request with %d descriptors, want 4", len(files))
		default:
			if err := json.Unmarshal(buf[:n], &req); err != nil {
				reply.Error = "malformed spawn request: " + err.Error()
				break
			}
			reply.Pid, pidfd, err = spawnAgent(path, bin, req, files)
			if err != nil {
				reply.Error = err.Error()
			}
		}
		for _, f := range files {
			f.Close()
		}
		msg, _ := json.Marshal(reply)
		var rights []byte
		if pidfd >= 0 {
			rights = unix.UnixRights(pidfd)
		}
		for {
			err = unix.Sendmsg(launcherConn, msg, rights, nil, 0)
			if err != unix.EINTR {
				break
			}
		}
		if pidfd >= 0 {
			unix.Close(pidfd)
		}
		if err != nil {
			os.Exit(0)
		}
	}
}

// StartAgent starts an agent from this process, as the launcher would: for
// a process small enough that its fork costs little.
func StartAgent(path string, bin *os.File, req SpawnRequest, files []*os.File) (*AgentProcess, error) {
	pid, pidfd, err := spawnAgent(path, bin, req, files)
	if err != nil {
		return nil, err
	}
	return &AgentProcess{Pid: pid, pidfd: os.NewFile(uintptr(pidfd), "pidfd")}, nil
}

// spawnAgent starts one agent, from bin or else path, with files as its
// descriptors 0 to 3, and returns its pid and a pidfd for it.
func spawnAgent(path string, bin *os.File, req SpawnRequest, files []*os.File) (int, int, error) {
	if req.Base <= 0 || req.Size <= 0 {
		return 0, -1, fmt.Errorf("invalid id range %d+%d", req.Base, req.Size)
	}
	ids := []syscall.SysProcIDMap{{ContainerID: 0, HostID: req.Base, Size: req.Size}}
	if bin != nil {
		// Executed through /proc/self/fd: the new process, already root of
		// its user namespace and no one on the host, could not walk to the
		// binary's directory. The agent closes the descriptor at boot.
		files = append(files[:4:4], bin)
		path = fmt.Sprintf("/proc/self/fd/%d", launcherBin)
	}
	proc, err := startAsOwner(req.Base, path, []string{"cove-agent", Arg}, &os.ProcAttr{
		Env:   agentEnv,
		Files: files,
		Sys: &syscall.SysProcAttr{
			Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID |
				syscall.CLONE_NEWNET | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS,
			UidMappings:                ids,
			GidMappings:                ids,
			GidMappingsEnableSetgroups: true,
			// The child keeps the host's root credentials until it becomes
			// root of its namespace (the host id base) explicitly.
			Credential: &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}},
			// The agent dies with the launcher, even when it is killed
			// with SIGKILL, and the launcher with cove.
			Pdeathsig: syscall.SIGKILL,
		},
	})
	if err != nil {
		return 0, -1, err
	}
	// Reaped here; the host watches the agent through its pidfd.
	pidfd, err := unix.PidfdOpen(proc.Pid, unix.PIDFD_NONBLOCK)
	go proc.Wait()
	if err != nil {
		proc.Kill()
		return 0, -1, fmt.Errorf("pidfd_open: %w", err)
	}
	return proc.Pid, pidfd, nil
}

// startAsOwner starts a process in a new user namespace (attr asks for
// one) that belongs to the host uid owner rather than to root.
//
// The kernel charges what a user may have of inotify instances and
// watches, POSIX message queue bytes, queued signals and more not only
// to the user inside a namespace but also, up the chain, to the owner of
// the namespace in its parent: the effective uid of the process that
// created it. Owned by root, every sandbox drew on root's counts on the
// host (128 inotify instances by default), and one sandbox that took them
// all left the host's own root services, cove and every other sandbox
// without. Owned by the first id of the sandbox's range, a uid no other
// sandbox and no host process has, a sandbox can only use up its own.
//
// Only the starting thread changes its effective uid, for the time of the
// start; other threads keep theirs. It keeps its capabilities (the real
// and saved uids stay 0), which writing the child's id maps needs. The
// thread is then given back, because the child's parent-death signal is
// tied to it: were it to exit, the child would die. Changing a thread's
// credentials has two effects beyond it: the kernel clears that thread's
// own parent-death signal, and makes the process non-dumpable (as the
// agent makes itself anyway). The launcher's parent-death signal is safe:
// it is the main thread's, and the main goroutine stays locked there
// (mainthread_linux.go), so no start runs on it.
func startAsOwner(owner int, path string, argv []string, attr *os.ProcAttr) (*os.Process, error) {
	type started struct {
		proc *os.Process
		err  error
	}
	done := make(chan started, 1)
	go func() {
		runtime.LockOSThread()
		proc, err := startWithEUID(owner, path, argv, attr)
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, keepID, 0, keepID); e != 0 {
			// The thread stays locked and exits with this goroutine,
			// and the child with it; kill it anyway.
			if proc != nil {
				proc.Kill()
				proc.Wait()
			}
			done <- started{nil, fmt.Errorf("restoring the launching thread's uid: %w", e)}
			return
		}
		runtime.UnlockOSThread()
		done <- started{proc, err}
	}()
	r := <-done
	return r.proc, r.err
}

// keepID, as an id argument of setresuid, leaves that id as it is.
const keepID = ^uintptr(0)

// startWithEUID starts the process with the calling thread's effective uid
// set to euid, and its effective capabilities as they were.
func startWithEUID(euid int, path string, argv []string, attr *os.ProcAttr) (*os.Process, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var caps [2]unix.CapUserData
	if err := unix.Capget(&hdr, &caps[0]); err != nil {
		return nil, fmt.Errorf("capget: %w", err)
	}
	// Raw: syscall.Setresuid would change every thread of the process.
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, keepID, uintptr(euid), keepID); e != 0 {
		return nil, fmt.Errorf("setting the namespace owner %d: %w", euid, e)
	}
	// Leaving uid 0 cleared the effective set; the permitted set stayed.
	if err := unix.Capset(&hdr, &caps[0]); err != nil {
		return nil, fmt.Errorf("capset: %w", err)
	}
	return os.StartProcess(path, argv, attr)
}

// agentEnv is the whole environment of the launcher and the agents. Their
// Go runtime starts with the one P they run with (see Main) instead of
// making one per CPU and dropping them again. Nothing of it reaches the
// sandbox's programs, whose environment every exec gives in full.
var agentEnv = []string{"GOMAXPROCS=1"}

// Launcher is the host's end of a running launcher.
type Launcher struct {
	mu   sync.Mutex
	conn int
	proc *os.Process
	err  error
}

// StartLauncher starts the launcher from the agent binary: bin, an open
// descriptor of it, or else the executable at path.
func StartLauncher(path string, bin *os.File) (*Launcher, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	theirs := os.NewFile(uintptr(fds[1]), "launcher-conn")
	defer theirs.Close()
	devNull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		unix.Close(fds[0])
		return nil, err
	}
	defer devNull.Close()
	files := []*os.File{devNull, devNull, os.Stderr, theirs}
	argv := []string{"cove-agent", Arg, LauncherArg}
	if bin != nil {
		files = append(files, bin)
		path = fmt.Sprintf("/proc/self/fd/%d", launcherBin)
	} else {
		argv = append(argv, path)
	}
	proc, err := os.StartProcess(path, argv, &os.ProcAttr{
		Env:   agentEnv,
		Files: files,
		Sys: &syscall.SysProcAttr{
			// The launcher, and with it every sandbox, dies with cove.
			Pdeathsig: syscall.SIGKILL,
			// A process group of its own, which the agents it starts
			// join: a Ctrl-C or a SIGTERM sent to the group of the server
			// (as a terminal or a service manager sends them) is for cove
			// serve to act on, draining running executions, and must not
			// kill the sandboxes under them.
			Setpgid: true,
			// A network namespace of its own, for its settings of the
			// sandboxes' namespaces (see childTCPHash).
			Cloneflags: syscall.CLONE_NEWNET,
		},
	})
	if err != nil {
		unix.Close(fds[0])
		return nil, fmt.Errorf("starting the launcher: %w", err)
	}
	return &Launcher{conn: fds[0], proc: proc}, nil
}

// AgentProcess is an agent the launcher started.
type AgentProcess struct {
	Pid   int
	pidfd *os.File
}

// ErrLauncherGone reports that the launcher has exited.
var ErrLauncherGone = errors.New("the sandbox launcher has exited")

// Spawn starts an agent with files as its descriptors 0 to 3.
func (l *Launcher) Spawn(req SpawnRequest, files []*os.File) (*AgentProcess, error) {
	msg, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, l.err
	}
	fail := func(err error) (*AgentProcess, error) {
		l.err = fmt.Errorf("%w: %v", ErrLauncherGone, err)
		return nil, l.err
	}
	for {
		err = unix.Sendmsg(l.conn, msg, unix.UnixRights(fds...), nil, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fail(err)
	}
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	var n, oobn int
	for {
		n, oobn, _, _, err = unix.Recvmsg(l.conn, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err != unix.EINTR {
			break
		}
	}
	if err == nil && n == 0 {
		err = errors.New("connection closed")
	}
	if err != nil {
		return fail(err)
	}
	passed, err := passedFiles(oob[:oobn])
	if err != nil {
		return fail(err)
	}
	var reply spawnReply
	err = json.Unmarshal(buf[:n], &reply)
	if err != nil || reply.Error != "" || len(passed) != 1 {
		for _, f := range passed {
			f.Close()
		}
	}
	switch {
	case err != nil:
		return fail(fmt.Errorf("malformed reply: %w", err))
	case reply.Error != "":
		return nil, errors.New(reply.Error)
	case len(passed) != 1:
		return fail(fmt.Errorf("reply with %d descriptors, want a pidfd", len(passed)))
	}
	// The pidfd is non-blocking, so os.NewFile put it in Go's poller, which
	// wakes Wait when the agent exits without holding a thread.
	return &AgentProcess{Pid: reply.Pid, pidfd: passed[0]}, nil
}

// Pid is the launcher's process id.
func (l *Launcher) Pid() int { return l.proc.Pid }

// Close stops the launcher; agents it started die with it.
func (l *Launcher) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn >= 0 {
		unix.Close(l.conn)
		l.conn = -1
		l.err = ErrLauncherGone
		l.proc.Wait()
	}
	return nil
}

// Kill sends SIGKILL to the agent, through its pidfd: never to another
// process that reused its pid.
func (p *AgentProcess) Kill() error {
	rc, err := p.pidfd.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.PidfdSendSignal(int(fd), unix.SIGKILL, nil, 0)
	}); err != nil {
		return err
	}
	if serr == unix.ESRCH {
		return nil
	}
	return serr
}

// Wait returns when the agent has exited, and releases the pidfd.
func (p *AgentProcess) Wait() {
	rc, err := p.pidfd.SyscallConn()
	if err == nil {
		rc.Read(func(fd uintptr) bool {
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, err := unix.Poll(pfd, 0)
			return err != nil && err != unix.EINTR || n > 0
		})
	}
	p.pidfd.Close()
}
