package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/agent"
	"github.com/cove-sandbox/cove/internal/lang"
	"github.com/cove-sandbox/cove/internal/store"
)

// defaultEnv is the clean environment every program starts with; nothing
// of the host's environment reaches a sandbox.
var defaultEnv = map[string]string{
	"PATH":       "/usr/local/bin:/usr/bin:/bin",
	"HOME":       "/workspace",
	"USER":       "sandbox",
	"LOGNAME":    "sandbox",
	"LANG":       "C.UTF-8",
	"TMPDIR":     "/tmp",
	"MPLBACKEND": "Agg",
	// Every python3 the sandbox starts, not only a language's program,
	// writes its standard output a line at a time (a background server's
	// first lines show in its logs as it prints them).
	"PYTHONPATH": lang.PythonSiteDir,
	// And every node writes its output whole before it exits.
	"NODE_OPTIONS": "--require " + lang.NodePreload,
}

// workDir is the directory a program starts in: /workspace, or cwd,
// which a relative path names inside /workspace, as the file operations'
// paths do (the agent would take it from its own /).
func workDir(cwd string) string {
	if cwd == "" {
		return "/workspace"
	}
	if !path.IsAbs(cwd) {
		return path.Join("/workspace", cwd)
	}
	return cwd
}

func validateEnv(env map[string]string) error {
	for k, v := range env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return cove.Errorf(cove.CodeInvalid, "invalid environment variable %q: names must be non-empty without '=' or NUL, values without NUL", k)
		}
	}
	return nil
}

func buildEnv(layers ...map[string]string) []string {
	m := map[string]string{}
	for _, l := range layers {
		for k, v := range l {
			m[k] = v
		}
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// commandLine validates a command given as argv or as a shell line, and
// its environment, and returns the argv to run.
func commandLine(cmd []string, shell string, env map[string]string) ([]string, error) {
	if len(cmd) > 0 && shell != "" {
		return nil, cove.Errorf(cove.CodeInvalid, "give either cmd or shell, not both")
	}
	argv := cmd
	if len(argv) == 0 {
		if strings.TrimSpace(shell) == "" {
			return nil, cove.Errorf(cove.CodeInvalid, "nothing to run: give a command (cmd) or a shell line (shell)")
		}
		argv = []string{"/bin/sh", "-c", shell}
	}
	return argv, validateEnv(env)
}

// Exec implements cove.Service.
func (s *Service) Exec(ctx context.Context, id string, req cove.ExecRequest) (cove.Stream, error) {
	argv, err := commandLine(req.Cmd, req.Shell, req.Env)
	if err != nil {
		return nil, err
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	spec := &agent.ExecSpec{Argv: argv, Dir: workDir(req.Cwd), Env: buildEnv(sb.baseEnv(), sb.env, req.Env)}
	return s.start(ctx, sb, sb.limits, spec, stdinOf(req.StdinReader, req.Stdin), req.Timeout, req.OutputBytes, done)
}

func stdinOf(r io.Reader, b []byte) io.Reader {
	if r == nil && b != nil {
		return strings.NewReader(string(b))
	}
	return r
}

// RunCode implements cove.Service.
func (s *Service) RunCode(ctx context.Context, id string, req cove.CodeRequest) (cove.Stream, error) {
	return s.runCode(ctx, id, req, nil, false)
}

func (s *Service) runCode(ctx context.Context, id string, req cove.CodeRequest, extra map[string][]byte, fresh bool) (cove.Stream, error) {
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	st, err := s.prepareCode(ctx, sb, req, extra, fresh, done)
	if err != nil {
		done()
	}
	return st, err
}

// prepareCode writes the program to the workspace and starts it. In a
// sandbox that is not fresh, it first makes sure that the program's files
// overwrite no file of the user's (see keepUserFiles).
func (s *Service) prepareCode(ctx context.Context, sb *sandbox, req cove.CodeRequest, extra map[string][]byte, fresh bool, done func()) (cove.Stream, error) {
	language := req.Language
	if language == "" {
		language = sb.language
	}
	if language == "" {
		return nil, cove.Errorf(cove.CodeInvalid, "no language given: use python (py), javascript (js), typescript (ts) or bash (sh)")
	}
	l, err := lang.Lookup(language)
	if err != nil {
		return nil, err
	}
	if err := validateEnv(req.Env); err != nil {
		return nil, err
	}
	prog, err := l.Prepare(req.Filename, req.Code, req.Argv)
	var ce *lang.CompileError
	if errors.As(err, &ce) {
		// The program failed before it could start, as a JavaScript
		// syntax error fails in node: its result, not a bad request.
		done()
		return compileErrorStream(ce, sb.limits), nil
	}
	if err != nil {
		return nil, err
	}
	for name := range prog.Files {
		if _, ok := extra[name]; ok {
			return nil, cove.Errorf(cove.CodeInvalid, "the files include %s, the name the program itself is written to: give the code another filename, or rename that file", name)
		}
	}
	if !fresh {
		if err := sb.keepUserFiles(ctx, prog.Files); err != nil {
			return nil, err
		}
	}
	files := make([]agent.File, 0, len(prog.Files)+len(extra))
	for _, name := range sortedKeys(extra) {
		files = append(files, agent.File{Path: name, Data: extra[name]})
	}
	for _, name := range sortedKeys(prog.Files) {
		files = append(files, agent.File{Path: name, Data: prog.Files[name]})
	}
	spec := &agent.ExecSpec{Argv: prog.Argv, Env: buildEnv(sb.baseEnv(), prog.Env, sb.env, req.Env), Files: files}
	st, err := s.start(ctx, sb, sb.limits, spec, stdinOf(req.StdinReader, req.Stdin), req.Timeout, 0, done)
	if err == nil && !fresh {
		if changed := sb.wroteProgram(prog.Files); changed != nil {
			// Kept with the record, so that a restart does not turn
			// cove's own program file into one it must not replace.
			if _, err := s.records.UpdateSandbox(context.WithoutCancel(ctx), sb.id, func(r *store.SandboxRecord) error {
				r.Programs = changed
				return nil
			}); err != nil {
				s.log.Warn("recording the program files of a run", "id", sb.id, "err", err)
			}
		}
	}
	return st, err
}

// keepUserFiles refuses to run code whose program files would replace a
// file of the user's: a workspace file of the same name that cove did not
// write as a program (or that was changed since) and that holds other
// content. A file cove wrote for an earlier run is replaced, as is one
// that already holds the program.
func (sb *sandbox) keepUserFiles(ctx context.Context, files map[string][]byte) error {
	for _, name := range sortedKeys(files) {
		data := files[name]
		fi, err := sb.inst.Agent().Stat(ctx, name)
		if cove.ErrorCode(err) == cove.CodeNotFound {
			continue
		}
		if err != nil {
			return err
		}
		if !fi.IsDir && fi.Symlink == "" {
			sb.progMu.Lock()
			written, known := sb.programs[name]
			sb.progMu.Unlock()
			// Only a file that could be a program is read: user code
			// makes a sparse file of the disk limit's size for free, and
			// hashing it all would keep the run, and cove, busy for
			// minutes.
			limit := max(int64(len(data)), maxHashedProgram)
			if fi.Size == int64(len(data)) || known && fi.Size <= limit {
				same, err := sb.fileHash(ctx, name, limit)
				if err != nil {
					return err
				}
				if same == hashOf(data) || known && same == written {
					continue
				}
			}
		}
		ce := cove.Errorf(cove.CodeConflict, "%s is already in the workspace, not as cove wrote it for an earlier run: running this code would overwrite it; give the code another filename, or move that file", name)
		ce.Reason = cove.ReasonFileExists
		return ce
	}
	return nil
}

// maxHashedProgram is the size up to which a program file that cove wrote
// for an earlier run is read to tell whether it is still cove's: a larger
// one is taken for the user's.
const maxHashedProgram = 16 << 20

// fileHash returns the hex SHA-256 of the workspace file name, or "" when
// it holds more than limit bytes (it may grow while it is read).
func (sb *sandbox) fileHash(ctx context.Context, name string, limit int64) (string, error) {
	rc, _, err := sb.inst.Agent().ReadStream(ctx, name)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(rc, limit+1))
	if err != nil {
		return "", err
	}
	if n > limit {
		return "", nil
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func hashOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// wroteProgram remembers the program files written for a run, and returns
// all it remembers when that changed (else nil).
func (sb *sandbox) wroteProgram(files map[string][]byte) map[string]string {
	sb.progMu.Lock()
	defer sb.progMu.Unlock()
	changed := false
	for name, data := range files {
		if h := hashOf(data); sb.programs[name] != h {
			if sb.programs == nil {
				sb.programs = map[string]string{}
			}
			sb.programs[name] = h
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return maps.Clone(sb.programs)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Run implements cove.Service: an ephemeral sandbox that lives as long as
// the returned stream, then is destroyed or, with Options.RunReuse, reset
// and kept for its owner's next run (runners.go).
func (s *Service) Run(ctx context.Context, req cove.RunRequest) (cove.Stream, error) {
	if _, err := lang.Lookup(req.Language); err != nil {
		return nil, err
	}
	for name := range req.Files {
		if p := path.Clean(name); name == "" || path.IsAbs(p) || p == ".." || strings.HasPrefix(p, "../") {
			return nil, cove.Errorf(cove.CodeInvalid, "invalid file name %q: give a path relative to the workspace", name)
		}
	}
	// The refill of the warm pool waits for this run: its sandbox may come
	// from the pool.
	release := s.hold()
	reuse := s.runners.enabled()
	info, err := s.createSandbox(ctx, cove.SandboxSpec{Language: req.Language, Limits: req.Limits}, true, reuse)
	if err != nil {
		release()
		return nil, err
	}
	s.runners.runs.Add(1)
	// The caller may have cancelled ctx; the sandbox must go (or be reset)
	// anyway. The answer is complete before the teardown is.
	destroy := func() {
		release()
		var keep func(context.Context, *sandbox) bool
		if reuse {
			keep = func(ctx context.Context, sb *sandbox) bool { return s.recycle(ctx, sb, info.Owner, info.Limits) }
		}
		s.removeLater(ctx, info.ID, keep)
	}
	st, err := s.runCode(ctx, info.ID, req.CodeRequest, req.Files, true)
	if err != nil {
		destroy()
		return nil, err
	}
	running, ok := st.(*stream)
	if !ok { // it did not compile, and nothing ran
		destroy()
		return st, nil
	}
	running.onClose = append(running.onClose, destroy)
	return st, nil
}

// start starts an execution in sb; done runs when its stream closes.
func (s *Service) start(ctx context.Context, sb *sandbox, limits cove.Limits, spec *agent.ExecSpec, stdin io.Reader, timeout time.Duration, output int64, done func()) (cove.Stream, error) {
	if err := cove.CheckTimeout(timeout); err != nil {
		done()
		return nil, err
	}
	if err := cove.CheckOutput(output); err != nil {
		done()
		return nil, err
	}
	if timeout > 0 {
		limits.Timeout = timeout
	}
	if output > 0 {
		limits.OutputBytes = output
	}
	if spec.Dir == "" {
		spec.Dir = "/workspace"
	}
	spec.TimeoutMS = limits.Timeout.Milliseconds()
	spec.OutputLimit = limits.OutputBytes
	release, err := s.beginExec(ctx)
	if err != nil {
		done()
		return nil, err
	}
	ex, err := sb.inst.Agent().Start(ctx, spec, stdin)
	if err != nil {
		release()
		done()
		return nil, err
	}
	st := &stream{ex: ex, ctx: ctx, limits: limits, exec: s.metrics.startExec()}
	// Stoppable by its id until its result arrives.
	st.id = s.addRunning(ctx, func() {
		st.stopped.Store(true)
		ex.Signal(int(unix.SIGKILL))
	})
	sandboxFinished := sb.execStarted()
	st.finished = func() {
		s.removeRunning(st.id)
		sandboxFinished()
	}
	// Executions end with the service: past the drain deadline they are
	// killed, and their result says why.
	stopOnShutdown := context.AfterFunc(s.ctx, func() {
		st.shutdown.Store(true)
		ex.Signal(int(unix.SIGKILL))
	})
	// And with their sandbox, when it is stopped or deleted.
	stopOnEnd := context.AfterFunc(sb.ended, func() {
		st.ended.Store(context.Cause(sb.ended).Error())
		ex.Signal(int(unix.SIGKILL))
	})
	st.onClose = []func(){func() { stopOnShutdown(); stopOnEnd() }, st.resultIn, st.exec.close, release, done}
	return st, nil
}

// hold counts work in progress that a pool refill should not compete
// with, until the returned function is called.
func (s *Service) hold() func() {
	s.mu.Lock()
	s.inProgress++
	s.mu.Unlock()
	var once sync.Once
	return func() { once.Do(s.idle) }
}

// idle ends one piece of work counted in s.inProgress and, when it was
// the last, wakes a waiting refill.
func (s *Service) idle() {
	s.mu.Lock()
	s.inProgress--
	none := s.inProgress == 0
	s.mu.Unlock()
	if none {
		s.pool.notifyIdle()
	}
}

// beginExec admits an execution against the caller's concurrency quota and
// counts it for draining.
func (s *Service) beginExec(ctx context.Context) (func(), error) {
	k := cove.KeyFrom(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, cove.Errorf(cove.CodeUnavailable, "cove is shutting down")
	}
	who := ""
	if k != nil {
		who = k.ID
		if q := k.Quota.MaxConcurrentExecs; q > 0 && !k.Admin && s.execs[who] >= q {
			err := cove.Errorf(cove.CodeQuotaExceeded, "quota exceeded: this key may run %d %s at once", q, plural(q, "execution", "executions"))
			err.RetryAfter = time.Second // another execution of the key ends
			return nil, err
		}
	}
	s.execs[who]++
	s.inProgress++
	s.active.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.execs[who]--
			s.mu.Unlock()
			s.active.Done()
			s.idle()
		})
	}, nil
}

// stream adapts an agent execution to cove.Stream.
type stream struct {
	ex     *agent.Exec
	ctx    context.Context
	limits cove.Limits
	// exec is the execution in the metrics.
	exec    *execution
	onClose []func()
	once    sync.Once
	// shutdown is set when the service killed the execution as it shut
	// down.
	shutdown atomic.Bool
	// ended is why the execution's sandbox went, if it was stopped or
	// deleted while the execution ran.
	ended atomic.Value // string
	// finished, if set, tells the sandbox that the execution's result
	// arrived.
	finished func()
	// id names the execution for StopExecution ("" for a process's logs);
	// stopped is set when StopExecution killed it.
	id      string
	stopped atomic.Bool
}

// ExecutionID implements what cove.ExecutionID asks of a stream.
func (st *stream) ExecutionID() string { return st.id }

// runningExec is an execution that StopExecution can stop.
type runningExec struct {
	owner string
	stop  func()
}

// addRunning records a running execution of the caller's key, stopped by
// stop, and returns its new id.
func (s *Service) addRunning(ctx context.Context, stop func()) string {
	who, _ := owner(ctx)
	var b [8]byte
	rand.Read(b[:])
	id := "x" + hex.EncodeToString(b[:])
	s.mu.Lock()
	s.stoppable[id] = &runningExec{owner: who, stop: stop}
	s.mu.Unlock()
	return id
}

func (s *Service) removeRunning(id string) {
	s.mu.Lock()
	delete(s.stoppable, id)
	s.mu.Unlock()
}

// StopExecution implements cove.Service.
func (s *Service) StopExecution(ctx context.Context, execID string) error {
	who, admin := owner(ctx)
	s.mu.Lock()
	e := s.stoppable[execID]
	s.mu.Unlock()
	if e == nil || (!admin && e.owner != who) {
		return cove.Errorf(cove.CodeNotFound, "no running execution %.40q: it has ended, or the id is wrong (it is the Cove-Execution-Id header of the execution's streamed answer, or cove.ExecutionID of its stream)", execID)
	}
	e.stop()
	return nil
}

// resultIn calls st.finished, if set.
func (st *stream) resultIn() {
	if st.finished != nil {
		st.finished()
	}
}

func (st *stream) Next() (cove.Event, error) {
	out, err := st.ex.Next()
	if err != nil {
		st.resultIn()
		if st.ctx.Err() != nil {
			return cove.Event{}, st.ctx.Err()
		}
		return cove.Event{}, err
	}
	switch {
	case out.Result != nil:
		st.resultIn()
		res := resultOf(out.Result, st.limits)
		if res.Verdict == cove.VerdictKilled {
			if st.shutdown.Load() {
				res.Message = "killed: cove is shutting down"
			} else if why, ok := st.ended.Load().(string); ok {
				res.Message = "killed: " + why
			} else if st.stopped.Load() {
				res.Message = "killed: stopped on request"
			}
		}
		st.exec.result(res.Verdict)
		return cove.Event{Type: cove.EventExit, Result: res}, nil
	case out.Stream == 2:
		return cove.Event{Type: cove.EventStderr, Data: out.Data}, nil
	default:
		return cove.Event{Type: cove.EventStdout, Data: out.Data}, nil
	}
}

func (st *stream) Close() error {
	err := st.ex.Close()
	st.once.Do(func() {
		for _, f := range st.onClose {
			f()
		}
	})
	return err
}

// measured is a result with what the agent measured of an execution or a
// cell, before its verdict.
func measured(stdoutTruncated, stderrTruncated bool, wallNS, cpuNS, peak int64, signal int, limits cove.Limits) *cove.ExecResult {
	res := &cove.ExecResult{
		StdoutTruncated: stdoutTruncated,
		StderrTruncated: stderrTruncated,
		WallMS:          wallNS / int64(time.Millisecond),
		CPUMS:           cpuNS / int64(time.Millisecond),
		PeakMemoryBytes: peak,
		Limits:          limits,
	}
	if signal > 0 {
		res.Signal = unix.SignalName(unix.Signal(signal))
	}
	return res
}

// resultOf turns the agent's raw facts into a verdict and a one-line
// explanation.
func resultOf(r *agent.ExecResult, limits cove.Limits) *cove.ExecResult {
	res := measured(r.StdoutTruncated, r.StderrTruncated, r.WallNS, r.CPUNS, r.PeakMemory, r.Signal, limits)
	res.ExitCode = r.ExitCode
	switch {
	case r.StartError != "":
		res.Verdict = cove.VerdictSetupFailed
		res.Message = r.StartError
		res.Reason = agent.ReasonOf(cove.Code(r.StartCode))
	case r.OutputLimited:
		res.Verdict = cove.VerdictOutputLimit
		res.Message = "output truncated at " + cove.FormatBytes(limits.OutputBytes)
	case r.TimedOut:
		res.Verdict = cove.VerdictTimeout
		res.Message = "killed: wall-clock timeout after " + limits.Timeout.String()
	case r.OOMKilled:
		res.Verdict = cove.VerdictOOMKilled
		res.Message = fmt.Sprintf("killed: out of memory (limit %s)", cove.FormatBytes(limits.MemoryBytes))
	case r.Canceled:
		res.Verdict = cove.VerdictKilled
		res.Message = "killed: cancelled"
	case r.Signal > 0:
		res.Verdict = cove.VerdictKilled
		res.Message = "killed by " + res.Signal
	case r.ExitCode != 0:
		res.Verdict = cove.VerdictExitNonzero
	default:
		res.Verdict = cove.VerdictOK
	}
	return res
}

// plural picks the form of a noun for n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
