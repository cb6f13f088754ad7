package service

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/agent"
)

// The calls below reach into a running sandbox through its agent; they
// check ownership and count as activity.

// StartProcess implements cove.Service.
func (s *Service) StartProcess(ctx context.Context, id string, req cove.ProcessRequest) (*cove.Process, error) {
	argv, err := commandLine(req.Cmd, req.Shell, req.Env)
	if err != nil {
		return nil, err
	}
	if err := cove.CheckTimeout(req.Timeout); err != nil {
		return nil, err
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	spec := &agent.ExecSpec{Argv: argv, Dir: workDir(req.Cwd), Env: buildEnv(sb.baseEnv(), sb.env, req.Env), TimeoutMS: req.Timeout.Milliseconds()}
	p, err := sb.inst.Agent().Spawn(ctx, spec, req.Name)
	if err != nil {
		return nil, err
	}
	// A pid of the sandbox may be used again by a later process.
	if req.Timeout > 0 {
		sb.procTimeouts.Store(p.PID, req.Timeout)
	} else {
		sb.procTimeouts.Delete(p.PID)
	}
	return processOf(p, sb.processLimits(p.PID)), nil
}

// processLimits are the limits of background process pid: the sandbox's,
// with the process's own timeout, or none when it was started without one
// (a background process does not take the sandbox's timeout of an
// execution).
func (sb *sandbox) processLimits(pid int) cove.Limits {
	l := sb.limits
	l.Timeout = 0
	if t, ok := sb.procTimeouts.Load(pid); ok {
		l.Timeout = t.(time.Duration)
	}
	return l
}

func processOf(p *agent.ProcessInfo, limits cove.Limits) *cove.Process {
	out := &cove.Process{PID: p.PID, Name: p.Name, Cmd: p.Argv, State: cove.ProcessRunning, StartedAt: p.StartedAt}
	if !p.Running {
		out.State = cove.ProcessExited
		if p.Result != nil {
			out.Result = resultOf(p.Result, limits)
		}
	}
	return out
}

// ListProcesses implements cove.Service.
func (s *Service) ListProcesses(ctx context.Context, id string) ([]*cove.Process, error) {
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	ps, err := sb.inst.Agent().Processes(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*cove.Process, 0, len(ps))
	for _, p := range ps {
		out = append(out, processOf(p, sb.processLimits(p.PID)))
	}
	return out, nil
}

// GetProcess implements cove.Service.
func (s *Service) GetProcess(ctx context.Context, id string, pid int) (*cove.Process, error) {
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	p, err := sb.inst.Agent().Process(ctx, pid)
	if err != nil {
		return nil, err
	}
	return processOf(p, sb.processLimits(pid)), nil
}

// ProcessLogs implements cove.Service.
func (s *Service) ProcessLogs(ctx context.Context, id string, pid int, follow bool) (cove.Stream, error) {
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	ex, err := sb.inst.Agent().Logs(ctx, pid, follow)
	if err != nil {
		done()
		return nil, err
	}
	st := &stream{ex: ex, ctx: ctx, limits: sb.processLimits(pid), onClose: []func(){done}}
	if follow {
		// A follower sees the process end with its sandbox: a stop or a
		// deletion kills it first and waits for its result, which says
		// why, as for an execution.
		st.finished = sb.execStarted()
		stopOnEnd := context.AfterFunc(sb.ended, func() {
			st.ended.Store(context.Cause(sb.ended).Error())
			sb.inst.Agent().SignalProcess(context.WithoutCancel(ctx), pid, int(unix.SIGKILL))
		})
		st.onClose = []func(){func() { stopOnEnd() }, st.resultIn, done}
	}
	return st, nil
}

// WaitProcess implements cove.Service.
func (s *Service) WaitProcess(ctx context.Context, id string, pid int) (*cove.Process, error) {
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	// As for a follower of its output: a stop or a deletion of the
	// sandbox kills the process first and waits for its result, which
	// says why.
	finished := sb.execStarted()
	defer finished()
	var ended atomic.Value // string
	stopOnEnd := context.AfterFunc(sb.ended, func() {
		ended.Store(context.Cause(sb.ended).Error())
		sb.inst.Agent().SignalProcess(context.WithoutCancel(ctx), pid, int(unix.SIGKILL))
	})
	defer stopOnEnd()
	p, err := sb.inst.Agent().Wait(ctx, pid)
	finished()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	out := processOf(p, sb.processLimits(pid))
	if why, ok := ended.Load().(string); ok && out.Result != nil && out.Result.Verdict == cove.VerdictKilled {
		out.Result.Message = "killed: " + why
	}
	return out, nil
}

// WriteProcessStdin implements cove.Service.
func (s *Service) WriteProcessStdin(ctx context.Context, id string, pid int, data []byte, eof bool) error {
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return err
	}
	defer done()
	return sb.inst.Agent().WriteStdin(ctx, pid, data, eof)
}

// SignalProcess implements cove.Service.
func (s *Service) SignalProcess(ctx context.Context, id string, pid int, signal string) error {
	sig, err := parseSignal(signal)
	if err != nil {
		return err
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return err
	}
	defer done()
	return sb.inst.Agent().SignalProcess(ctx, pid, sig)
}

// parseSignal accepts "SIGTERM", "TERM", "term" or "15".
func parseSignal(name string) (int, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if n == "" {
		return int(unix.SIGTERM), nil
	}
	if v, err := strconv.Atoi(n); err == nil && v > 0 && v < 65 {
		return v, nil
	}
	if !strings.HasPrefix(n, "SIG") {
		n = "SIG" + n
	}
	if sig := unix.SignalNum(n); sig != 0 {
		return int(sig), nil
	}
	return 0, cove.Errorf(cove.CodeInvalid, "unknown signal %q: use a name such as SIGTERM, SIGINT, SIGKILL or a number", name)
}

// OpenPTY implements cove.Service.
func (s *Service) OpenPTY(ctx context.Context, id string, req cove.PTYRequest) (cove.PTY, error) {
	if err := validateEnv(req.Env); err != nil {
		return nil, err
	}
	if req.Cols < 0 || req.Rows < 0 || req.Cols > 1000 || req.Rows > 1000 {
		return nil, cove.Errorf(cove.CodeInvalid, "terminal size %dx%d is out of range (1 to 1000)", req.Cols, req.Rows)
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	env := map[string]string{"TERM": "xterm-256color"}
	for k, v := range req.Env {
		env[k] = v
	}
	p, err := sb.inst.Agent().OpenPTY(ctx, &agent.PTYSpec{Argv: req.Cmd, Env: buildEnv(sb.baseEnv(), sb.env, env), Dir: workDir(req.Cwd), Cols: req.Cols, Rows: req.Rows})
	if cove.ErrorCode(err) == cove.CodeInvalid {
		// The request was checked above: what the agent refuses is the
		// program, which cannot be started (not found, not executable, a
		// missing working directory). As for an execution, that is the
		// program's result (setup_failed, exit status 127), not an error.
		done()
		return &unstarted{res: resultOf(&agent.ExecResult{ExitCode: 127, StartError: cove.ErrorMessage(err)}, sb.limits)}, nil
	}
	if err != nil {
		done()
		return nil, err
	}
	t := &pty{PTY: p, limits: sb.limits}
	// As an execution, the terminal's program ends with its sandbox: a
	// stop or a deletion kills it first (closing the agent's terminal is
	// the way to) and waits for its result, which says why.
	finished := sb.execStarted()
	stopOnEnd := context.AfterFunc(sb.ended, func() {
		t.ended.Store(context.Cause(sb.ended).Error())
		p.Close()
		p.Wait()
		finished()
	})
	t.done = func() {
		if stopOnEnd() {
			finished()
		}
		done()
	}
	return t, nil
}

// pty adapts the agent's terminal to cove.PTY.
type pty struct {
	*agent.PTY
	limits cove.Limits
	done   func()
	once   sync.Once
	// ended is why the terminal's sandbox went, if it was stopped or
	// deleted while the program ran; closed is set by Close.
	ended  atomic.Value // string
	closed atomic.Bool
}

func (p *pty) Read(b []byte) (int, error) {
	n, err := p.PTY.Read(b)
	// The sandbox's end closed the agent's terminal, not the caller: for
	// the caller the program's output has ended, and Wait says why.
	if errors.Is(err, os.ErrClosed) && !p.closed.Load() && p.ended.Load() != nil {
		err = io.EOF
	}
	return n, err
}

func (p *pty) Wait() (*cove.ExecResult, error) {
	r, err := p.PTY.Wait()
	if err != nil {
		return nil, err
	}
	res := resultOf(r, p.limits)
	if why, ok := p.ended.Load().(string); ok && res.Verdict == cove.VerdictKilled {
		res.Message = "killed: " + why
	}
	return res, nil
}

func (p *pty) Close() error {
	p.closed.Store(true)
	err := p.PTY.Close()
	p.once.Do(p.done)
	return err
}

// unstarted is the terminal of a program that could not be started: it
// prints nothing, takes no input, and has its result at once.
type unstarted struct{ res *cove.ExecResult }

func (u *unstarted) Read([]byte) (int, error)        { return 0, io.EOF }
func (u *unstarted) Write([]byte) (int, error)       { return 0, io.ErrClosedPipe }
func (u *unstarted) Resize(int, int) error           { return nil }
func (u *unstarted) Wait() (*cove.ExecResult, error) { return u.res, nil }
func (u *unstarted) Close() error                    { return nil }
