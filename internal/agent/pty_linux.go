package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/cgroups"
)

// Terminal defaults and bounds.
const (
	defaultCols = 80
	defaultRows = 24
	defaultTerm = "xterm-256color"
	// ptyInputWait is how long typed input waits for a program that does
	// not read it; then it is dropped, as a terminal drops type-ahead,
	// so that a stuck program cannot stall the stream.
	ptyInputWait = 5 * time.Second
	// ptyDrainWait bounds reading what is left of a terminal's output
	// once its program and everything it started were killed.
	ptyDrainWait = 5 * time.Second
)

// terminal is a program started on a pseudo-terminal.
type terminal struct {
	pid    int
	exit   <-chan exitInfo
	group  *cgroups.Exec
	master *os.File
	start  time.Time
	mem    *memoryWatch
}

// openPTY opens a new pseudo-terminal of the sandbox's own devpts
// instance. The master stays non-blocking, so its reads and writes go
// through Go's poller and obey deadlines and Close; the slave is a
// blocking descriptor, for the program. TIOCGPTPEER opens the slave
// without looking up its path.
func openPTY() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	rc, err := master.SyscallConn()
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	sfd := -1
	var ierr error
	err = rc.Control(func(fd uintptr) {
		if ierr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ierr != nil {
			ierr = fmt.Errorf("unlocking the terminal: %w", ierr)
			return
		}
		r, _, e := unix.Syscall(unix.SYS_IOCTL, fd, unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
		if e != 0 {
			ierr = fmt.Errorf("opening the terminal's slave: %w", e)
			return
		}
		sfd = int(r)
	})
	if err == nil {
		err = ierr
	}
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, os.NewFile(uintptr(sfd), "pts"), nil
}

// setWinsize sets the size of the terminal whose master is m; the
// foreground process group gets SIGWINCH.
func setWinsize(m *os.File, cols, rows int) error {
	rc, err := m.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	err = rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Col: uint16(cols), Row: uint16(rows)})
	})
	if err != nil {
		return err
	}
	return ierr
}

// defaultShell is a login shell: bash if the sandbox has it, else sh.
func defaultShell(env []string, dir string) []string {
	if _, err := lookPath("bash", env, dir); err == nil {
		return []string{"bash", "-l"}
	}
	return []string{"/bin/sh", "-l"}
}

// startPTY starts spec's program on a new terminal, through the fork
// thread, in an execution cgroup of its own, as the sandbox user, in a new
// session whose controlling terminal it is.
func (s *server) startPTY(spec *PTYSpec) (*terminal, error) {
	cols, rows := spec.Cols, spec.Rows
	if cols == 0 {
		cols = defaultCols
	}
	if rows == 0 {
		rows = defaultRows
	}
	if cols < 1 || rows < 1 || cols > maxTermSide || rows > maxTermSide {
		return nil, cove.Errorf(cove.CodeInvalid, "terminal size %dx%d is out of range (1 to %d)", cols, rows, maxTermSide)
	}
	dir := spec.Dir
	if dir == "" {
		dir = workspaceDir
	}
	env := slices.Clone(spec.Env)
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "TERM=") }) {
		env = append(env, "TERM="+defaultTerm)
	}
	argv := spec.Argv
	if len(argv) == 0 {
		argv = defaultShell(env, dir)
	}
	argv0, err := lookPath(argv[0], env, dir)
	if err != nil {
		return nil, codedError(cove.CodeInvalid, err.Error())
	}
	grp, err := s.cg.NewExec(int(s.execSeq.Add(1)))
	if err != nil {
		return nil, cove.Errorf(cove.CodeInternal, "creating execution cgroup: %w", err)
	}
	master, slave, err := openPTY()
	if err != nil {
		grp.Remove()
		return nil, cove.Errorf(cove.CodeInternal, "opening a pseudo-terminal: %w", err)
	}
	defer slave.Close()
	fail := func(err error) (*terminal, error) {
		master.Close()
		grp.Remove()
		return nil, err
	}
	if err := setWinsize(master, cols, rows); err != nil {
		return fail(cove.Errorf(cove.CodeInternal, "setting the terminal size: %w", err))
	}
	// The terminal belongs to its user, as login programs do it, so that
	// programs that open it again by name (ttyname) may.
	sfd := slave.Fd()
	if err := unix.Fchown(int(sfd), s.cfg.UID, s.cfg.GID); err != nil {
		return fail(cove.Errorf(cove.CodeInternal, "giving the terminal to the sandbox user: %w", err))
	}
	// The terminal is counted in s.terminals (handlePTY) and is alone
	// when nothing else runs.
	mem := s.watchMemory(func() bool { return s.running.Load() == 0 && s.othersIdleBut(1, 0) })
	start := time.Now()
	pid, exit, err := s.forkUser(grp, argv0, argv, env, dir, []uintptr{sfd, sfd, sfd}, true)
	if err != nil {
		// The child's chdir fails as its exec would: name the directory
		// when it is the reason, as executions and background processes do.
		if d := workDirProblem(dir, err); d != "" {
			return fail(codedError(cove.CodeInvalid, d))
		}
		return fail(startFailure(argv[0], err))
	}
	return &terminal{pid: pid, exit: exit, group: grp, master: master, start: start, mem: mem}, nil
}

// handlePTY runs a program on a terminal for the host: typed input
// (frameStdin) and size changes (frameResize) come in, output
// (frameStdout) goes out, and the result ends the stream once the program
// has exited and its output is drained. If the host closes the stream
// first, the program and everything it started are killed.
func (s *server) handlePTY(st io.ReadWriter, spec *PTYSpec) {
	s.terminals.Add(1)
	counted := true
	uncount := func() {
		if counted {
			counted = false
			s.terminals.Add(-1)
		}
	}
	defer uncount()
	t, err := s.startPTY(spec)
	if err != nil {
		writeCoveError(st, err)
		return
	}
	fw := &frameWriter{w: st}
	fw.json(frameAck, ptyAck{PID: t.pid})
	res := t.run(st, fw)
	// Ended before its result is sent: a terminal the host opens on
	// seeing it must not find this one still counted (it would not be
	// alone in the sandbox, and a child's out-of-memory kill would not be
	// told).
	uncount()
	fw.json(frameResult, res)
}

func (t *terminal) run(st io.Reader, fw *frameWriter) *ExecResult {
	defer t.group.Remove()
	var state execState
	var out int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		out = pumpTerminal(t.master, fw)
	}()
	go t.control(st, &state, func() {
		state.set(func() { state.canceled = true })
		_ = t.group.Kill()
	})
	ex := <-t.exit
	wall := time.Since(t.start)
	state.set(func() { state.exited = true })
	// Whatever the program left behind dies now; the last holder of the
	// terminal's slave is then gone and reading the master ends.
	_ = t.group.Kill()
	t.master.SetReadDeadline(time.Now().Add(ptyDrainWait))
	wg.Wait()
	t.master.Close()
	res := &ExecResult{StdoutBytes: out}
	fillExit(res, ex, wall)
	t.mem.judge(res, ex.status)
	state.mu.Lock()
	res.Canceled = state.canceled
	state.mu.Unlock()
	return res
}

// pumpTerminal forwards the terminal's output until no program holds the
// terminal any more. If the host is gone it keeps draining.
func pumpTerminal(master *os.File, fw *frameWriter) int64 {
	buf := make([]byte, chunkSize)
	var total int64
	hostGone := false
	for {
		n, err := master.Read(buf)
		if n > 0 {
			total += int64(n)
			if !hostGone && fw.frame(frameStdout, buf[:n]) != nil {
				hostGone = true
			}
		}
		if err != nil {
			// EIO: every descriptor of the slave is closed.
			return total
		}
	}
}

// control applies the host's input and size changes. If the stream ends
// before the program does, cancel kills it.
func (t *terminal) control(st io.Reader, state *execState, cancel func()) {
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
			t.master.SetWriteDeadline(time.Now().Add(ptyInputWait))
			_, _ = t.master.Write(payload)
		case frameResize:
			var ts termSize
			if json.Unmarshal(payload, &ts) == nil && ts.Cols >= 1 && ts.Rows >= 1 && ts.Cols <= maxTermSide && ts.Rows <= maxTermSide {
				_ = setWinsize(t.master, ts.Cols, ts.Rows)
			}
		}
	}
}
