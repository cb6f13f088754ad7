package agent

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove/internal/cgroups"
)

type exitInfo struct {
	status syscall.WaitStatus
	rusage syscall.Rusage
}

type forkRequest struct {
	argv0 string
	argv  []string
	attr  *syscall.ProcAttr
	group *cgroups.Exec
	exit  chan exitInfo

	pid  int
	err  error
	done chan struct{}
}

// startForker starts the one OS thread that forks user processes. The
// thread lives in the user cgroups (so children are born there, with no
// migration on the hot path) and in a cgroup namespace rooted there.
func (s *server) startForker() error {
	ready := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread is dedicated
		if err := s.cg.PrepareForkThread(); err != nil {
			ready <- fmt.Errorf("entering user cgroups: %w", err)
			return
		}
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			ready <- fmt.Errorf("cgroup namespace: %w", err)
			return
		}
		if err := dropForkThreadPrivileges(); err != nil {
			ready <- err
			return
		}
		ready <- nil
		for req := range s.forkReqs {
			s.fork(req)
		}
	}()
	return <-ready
}

func (s *server) fork(req *forkRequest) {
	defer close(req.done)
	if err := req.group.EnterThread(); err != nil {
		req.err = fmt.Errorf("entering execution cgroup: %w", err)
		return
	}
	s.reapMu.Lock()
	req.pid, req.err = syscall.ForkExec(req.argv0, req.argv, req.attr)
	if req.err == nil {
		s.procs[req.pid] = req.exit
	}
	s.reapMu.Unlock()
	if err := s.cg.ParkThread(); err != nil && req.err == nil {
		// The child runs; the thread just could not leave the execution's
		// cgroup, which only delays that cgroup's removal.
		_ = err
	}
}

// startReaper starts reaping every child and orphan of PID 1, and hands
// the exit status of registered executions to their waiters. SIGCHLD is
// registered before it returns: a child that ended before that sent its
// signal to no one and would stay a zombie, its execution waiting for good.
func (s *server) startReaper() {
	sigc := make(chan os.Signal, 64)
	signal.Notify(sigc, syscall.SIGCHLD)
	go func() {
		// Whatever ended before the registration is reaped first.
		s.reap()
		for range sigc {
			s.reap()
		}
	}()
}

// reap reaps every child that has ended.
func (s *server) reap() {
	s.reapMu.Lock()
	defer s.reapMu.Unlock()
	for {
		var ws syscall.WaitStatus
		var ru syscall.Rusage
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, &ru)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		if ch, ok := s.procs[pid]; ok {
			delete(s.procs, pid)
			ch <- exitInfo{status: ws, rusage: ru}
		}
	}
}

// frameWriter serialises frames from several goroutines onto one stream.
type frameWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (f *frameWriter) frame(typ byte, b []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return writeFrame(f.w, typ, b)
}

func (f *frameWriter) json(typ byte, v any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return writeJSONFrame(f.w, typ, v)
}

// execState is what the concurrent parts of one execution report.
type execState struct {
	mu            sync.Mutex
	timedOut      bool
	outputLimited bool
	canceled      bool
	exited        bool
}

// hasExited reports whether the program has exited: a stream that ends
// after that is the host's normal close, not a cancellation.
func (e *execState) hasExited() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.exited
}

func (e *execState) set(f func()) {
	e.mu.Lock()
	f()
	e.mu.Unlock()
}

func (s *server) handleExec(st io.ReadWriter, stream uint32, spec *ExecSpec) {
	fw := &frameWriter{w: st}
	var cleanup []func()
	res := s.runExec(st, stream, fw, spec, &cleanup)
	fw.frame(frameExecResult, marshalBinary(res))
	// Its processes are dead already; removing the execution's cgroup
	// need not delay the result.
	for _, f := range cleanup {
		f()
	}
}

func (s *server) runExec(st io.Reader, stream uint32, fw *frameWriter, spec *ExecSpec, cleanup *[]func()) *ExecResult {
	start := time.Now()
	// Reachable from other streams (SignalExec) from now on: a stop that
	// comes before the program runs applies once it does.
	ctl := s.claimExec(stream)
	defer s.removeExec(stream)
	if len(spec.Files) > 0 {
		if err := writeFiles(spec.Files, s.cfg.UID, s.cfg.GID); err != nil {
			code, _ := fileErrorCode(err)
			return &ExecResult{ExitCode: 127, StartError: "writing program files: " + err.Error(), StartCode: string(code)}
		}
	}
	if len(spec.Argv) == 0 {
		return &ExecResult{ExitCode: 127, StartError: "empty command"}
	}
	argv0, err := lookPath(spec.Argv[0], spec.Env, spec.Dir)
	if err != nil {
		return &ExecResult{ExitCode: 127, StartError: err.Error()}
	}
	// Background processes, terminals and contexts share the sandbox's
	// memory too.
	s.running.Add(1)
	defer s.running.Add(-1)
	mem := s.watchMemory(func() bool { return s.running.Load() == 1 && s.othersIdle(0) })

	p, err := s.startPiped(argv0, spec.Argv, spec.Env, spec.Dir, spec.Stdin)
	if err != nil {
		return &ExecResult{ExitCode: startExitCode(err), StartError: err.Error()}
	}
	grp, pid, exit, stdinW, outR, errR := p.grp, p.pid, p.exit, p.stdin, p.stdout, p.stderr
	*cleanup = append(*cleanup, func() { grp.Remove() })

	var state execState
	kill := func(mark func()) {
		state.set(mark)
		_ = grp.Kill()
	}
	res := &ExecResult{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		over := func() { kill(func() { state.outputLimited = true }) }
		out, errs := pumpBoth(outR, errR, fw, spec.OutputLimit, over)
		res.StdoutBytes, res.StdoutTruncated = out.total, out.truncated
		res.StderrBytes, res.StderrTruncated = errs.total, errs.truncated
	}()
	// A cancellation that comes after the program's exit (from another
	// stream, SignalExec) changes nothing of its result.
	cancel := func() {
		kill(func() {
			if !state.exited {
				state.canceled = true
			}
		})
	}
	go s.readControl(st, stdinW, &state, cancel)
	ctl.started(pid, cancel)

	var timer *time.Timer
	if spec.TimeoutMS > 0 {
		timer = time.AfterFunc(time.Duration(spec.TimeoutMS)*time.Millisecond, func() {
			kill(func() { state.timedOut = true })
		})
	}
	ex := <-exit
	wall := time.Since(start)
	if timer != nil {
		timer.Stop()
	}
	state.set(func() { state.exited = true })
	// Whatever the program left behind (background jobs, daemons that
	// called setsid) lives in the execution's cgroup and dies now.
	_ = grp.Kill()
	wg.Wait()

	fillExit(res, ex, wall)
	mem.judge(res, ex.status)
	state.mu.Lock()
	res.TimedOut, res.OutputLimited, res.Canceled = state.timedOut, state.outputLimited, state.canceled
	state.mu.Unlock()
	return res
}

// memoryWatch follows the sandbox's memory over the run of one program
// (an execution, a terminal's program), to say what its end owes to
// memory: its peak, and whether it ran out.
type memoryWatch struct {
	s *server
	// alone reports whether nothing but the program uses the sandbox's
	// memory; wasAlone is what it reported as the program started.
	alone    func() bool
	wasAlone bool
	// oomBefore is the sandbox's count of OOM kills at the start.
	oomBefore int64
}

// watchMemory starts a memoryWatch for a program about to start; alone
// reports whether nothing else uses the sandbox's memory (the caller has
// counted the program itself). Alone, the program's peak is the
// sandbox's, which is reset for it.
func (s *server) watchMemory(alone func() bool) *memoryWatch {
	w := &memoryWatch{s: s, alone: alone, wasAlone: alone()}
	if w.wasAlone {
		_ = s.resetPeak()
	}
	_, w.oomBefore, _ = s.cg.Memory()
	return w
}

// judge completes res, filled by fillExit for a program that ended with
// status ws, with its peak memory and whether the OOM killer ended it.
func (w *memoryWatch) judge(res *ExecResult, ws syscall.WaitStatus) {
	peak, oomAfter, err := w.s.cg.Memory()
	if err != nil {
		return
	}
	// Alone in the cgroup, the program's peak is the cgroup's: memory
	// as its limit counts it. A process's own peak (the fallback)
	// also counts shared pages the limit does not, and can pass it.
	if w.wasAlone && peak > 0 {
		res.PeakMemory = peak
	}
	// The kernel's count is the whole sandbox's. Killed by SIGKILL,
	// the program is the one it killed; alone in the sandbox, a
	// program that failed after a kill ran out of memory too,
	// through a child (a shell reports its child's kill as status
	// 137).
	killed := ws.Signaled() && ws.Signal() == syscall.SIGKILL
	stillAlone := w.wasAlone && w.alone()
	res.OOMKilled = oomAfter > w.oomBefore && (killed || stillAlone && res.ExitCode != 0)
}

// forkUser starts argv through the fork thread as the sandbox user, in a
// session of its own, born in execution cgroup grp, with files as its
// descriptors 0, 1, 2 and on. With ctty, files[0] is a terminal that
// becomes the session's controlling terminal. The reaper sends the exit
// status to the returned channel.
func (s *server) forkUser(grp *cgroups.Exec, argv0 string, argv, env []string, dir string, files []uintptr, ctty bool) (int, chan exitInfo, error) {
	cgfd := grp.CgroupFD()
	req := &forkRequest{
		argv0: argv0,
		argv:  argv,
		attr: &syscall.ProcAttr{
			Dir:   dir,
			Env:   env,
			Files: files,
			Sys: &syscall.SysProcAttr{
				Setsid:      true,
				Setctty:     ctty,
				Ctty:        0,
				Credential:  &syscall.Credential{Uid: uint32(s.cfg.UID), Gid: uint32(s.cfg.GID), Groups: []uint32{}},
				UseCgroupFD: cgfd >= 0,
				CgroupFD:    cgfd,
			},
		},
		group: grp,
		exit:  make(chan exitInfo, 1),
		done:  make(chan struct{}),
	}
	s.forkReqs <- req
	<-req.done
	return req.pid, req.exit, req.err
}

// pipedProc is a user process started by startPiped.
type pipedProc struct {
	pid  int
	exit chan exitInfo
	grp  *cgroups.Exec
	// stdin is the write end of its standard input when one was asked
	// for (else it reads /dev/null); stdout and stderr are the read ends
	// of its output.
	stdin, stdout, stderr *os.File
}

// forkError is why the fork of a program failed; it reads as
// startErrorText.
type forkError struct {
	argv0 string
	err   error
	// dir says what is wrong with the working directory, when that is
	// why the fork failed (the child's chdir and exec fail alike).
	dir string
}

func (e *forkError) Error() string {
	if e.dir != "" {
		return e.dir
	}
	return startErrorText(e.argv0, e.err)
}

// workDirProblem says what is wrong with dir when it explains a failed
// fork, else "".
func workDirProblem(dir string, err error) string {
	if dir == "" || !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ENOTDIR) {
		return ""
	}
	fi, serr := os.Stat(dir)
	switch {
	case errors.Is(serr, fs.ErrNotExist) || errors.Is(serr, syscall.ENOTDIR):
		return "working directory " + dir + ": no such directory"
	case serr == nil && !fi.IsDir():
		return "working directory " + dir + ": not a directory"
	}
	return ""
}
func (e *forkError) Unwrap() error { return e.err }

// startPiped starts argv (argv0 resolved) as the sandbox user in an
// execution cgroup of its own, with pipes as its standard output and
// error, a pipe or /dev/null as its standard input, and extra as its
// descriptors 3 and on (the caller closes them after). A failed fork is a
// *forkError; anything else that fails is the agent's own trouble.
func (s *server) startPiped(argv0 string, argv, env []string, dir string, stdin bool, extra ...*os.File) (*pipedProc, error) {
	grp, err := s.cg.NewExec(int(s.execSeq.Add(1)))
	if err != nil {
		return nil, fmt.Errorf("creating execution cgroup: %w", err)
	}
	// The child's ends are closed after the fork; the parent's on failure.
	var child, parent []*os.File
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			f.Close()
		}
	}
	fail := func(err error) (*pipedProc, error) {
		closeAll(child)
		closeAll(parent)
		grp.Remove()
		return nil, err
	}
	p := &pipedProc{grp: grp}
	var in *os.File
	if stdin {
		r, w, err := os.Pipe()
		if err != nil {
			return fail(fmt.Errorf("stdin pipe: %w", err))
		}
		in, p.stdin = r, w
		child, parent = append(child, r), append(parent, w)
	} else {
		if in, err = os.Open(os.DevNull); err != nil {
			return fail(fmt.Errorf("opening /dev/null: %w", err))
		}
		child = append(child, in)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return fail(fmt.Errorf("stdout pipe: %w", err))
	}
	child, parent = append(child, outW), append(parent, outR)
	errR, errW, err := os.Pipe()
	if err != nil {
		return fail(fmt.Errorf("stderr pipe: %w", err))
	}
	child, parent = append(child, errW), append(parent, errR)
	// The program's pipes belong to its user, as its terminal would, so
	// that it may open them again by name: /dev/stdin, /dev/stdout and
	// /dev/stderr lead to /proc/self/fd/N, whose open checks the pipe's
	// owner against its mode, 0600. Both ends of a pipe are one inode;
	// the agent's ends are out of the program's reach all the same
	// (/proc/1/fd is not its to open). /dev/null, shared by everyone,
	// stays as it is, open to all already.
	for _, f := range []*os.File{in, outW, errW} {
		if f == in && !stdin {
			continue
		}
		if err := f.Chown(s.cfg.UID, s.cfg.GID); err != nil {
			return fail(fmt.Errorf("giving the program its pipes: %w", err))
		}
	}
	fds := []uintptr{in.Fd(), outW.Fd(), errW.Fd()}
	for _, f := range extra {
		fds = append(fds, f.Fd())
	}
	pid, exit, err := s.forkUser(grp, argv0, argv, env, dir, fds, false)
	if err != nil {
		return fail(&forkError{argv0: argv[0], err: err, dir: workDirProblem(dir, err)})
	}
	closeAll(child)
	p.pid, p.exit, p.stdout, p.stderr = pid, exit, outR, errR
	return p, nil
}

// resetPeak resets the sandbox's peak memory use.
func (s *server) resetPeak() error {
	s.peakResets.Add(1)
	return s.cg.ResetPeak()
}

// peakMark changes whenever something may have changed the sandbox's
// peak memory use without the caller knowing: a reset, or a new process
// (an execution, a background process, a terminal or an interpreter).
func (s *server) peakMark() int64 {
	return s.peakResets.Load()<<32 + s.execSeq.Load()
}

// othersIdle reports whether nothing else that uses the sandbox's memory
// runs: no background process, terminal or context beyond the given
// number of contexts (the caller's own), and no execution (the caller
// counts its own in s.running before).
func (s *server) othersIdle(contexts int64) bool {
	return s.othersIdleBut(0, contexts)
}

// othersIdleBut is othersIdle for a caller that counts its own among the
// given numbers of terminals and contexts.
func (s *server) othersIdleBut(terminals, contexts int64) bool {
	return s.bg.running.Load() == 0 && s.terminals.Load() <= terminals && s.contexts.live.Load() <= contexts
}

// fillExit records how a program ended, its wall and CPU time and its own
// peak memory (its largest process's resident set).
func fillExit(res *ExecResult, ex exitInfo, wall time.Duration) {
	ws := ex.status
	switch {
	case ws.Exited():
		res.ExitCode = ws.ExitStatus()
	case ws.Signaled():
		res.Signal = int(ws.Signal())
		res.ExitCode = 128 + int(ws.Signal())
	}
	res.WallNS = int64(wall)
	res.CPUNS = ex.rusage.Utime.Nano() + ex.rusage.Stime.Nano()
	res.PeakMemory = ex.rusage.Maxrss * 1024
}

// pumpBoth forwards a program's standard output and error as frames, up
// to limit bytes each (0: no limit), in the order readBoth reads them. Past
// the limit it calls over once and keeps draining, so that the writer
// never blocks on a full pipe before it is killed.
func pumpBoth(outR, errR *os.File, fw *frameWriter, limit int64, over func()) (out, errs pumped) {
	streams := []*pumped{&out, &errs}
	types := []byte{frameStdout, frameStderr}
	overCalled := false
	readBoth(outR, errR, func(stream int, data []byte) {
		st := streams[stream]
		if st.truncated {
			return
		}
		chunk := data
		if limit > 0 && st.total+int64(len(chunk)) > limit {
			chunk = chunk[:limit-st.total]
			st.truncated = true
		}
		if len(chunk) > 0 {
			if fw.frame(types[stream], chunk) != nil {
				// The host is gone; keep draining until the
				// cancellation kills the program.
				st.truncated = true
			}
			st.total += int64(len(chunk))
		}
		if st.truncated && !overCalled {
			overCalled = true
			over()
		}
	})
	return out, errs
}

// readBoth reads a program's standard output and error until both end,
// handing each chunk to deliver (stream 0 or 1) from one goroutine that
// waits on both pipes at once, and closes them. A goroutine per pipe loses
// the order in which a program wrote to them: when both pipes become
// readable before the agent runs, Go's poller hands the goroutines over
// in the reverse order of their readiness, and a traceback came before the
// line printed just ahead of it in half of the runs. Here, when both are
// readable, standard output goes first: the order of a program that
// prints and then fails.
func readBoth(outR, errR *os.File, deliver func(stream int, data []byte)) {
	defer outR.Close()
	defer errR.Close()
	fds := []int{int(outR.Fd()), int(errR.Fd())}
	open := []bool{true, true}
	buf := make([]byte, chunkSize)
	for open[0] || open[1] {
		var pfds []unix.PollFd
		var which []int
		for i := range fds {
			if open[i] {
				pfds = append(pfds, unix.PollFd{Fd: int32(fds[i]), Events: unix.POLLIN})
				which = append(which, i)
			}
		}
		if _, err := unix.Poll(pfds, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			// Cannot wait on the pipes: read them in turn instead.
			for j := range pfds {
				pfds[j].Revents = unix.POLLIN
			}
		}
		for j, pfd := range pfds {
			if pfd.Revents == 0 {
				continue
			}
			i := which[j]
			n, err := unix.Read(fds[i], buf)
			if err == unix.EINTR || err == unix.EAGAIN {
				continue
			}
			if n <= 0 {
				open[i] = false
				continue
			}
			deliver(i, buf[:n])
		}
	}
}

// pumped is what pumpBoth forwarded of one stream.
type pumped struct {
	total     int64
	truncated bool
}

// execControl reaches an execution from outside its stream. Signals and
// a cancellation that come before its program runs wait for it: the
// host's stop may overtake the execution's own start (the two come on
// streams of their own, served at once), and would otherwise be taken
// for one that came too late.
type execControl struct {
	mu       sync.Mutex
	pid      int    // its process group, once it runs
	cancel   func() // kills it, once it runs
	canceled bool
	signals  []int
	// early is when a signal made this control before its execution
	// claimed it; zero once claimed.
	early time.Time
}

// started records the running program and applies what came before.
func (c *execControl) started(pid int, cancel func()) {
	c.mu.Lock()
	c.pid, c.cancel = pid, cancel
	canceled, signals := c.canceled, c.signals
	c.signals = nil
	c.mu.Unlock()
	for _, sig := range signals {
		_ = syscall.Kill(-pid, syscall.Signal(sig))
	}
	if canceled {
		cancel()
	}
}

// deliver applies a SignalExec now, or once the program runs.
func (c *execControl) deliver(spec *SignalExecSpec) {
	c.mu.Lock()
	pid, cancel := c.pid, c.cancel
	if cancel == nil {
		switch {
		case spec.Cancel:
			c.canceled = true
		case spec.Signal > 0 && spec.Signal < 65 && len(c.signals) < maxEarlySignals:
			c.signals = append(c.signals, spec.Signal)
		}
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	switch {
	case spec.Cancel:
		cancel()
	case spec.Signal > 0 && spec.Signal < 65:
		// The process group, as a terminal would.
		_ = syscall.Kill(-pid, syscall.Signal(spec.Signal))
	}
}

// Bounds of what waits for executions that have not claimed it: a signal
// for a stream that never runs an execution (one that has ended: it came
// too late) is forgotten after earlyKeep.
const (
	maxEarlySignals = 16
	earlyKeep       = 30 * time.Second
)

// claimExec returns the control of the execution on stream, with what
// came for it before.
func (s *server) claimExec(stream uint32) *execControl {
	s.execMu.Lock()
	defer s.execMu.Unlock()
	c := s.execs[stream]
	if c == nil {
		c = &execControl{}
		s.execs[stream] = c
	}
	c.mu.Lock()
	c.early = time.Time{}
	c.mu.Unlock()
	return c
}

// controlFor returns the control of the execution on stream, making one
// that waits for it if it has not claimed one (yet).
func (s *server) controlFor(stream uint32) *execControl {
	s.execMu.Lock()
	defer s.execMu.Unlock()
	if c := s.execs[stream]; c != nil {
		return c
	}
	now := time.Now()
	for id, c := range s.execs {
		c.mu.Lock()
		stale := !c.early.IsZero() && now.Sub(c.early) > earlyKeep
		c.mu.Unlock()
		if stale {
			delete(s.execs, id)
		}
	}
	c := &execControl{early: now}
	s.execs[stream] = c
	return c
}

func (s *server) removeExec(stream uint32) {
	s.execMu.Lock()
	delete(s.execs, stream)
	s.execMu.Unlock()
}

// handleSignalExec signals a running execution, or kills it as cancelled;
// one whose program has not started yet gets it once it does. One that
// has ended is not an error: the signal came too late to matter, and its
// stream has the result.
func (s *server) handleSignalExec(st io.Writer, spec *SignalExecSpec) {
	s.controlFor(spec.Stream).deliver(spec)
	writeJSONFrame(st, frameResult, struct{}{})
}

// readControl applies the host's stdin and end-of-stdin frames (signals
// come on streams of their own, see handleSignalExec). If the stream ends
// before the program does, the host has given up on the execution (its
// caller cancelled): cancel kills the program.
func (s *server) readControl(st io.Reader, stdinW *os.File, state *execState, cancel func()) {
	defer func() {
		if stdinW != nil {
			stdinW.Close()
		}
	}()
	for {
		typ, payload, err := readFrame(st)
		if err != nil {
			if !state.hasExited() {
				cancel()
			}
			return
		}
		switch typ {
		case frameStdin:
			if stdinW != nil {
				if _, err := stdinW.Write(payload); err != nil {
					stdinW.Close()
					stdinW = nil
				}
			}
		case frameStdinEOF:
			if stdinW != nil {
				stdinW.Close()
				stdinW = nil
			}
		}
	}
}

// lookPath finds argv0 the way a shell would, in the PATH of env.
func lookPath(argv0 string, env []string, dir string) (string, error) {
	if strings.Contains(argv0, "/") {
		p := argv0
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		return p, nil
	}
	path := "/usr/local/bin:/usr/bin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = "."
		}
		p := filepath.Join(d, argv0)
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: command not found", argv0)
}

// startExitCode is the exit status of a program that could not be
// started, as a shell gives it: 126 for one that was found but cannot be
// executed (no execute permission, a directory, not a format the kernel
// runs), 127 for the rest (not found).
func startExitCode(err error) int {
	var fe *forkError
	if errors.As(err, &fe) && fe.dir == "" && (errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.ENOEXEC)) {
		return 126
	}
	return 127
}

func startErrorText(argv0 string, err error) string {
	switch {
	case errors.Is(err, syscall.ENOENT):
		return argv0 + ": no such file or directory"
	case errors.Is(err, syscall.EACCES):
		return argv0 + ": permission denied"
	case errors.Is(err, syscall.ENOEXEC):
		return argv0 + ": exec format error"
	}
	return fmt.Sprintf("starting %s: %v", argv0, err)
}
