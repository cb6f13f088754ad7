package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

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

// WriteFile implements cove.Service.
func (s *Service) WriteFile(ctx context.Context, id, path string, r io.Reader, mode uint32) (*cove.FileInfo, error) {
	if err := utf8Paths(path); err != nil {
		return nil, err
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	return sb.inst.Agent().WriteStream(ctx, path, mode, r, sb.limits.DiskBytes)
}

// ReadFile implements cove.Service.
func (s *Service) ReadFile(ctx context.Context, id, path string) (io.ReadCloser, *cove.FileInfo, error) {
	return s.ReadFileRange(ctx, id, path, 0, 0)
}

// ReadFileRange implements cove.Service.
func (s *Service) ReadFileRange(ctx context.Context, id, path string, offset, length int64) (io.ReadCloser, *cove.FileInfo, error) {
	if err := utf8Paths(path); err != nil {
		return nil, nil, err
	}
	if offset < 0 || length < 0 {
		return nil, nil, cove.Errorf(cove.CodeInvalid, "a part of a file starts at a byte offset of 0 or more and has a length of 0 (to its end) or more, not %d and %d", offset, length)
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	rc, fi, err := sb.inst.Agent().ReadRange(ctx, path, offset, length)
	if err != nil {
		done()
		return nil, nil, err
	}
	return &closer{ReadCloser: rc, done: done}, fi, nil
}

// closer runs done once when its reader is closed.
type closer struct {
	io.ReadCloser
	done func()
	once sync.Once
}

func (c *closer) Close() error {
	err := c.ReadCloser.Close()
	c.once.Do(c.done)
	return err
}

// StatFile implements cove.Service.
func (s *Service) StatFile(ctx context.Context, id, path string) (*cove.FileInfo, error) {
	if err := utf8Paths(path); err != nil {
		return nil, err
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	return sb.inst.Agent().Stat(ctx, path)
}

// ListFiles implements cove.Service.
func (s *Service) ListFiles(ctx context.Context, id, path string, recursive bool) ([]*cove.FileInfo, error) {
	if err := utf8Paths(path); err != nil {
		return nil, err
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	return sb.inst.Agent().List(ctx, path, recursive)
}

// MakeDir implements cove.Service.
func (s *Service) MakeDir(ctx context.Context, id, path string) (*cove.FileInfo, error) {
	if err := utf8Paths(path); err != nil {
		return nil, err
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	return sb.inst.Agent().Mkdir(ctx, path)
}

// MoveFile implements cove.Service.
func (s *Service) MoveFile(ctx context.Context, id, from, to string) (*cove.FileInfo, error) {
	if err := utf8Paths(from, to); err != nil {
		return nil, err
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	return sb.inst.Agent().Move(ctx, from, to)
}

// DeleteFile implements cove.Service.
func (s *Service) DeleteFile(ctx context.Context, id, path string, recursive bool) error {
	if err := utf8Paths(path); err != nil {
		return err
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return err
	}
	defer done()
	return sb.inst.Agent().Remove(ctx, path, recursive)
}

// ChmodFile implements cove.Service.
func (s *Service) ChmodFile(ctx context.Context, id, path string, mode uint32) (*cove.FileInfo, error) {
	if err := utf8Paths(path); err != nil {
		return nil, err
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	return sb.inst.Agent().Chmod(ctx, path, mode)
}

// SearchFiles implements cove.Service.
func (s *Service) SearchFiles(ctx context.Context, id string, req cove.SearchRequest) (*cove.SearchResult, error) {
	if err := utf8Paths(req.Path); err != nil {
		return nil, err
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	return sb.inst.Agent().Search(ctx, req)
}

// ReplaceInFiles implements cove.Service.
func (s *Service) ReplaceInFiles(ctx context.Context, id string, req cove.ReplaceRequest) ([]*cove.ReplaceResult, error) {
	if err := utf8Paths(req.Paths...); err != nil {
		return nil, err
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	return sb.inst.Agent().Replace(ctx, req)
}

// DownloadArchive implements cove.Service.
func (s *Service) DownloadArchive(ctx context.Context, id, path, format string) (io.ReadCloser, error) {
	if err := utf8Paths(path); err != nil {
		return nil, err
	}
	if format != "tar" && format != "zip" {
		return nil, cove.Errorf(cove.CodeInvalid, "unknown archive format %q: use tar or zip", format)
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	rc, err := sb.inst.Agent().ArchiveOut(ctx, path, format)
	if err != nil {
		done()
		return nil, err
	}
	return &closer{ReadCloser: rc, done: done}, nil
}

// maxUploadFiles is how many files one archive or upload may hold.
const maxUploadFiles = 100000

// UploadArchive implements cove.Service.
func (s *Service) UploadArchive(ctx context.Context, id, path string, r io.Reader) error {
	if err := utf8Paths(path); err != nil {
		return err
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return err
	}
	defer done()
	return sb.inst.Agent().ArchiveIn(ctx, path, r, agent.ArchiveLimits{MaxBytes: sb.limits.DiskBytes, MaxFiles: maxUploadFiles})
}

// UploadFiles implements cove.Service. The files are bound by the disk
// limit in all, as an archive's are.
func (s *Service) UploadFiles(ctx context.Context, id string, next func() (*cove.FileUpload, error)) ([]*cove.FileInfo, error) {
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	return sb.inst.Agent().UploadFiles(ctx, func() (*agent.UploadFile, error) {
		f, err := next()
		if err != nil {
			return nil, err
		}
		if f == nil {
			return nil, errors.New("no file and no error from the upload's next")
		}
		if err := utf8Paths(f.Path); err != nil {
			return nil, err
		}
		body := f.Body
		if body != nil {
			body = &namedReader{r: body, path: f.Path}
		}
		return &agent.UploadFile{Path: f.Path, Mode: f.Mode, Body: body}, nil
	}, agent.ArchiveLimits{MaxBytes: sb.limits.DiskBytes, MaxFiles: maxUploadFiles})
}

// namedReader reads a file of an upload; an error reading it names the
// file, so that a failed upload of many files says which one failed.
type namedReader struct {
	r    io.Reader
	path string
}

func (n *namedReader) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("reading %s: %w", n.path, err)
	}
	return k, err
}

// utf8Paths refuses a workspace path that is not valid UTF-8. A file name
// may be any bytes, but the agent's protocol carries names as JSON text,
// which would replace the bytes it cannot hold with U+FFFD: the file
// written, read or removed would be another than the one named.
func utf8Paths(paths ...string) error {
	for _, p := range paths {
		if !utf8.ValidString(p) {
			return cove.Errorf(cove.CodeInvalid, "path %q is not valid UTF-8: cove's file operations take names in UTF-8 (run a command in the sandbox for a file whose name is other bytes)", p)
		}
	}
	return nil
}
