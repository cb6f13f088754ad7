package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/agent"
	"github.com/cove-sandbox/cove/internal/lang"
)

// liveContext is a stateful interpreter in a running sandbox. Contexts
// live as long as their sandbox runs: stopping it ends them.
type liveContext struct {
	id       string
	language string // python, javascript or typescript
	driver   string // the kernels driver: python or javascript
	cwd      string
	env      map[string]string
	created  time.Time

	// cell is the running cell's hold on the context (nil: none). A
	// restart lets the hold of the cell it killed go, so that the context
	// takes the next cell before that one's caller has read its result.
	cell atomic.Pointer[cellHold]
	// interruptedAt is when the last cell that was interrupted let the
	// context go (Unix nanoseconds): the agent may still be ending it.
	interruptedAt atomic.Int64

	mu       sync.Mutex
	cells    int // cells run in it, for their names ("<cell 3>")
	runs     int // cells since the interpreter (re)started
	restarts int
}

// cellHold is a cell's hold on its context, while it runs.
type cellHold struct {
	// ctx is the cell's caller's context: its end ends the cell.
	ctx context.Context
	// stopping says that the cell is being interrupted (its caller
	// closed or interrupted it, or the context is restarting), so that
	// it ends soon.
	stopping atomic.Bool
}

func (c *liveContext) info(sandboxID string) *cove.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &cove.Context{
		ID: c.id, SandboxID: sandboxID, Language: c.language, Cwd: c.cwd, Env: c.env,
		CreatedAt: c.created, Runs: c.runs, Restarts: c.restarts, Busy: c.cell.Load() != nil,
	}
}

// CreateContext implements cove.Service.
func (s *Service) CreateContext(ctx context.Context, id string, spec cove.ContextSpec) (*cove.Context, error) {
	if spec.Language == "" {
		return nil, cove.Errorf(cove.CodeInvalid, "no language given: contexts run python, javascript or typescript")
	}
	l, err := lang.Lookup(spec.Language)
	if err != nil {
		return nil, cove.Errorf(cove.CodeInvalid, "unknown language %q: contexts run python (py), javascript (js, node) or typescript (ts)", spec.Language)
	}
	driver, ok := l.ContextDriver()
	if !ok {
		return nil, cove.Errorf(cove.CodeInvalid, "contexts run python, javascript or typescript, not %s: run %s code with exec or code instead", l.Name, l.Name)
	}
	cwd := workDir(spec.Cwd)
	if err := validateEnv(spec.Env); err != nil {
		return nil, err
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	c := &liveContext{id: "ctx-" + newID(), language: l.Name, driver: driver, cwd: path.Clean(cwd), env: spec.Env, created: time.Now().UTC()}
	err = sb.inst.Agent().StartContext(ctx, &agent.ContextSpec{
		ID: c.id, Language: driver, Dir: c.cwd, Env: buildEnv(sb.baseEnv(), sb.env, spec.Env),
	})
	if err != nil {
		return nil, err
	}
	sb.ctxMu.Lock()
	if sb.contexts == nil {
		sb.contexts = map[string]*liveContext{}
	}
	sb.contexts[c.id] = c
	sb.ctxMu.Unlock()
	s.log.Debug("context created", "sandbox", id, "context", c.id, "language", c.language)
	return c.info(id), nil
}

// findContext returns a running sandbox's context, with done as from running.
func (s *Service) findContext(ctx context.Context, id, contextID string) (*sandbox, *liveContext, func(), error) {
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, nil, nil, s.contextsEnded(ctx, id, err)
	}
	sb.ctxMu.Lock()
	c := sb.contexts[contextID]
	sb.ctxMu.Unlock()
	if c == nil {
		done()
		s.mu.Lock()
		note := s.stops[id]
		s.mu.Unlock()
		if note != nil && note.contexts[contextID] {
			return nil, nil, nil, cove.Errorf(cove.CodeNotFound, "context %s ended when sandbox %s stopped (%s), with its state: create a new one", contextID, id, note.why)
		}
		return nil, nil, nil, cove.Errorf(cove.CodeNotFound, "no context %q in sandbox %s", contextID, id)
	}
	return sb, c, done, nil
}

// contextsEnded turns running's refusal of a stopped sandbox (err) into
// one for a call to a context: a context lives as long as its sandbox
// runs, so starting the sandbox again does not bring it back.
func (s *Service) contextsEnded(ctx context.Context, id string, err error) error {
	if cove.ErrorCode(err) != cove.CodeConflict {
		return err
	}
	r, rerr := s.record(ctx, id)
	if rerr != nil || r.State != cove.StateStopped {
		return err
	}
	s.mu.Lock()
	stopped := s.live[id] == nil && s.transit[id] == nil
	s.mu.Unlock()
	if !stopped {
		return err
	}
	why := ""
	if w := s.stoppedWhy(id, r); w != "" {
		why = " (" + w + ")"
	}
	return cove.Errorf(cove.CodeConflict, "sandbox %s is stopped%s, and its contexts ended when it stopped: start it and create a new context", id, why)
}

// ListContexts implements cove.Service. A sandbox that does not run has
// no contexts.
func (s *Service) ListContexts(ctx context.Context, id string) ([]*cove.Context, error) {
	if _, err := s.record(ctx, id); err != nil {
		return nil, err
	}
	s.mu.Lock()
	sb := s.live[id]
	s.mu.Unlock()
	out := []*cove.Context{}
	if sb == nil {
		return out, nil
	}
	sb.ctxMu.Lock()
	for _, c := range sb.contexts {
		out = append(out, c.info(id))
	}
	sb.ctxMu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// GetContext implements cove.Service.
func (s *Service) GetContext(ctx context.Context, id, contextID string) (*cove.Context, error) {
	_, c, done, err := s.findContext(ctx, id, contextID)
	if err != nil {
		return nil, err
	}
	defer done()
	return c.info(id), nil
}

// RestartContext implements cove.Service.
func (s *Service) RestartContext(ctx context.Context, id, contextID string) (*cove.Context, error) {
	sb, c, done, err := s.findContext(ctx, id, contextID)
	if err != nil {
		return nil, err
	}
	defer done()
	// A cell sent during the restart waits for it (see acquire) rather
	// than being refused as the killed cell ends.
	killed := c.cell.Load()
	if killed != nil {
		killed.stopping.Store(true)
	}
	if err := sb.inst.Agent().RestartContext(ctx, contextID); err != nil {
		return nil, err
	}
	// The agent has let the killed cell go: so does the context, whose
	// fresh interpreter is ready. Its stream ends with a result that
	// says a restart was asked for.
	if killed != nil && c.cell.CompareAndSwap(killed, nil) {
		c.interruptedAt.Store(time.Now().UnixNano())
	}
	c.mu.Lock()
	c.runs = 0
	// A restarted interpreter numbers its cells from 1 again, as a
	// notebook does.
	c.cells = 0
	c.restarts++
	c.mu.Unlock()
	return c.info(id), nil
}

// DeleteContext implements cove.Service.
func (s *Service) DeleteContext(ctx context.Context, id, contextID string) error {
	sb, _, done, err := s.findContext(ctx, id, contextID)
	if err != nil {
		return err
	}
	defer done()
	err = sb.inst.Agent().StopContext(ctx, contextID)
	if err != nil && cove.ErrorCode(err) != cove.CodeNotFound {
		return err
	}
	sb.ctxMu.Lock()
	delete(sb.contexts, contextID)
	sb.ctxMu.Unlock()
	return nil
}

// InterruptContext implements cove.Service.
func (s *Service) InterruptContext(ctx context.Context, id, contextID string) error {
	sb, c, done, err := s.findContext(ctx, id, contextID)
	if err != nil {
		return err
	}
	defer done()
	if err := sb.inst.Agent().InterruptContext(ctx, contextID); err != nil {
		return err
	}
	if h := c.cell.Load(); h != nil {
		h.stopping.Store(true)
	}
	return nil
}

// RunCell implements cove.Service.
func (s *Service) RunCell(ctx context.Context, id, contextID string, req cove.CellRequest) (cove.Stream, error) {
	if err := cove.CheckTimeout(req.Timeout); err != nil {
		return nil, err
	}
	sb, c, done, err := s.findContext(ctx, id, contextID)
	if err != nil {
		return nil, err
	}
	hold, ok := c.acquire(ctx)
	if !ok {
		done()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, cove.Errorf(cove.CodeConflict, "a cell is already running in context %s: wait for it to end, or interrupt it", contextID)
	}
	finish := func() {
		if hold.interrupted() {
			c.interruptedAt.Store(time.Now().UnixNano())
		}
		c.cell.CompareAndSwap(hold, nil)
		done()
	}
	limits := sb.limits
	if req.Timeout > 0 {
		limits.Timeout = req.Timeout
	}
	c.mu.Lock()
	c.cells++
	n := c.cells
	c.mu.Unlock()

	cell := &agent.CellSpec{Code: req.Code, Filename: fmt.Sprintf("<cell %d>", n), TimeoutMS: limits.Timeout.Milliseconds(), OutputLimit: limits.OutputBytes}
	if c.language == "typescript" {
		cell.Filename = fmt.Sprintf("cell%d.ts", n)
		code, sm, err := lang.TranspileCell(cell.Filename, req.Code)
		var se *lang.CellSyntaxError
		if errors.As(err, &se) {
			// A cell that does not parse is the cell's error, as in Python.
			finish()
			return syntaxErrorStream(se, limits), nil
		}
		if err != nil {
			finish()
			return nil, err
		}
		cell.Code, cell.SourceMap = code, sm
	}

	release, err := s.beginExec(ctx)
	if err != nil {
		finish()
		return nil, err
	}
	run, err := sb.inst.Agent().RunCell(ctx, contextID, cell)
	// A cell interrupted a moment ago has let the context go here before
	// the agent has ended it: the agent refuses the next for as long.
	deadline := time.Unix(0, c.interruptedAt.Load()).Add(interruptedCellWait)
	for cove.ErrorCode(err) == cove.CodeConflict && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Millisecond):
			run, err = sb.inst.Agent().RunCell(ctx, contextID, cell)
			continue
		}
		break
	}
	if err != nil {
		release()
		finish()
		return nil, err
	}
	st := &cellStream{cell: run, ctx: ctx, c: c, hold: hold, limits: limits, started: time.Now(), exec: s.metrics.startExec(), sandboxEnded: sb.ended, serviceEnded: s.ctx}
	// Cancelling the caller's context interrupts the cell, as closing
	// the stream does.
	stopOnCancel := context.AfterFunc(ctx, func() {
		hold.stopping.Store(true)
		run.Close()
	})
	st.onClose = []func(){func() { stopOnCancel() }, st.exec.close, release, finish}
	return st, nil
}

// interruptedCellWait bounds how long a cell waits for the one before it
// to end once that one is being interrupted: closing a cell takes the
// interpreter a moment, and a caller that cancelled a cell and sends the
// next at once should not be refused for it.
const interruptedCellWait = 2 * time.Second

// busyCellGrace is how long a cell waits for one that is running, and
// not being interrupted, before it is refused: a caller that cancelled a
// cell and sends the next at once may be ahead of the news of its
// cancellation (a closed connection takes the server a moment to see).
const busyCellGrace = 300 * time.Millisecond

// acquire makes the context busy with a new cell of ctx and returns its
// hold. A cell already running refuses it after busyCellGrace, unless it
// is being interrupted (or restarted): then acquire waits for it to let
// the context go, for interruptedCellWait at most.
func (c *liveContext) acquire(ctx context.Context) (*cellHold, bool) {
	h := &cellHold{ctx: ctx}
	if c.cell.CompareAndSwap(nil, h) {
		return h, true
	}
	grace := time.NewTimer(busyCellGrace)
	defer grace.Stop()
	var deadline <-chan time.Time // once the running cell is being interrupted
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		if c.cell.CompareAndSwap(nil, h) {
			return h, true
		}
		if running := c.cell.Load(); deadline == nil && running != nil && running.interrupted() {
			t := time.NewTimer(interruptedCellWait)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case <-ctx.Done():
			return nil, false
		case <-grace.C:
			if deadline == nil {
				if c.cell.CompareAndSwap(nil, h) {
					return h, true
				}
				return nil, false
			}
		case <-deadline:
			return h, c.cell.CompareAndSwap(nil, h)
		case <-tick.C:
		}
	}
}

// interrupted reports whether the cell is being interrupted.
func (h *cellHold) interrupted() bool {
	return h.stopping.Load() || h.ctx.Err() != nil
}

// cellStream adapts a running cell to cove.Stream.
type cellStream struct {
	cell    *agent.Cell
	ctx     context.Context
	c       *liveContext
	hold    *cellHold
	limits  cove.Limits
	started time.Time
	// exec is the cell in the metrics.
	exec    *execution
	onClose []func()
	once    sync.Once
	closing atomic.Bool
	// sandboxEnded and serviceEnded end when the cell's sandbox is
	// stopped or deleted, and when cove shuts down: the interpreter goes
	// with the sandbox, and the cell ends with a result that says why
	// rather than with an error about its agent being gone.
	sandboxEnded, serviceEnded context.Context
	// endedResult is set once Next has given that result.
	endedResult bool
}

func (st *cellStream) Next() (cove.Event, error) {
	ev, err := st.cell.Next()
	if err != nil {
		if st.ctx.Err() != nil && !errors.Is(err, io.EOF) {
			return cove.Event{}, st.ctx.Err()
		}
		if why := st.why(); why != "" && !st.endedResult && !errors.Is(err, io.EOF) {
			st.endedResult = true
			res := measured(false, false, int64(time.Since(st.started)), 0, 0, 0, st.limits)
			res.Verdict, res.Message = cove.VerdictKilled, "killed: "+why
			st.exec.result(res.Verdict)
			return cove.Event{Type: cove.EventExit, Result: res}, nil
		}
		if st.endedResult {
			return cove.Event{}, io.EOF
		}
		return cove.Event{}, err
	}
	switch ev.Type {
	case "stdout":
		return cove.Event{Type: cove.EventStdout, Data: ev.Data}, nil
	case "stderr":
		return cove.Event{Type: cove.EventStderr, Data: ev.Data}, nil
	case "result":
		return cove.Event{Type: cove.EventResult, Bundle: ev.Bundle}, nil
	case "display":
		return cove.Event{Type: cove.EventDisplay, Bundle: ev.Bundle}, nil
	case "exception":
		return cove.Event{Type: cove.EventException, Exception: ev.Exception}, nil
	case "done":
		if ev.Result == nil {
			return cove.Event{}, cove.Errorf(cove.CodeInternal, "a cell ended without a result")
		}
		r := ev.Result
		res := cellResultOf(r, st.limits)
		st.c.mu.Lock()
		if r.EndedIdle != "" {
			// The interpreter that ended while idle was replaced.
			st.c.runs = 0
			st.c.restarts++
		}
		switch {
		case r.RestartRequested:
			// RestartContext has counted the restart.
		case r.Status == "died" && r.Restarted:
			st.c.runs = 0
			st.c.restarts++
		default:
			st.c.runs++
		}
		st.c.mu.Unlock()
		st.exec.result(res.Verdict)
		return cove.Event{Type: cove.EventExit, Result: res}, nil
	}
	return cove.Event{}, cove.Errorf(cove.CodeInternal, "a cell sent an event of unknown type %q", ev.Type)
}

// why says why the cell's sandbox went, if it did.
func (st *cellStream) why() string {
	switch {
	case st.serviceEnded.Err() != nil:
		return "cove is shutting down"
	case st.sandboxEnded.Err() != nil:
		return context.Cause(st.sandboxEnded).Error()
	}
	return ""
}

func (st *cellStream) Close() error {
	if st.closing.CompareAndSwap(false, true) {
		// Until it is released, the context is busy with a cell that
		// ends soon (see acquire).
		st.hold.stopping.Store(true)
	}
	err := st.cell.Close()
	st.once.Do(func() {
		for _, f := range st.onClose {
			f()
		}
	})
	return err
}

// restartedNote ends the message of a cell after which the context had to
// start a fresh interpreter.
const restartedNote = "; the context was restarted and its state is lost"

// cellResultOf turns the agent's facts about a cell into a verdict and a
// one-line explanation.
func cellResultOf(r *agent.CellResult, limits cove.Limits) *cove.ExecResult {
	res := measured(r.StdoutTruncated, r.StderrTruncated, r.WallNS, r.CPUNS, r.PeakMemory, r.Signal, limits)
	switch {
	case r.OutputLimited:
		res.Verdict = cove.VerdictOutputLimit
		res.Message = "output truncated at " + cove.FormatBytes(limits.OutputBytes) + "; the cell was interrupted"
	case r.TimedOut:
		res.Verdict = cove.VerdictTimeout
		res.Message = "interrupted: wall-clock timeout after " + limits.Timeout.String()
	case r.OOMKilled:
		res.Verdict = cove.VerdictOOMKilled
		res.Message = fmt.Sprintf("killed: out of memory (limit %s)", cove.FormatBytes(limits.MemoryBytes))
	case r.Status == "died":
		res.ExitCode = r.ExitCode
		if r.RestartRequested {
			res.Verdict = cove.VerdictKilled
			res.Message = "killed: a restart of the context was asked for, and the cell's state is lost with its interpreter"
		} else if r.Signal > 0 {
			res.Verdict = cove.VerdictKilled
			res.Message = "the interpreter was killed by " + res.Signal
		} else {
			res.Verdict = cove.VerdictExitNonzero
			res.Message = fmt.Sprintf("the interpreter exited with status %d", r.ExitCode)
		}
	case r.Status == "interrupted":
		res.Verdict = cove.VerdictKilled
		res.Message = "interrupted"
	case r.Status == "error":
		res.Verdict = cove.VerdictError
		res.ExitCode = 1
	default:
		res.Verdict = cove.VerdictOK
	}
	if res.Verdict != cove.VerdictOK && res.Verdict != cove.VerdictError && res.ExitCode == 0 {
		res.ExitCode = 1
	}
	if r.Restarted && r.Status == "died" && !r.RestartRequested {
		res.Message += restartedNote
	}
	// A cell that began in a fresh interpreter, the last one having
	// ended while idle, says so whatever its verdict: its state is gone.
	if r.EndedIdle != "" {
		note := agent.EndedIdleNote(r.EndedIdle)
		if res.Message != "" {
			note = res.Message + "; " + note
		}
		res.Message = note
	}
	return res
}

// syntaxErrorStream is the stream of a TypeScript cell that does not
// parse: its exception, then an error exit.
func syntaxErrorStream(se *lang.CellSyntaxError, limits cove.Limits) cove.Stream {
	return &eventList{events: []cove.Event{
		{Type: cove.EventException, Exception: &cove.CellError{Name: "SyntaxError", Message: se.Text, Traceback: []string{se.Message}, Line: se.Line}},
		{Type: cove.EventExit, Result: &cove.ExecResult{Verdict: cove.VerdictError, ExitCode: 1, Limits: limits}},
	}}
}

// compileErrorStream is the result of a program that did not compile:
// the compiler's report on stderr, and exit status 1, as node gives for a
// JavaScript syntax error.
func compileErrorStream(ce *lang.CompileError, limits cove.Limits) cove.Stream {
	report := []byte(ce.Message + "\n")
	res := &cove.ExecResult{Verdict: cove.VerdictExitNonzero, ExitCode: 1, Limits: limits}
	if n := limits.OutputBytes; n > 0 && int64(len(report)) > n {
		report, res.StderrTruncated = report[:n], true
	}
	return &eventList{events: []cove.Event{
		{Type: cove.EventStderr, Data: report},
		{Type: cove.EventExit, Result: res},
	}}
}

// eventList is a stream of events known in advance.
type eventList struct {
	events []cove.Event
}

func (l *eventList) Next() (cove.Event, error) {
	if len(l.events) == 0 {
		return cove.Event{}, io.EOF
	}
	ev := l.events[0]
	l.events = l.events[1:]
	return ev, nil
}

func (l *eventList) Close() error { return nil }
