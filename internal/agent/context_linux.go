package agent

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/agent/kernels"
)

// Bounds and delays of stateful code contexts.
const (
	// maxContexts bounds the contexts of a sandbox.
	maxContexts = 32
	// maxContextID bounds a context's id.
	maxContextID = 128
	// contextStartWait bounds how long an interpreter may take to be
	// ready for cells.
	contextStartWait = 60 * time.Second
	// interruptGrace is how long a cell that the agent interrupted (it
	// timed out, passed its output limit, or the host gave up on it) has
	// to end before its interpreter is killed and replaced.
	interruptGrace = time.Second
	// idleOutputKeep bounds the output an interpreter writes between
	// cells (a thread that prints, a background child): the first
	// idleOutputKeep bytes are kept and sent at the start of the next
	// cell, the rest is dropped.
	idleOutputKeep = 64 << 10
	// maxDriverMessage bounds one message of a driver: a longer one (a
	// huge image) is dropped with a note on the cell's stderr.
	maxDriverMessage = maxFrame - 64<<10
	// startOutputKeep bounds what an interpreter that failed to start
	// printed, quoted in the error.
	startOutputKeep = 4 << 10
	// stopWait bounds how long stopping a context waits for its
	// interpreter to be gone.
	stopWait = 5 * time.Second
	// clockTick is the unit of /proc/<pid>/stat's CPU times (USER_HZ).
	clockTick = 10 * time.Millisecond
	// ackDelay is how long the acknowledgement of a cell may wait to
	// travel with its first event: a quick cell's whole answer then
	// leaves in one write, which halves the wake-ups of a round trip.
	ackDelay = 500 * time.Microsecond
)

// ackFrame is the frameAck that starts a cell's events.
var ackFrame = []byte{frameAck, 0, 0, 0, 2, '{', '}'}

// contextTable is the sandbox's contexts by id. Its zero value is ready.
type contextTable struct {
	mu sync.Mutex
	m  map[string]*kcontext
	// live counts the interpreters that run.
	live atomic.Int64
}

func (t *contextTable) get(id string) *kcontext {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[id]
}

func noContext(id string) error {
	return cove.Errorf(cove.CodeNotFound, "no context %q in this sandbox", id)
}

// kcontext is one context: its spec and its current interpreter.
type kcontext struct {
	s    *server
	spec ContextSpec
	argv []string
	// source is the driver, which its interpreter reads on stdin.
	source string

	// life serialises the interpreter's starts, restarts and stop and the
	// start and end of cells. Starting an interpreter holds it.
	life    sync.Mutex
	cur     *interp  // nil when the last start failed
	cell    *cellRun // the running cell
	stopped bool
	// peakMark is the server's peakMark when the context last reset the
	// sandbox's peak memory, after a cell of peakInterp.
	peakMark   int64
	peakInterp *interp
}

// interp is one run of a context's interpreter (its driver process).
type interp struct {
	k    *kcontext
	proc *pipedProc
	req  *os.File // the driver's fd 3: requests
	msgs *os.File // the driver's fd 4: messages

	ready     chan struct{} // closed when the driver said it is ready
	readyOnce sync.Once
	ended     chan struct{} // closed once it has exited and its pipes are drained
	exit      exitInfo      // how it ended, once ended is closed
	// cpu is its CPU time when the previous cell ended (or at start).
	cpu time.Duration
	// oomBase is the sandbox's count of OOM kills when it started;
	// oomSeen, when a cell last began on it (see awaitOOMVictim).
	oomBase, oomSeen int64
	// killed says the agent killed it; restartAsked, that it did so
	// for a restart of the context that the host asked for.
	killed       atomic.Bool
	restartAsked atomic.Bool

	// Its output goes to the running cell, or is kept for the next one.
	mu       sync.Mutex
	cell     *cellRun
	idle     []idleChunk
	idleSize int
	// delivering is held while a pump hands output on, so that a cell
	// that ends can wait for output already read.
	delivering [2]sync.Mutex
}

// idleChunk is output written between cells: stream 0 is stdout, 1 stderr.
type idleChunk struct {
	stream int
	data   []byte
}

// driverMessage is any message of a driver (kernels.go).
type driverMessage struct {
	Type      string            `json:"type"`
	Text      string            `json:"text"`
	Bundle    map[string]string `json:"bundle"`
	Name      string            `json:"name"`
	Message   string            `json:"message"`
	Traceback []string          `json:"traceback"`
	Line      int               `json:"line"`
	Status    string            `json:"status"`
	// CPUNS, in done, is the CPU time the cell took, if the driver
	// measures it.
	CPUNS *int64 `json:"cpu_ns"`
}

// cellEnd is the driver's done message.
type cellEnd struct {
	status string
	cpu    *int64
}

// driverRequest is a request to a driver.
type driverRequest struct {
	Type      string `json:"type"`
	Code      string `json:"code"`
	Filename  string `json:"filename"`
	SourceMap string `json:"source_map,omitempty"`
}

func (s *server) handleStartContext(st io.Writer, spec *ContextSpec) {
	if err := s.startContext(spec); err != nil {
		writeCoveError(st, err)
		return
	}
	writeJSONFrame(st, frameResult, struct{}{})
}

// startContext registers a context and starts its interpreter.
func (s *server) startContext(spec *ContextSpec) error {
	if spec.ID == "" || len(spec.ID) > maxContextID || strings.ContainsFunc(spec.ID, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return cove.Errorf(cove.CodeInvalid, "context id %q: want 1 to %d printable characters", spec.ID, maxContextID)
	}
	argv, ok := kernels.Argv(spec.Language)
	if !ok {
		return cove.Errorf(cove.CodeInvalid, "no interpreter for language %q: contexts run %s", spec.Language, strings.Join(kernels.Languages, ", "))
	}
	if _, err := os.Stat(argv[0]); err != nil {
		return cove.Errorf(cove.CodeUnavailable, "the %s interpreter (%s) is not installed in this sandbox", spec.Language, argv[0])
	}
	k := &kcontext{s: s, spec: *spec, argv: argv, source: kernels.Source(spec.Language)}
	if k.spec.Dir == "" {
		k.spec.Dir = workspaceDir
	}
	if fi, err := os.Stat(k.spec.Dir); err != nil || !fi.IsDir() {
		return cove.Errorf(cove.CodeInvalid, "working directory %s does not exist in the sandbox: create it first, or leave cwd out for /workspace", k.spec.Dir)
	}
	k.life.Lock()
	defer k.life.Unlock()
	t := &s.contexts
	t.mu.Lock()
	switch {
	case t.m[spec.ID] != nil:
		t.mu.Unlock()
		return cove.Errorf(cove.CodeConflict, "context %q already exists in this sandbox", spec.ID)
	case len(t.m) >= maxContexts:
		t.mu.Unlock()
		return cove.Errorf(cove.CodeConflict, "this sandbox has %d contexts, the most it may have: stop one first", maxContexts)
	}
	if t.m == nil {
		t.m = map[string]*kcontext{}
	}
	t.m[spec.ID] = k
	t.mu.Unlock()
	in, err := k.startInterp(nil)
	if err != nil {
		k.stopped = true
		t.mu.Lock()
		delete(t.m, spec.ID)
		t.mu.Unlock()
		return err
	}
	k.cur = in
	return nil
}

// startInterp starts an interpreter and waits until it is ready; k.life
// is held. idle is output of the interpreter it replaces, kept for the
// next cell.
func (k *kcontext) startInterp(idle []idleChunk) (*interp, error) {
	s := k.s
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return nil, cove.Errorf(cove.CodeInternal, "context request pipe: %w", err)
	}
	msgR, msgW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return nil, cove.Errorf(cove.CodeInternal, "context message pipe: %w", err)
	}
	p, err := s.startPiped(k.argv[0], k.argv, k.spec.Env, k.spec.Dir, true, reqR, msgW)
	reqR.Close()
	msgW.Close()
	if err != nil {
		reqW.Close()
		msgR.Close()
		var fe *forkError
		if errors.As(err, &fe) {
			if errors.Is(fe.err, syscall.EAGAIN) {
				return nil, cove.Errorf(cove.CodeConflict, "the sandbox's process limit is reached: stop a process and try again")
			}
			return nil, cove.Errorf(cove.CodeUnavailable, "starting the %s interpreter: %s", k.spec.Language, fe.Error())
		}
		return nil, cove.Errorf(cove.CodeInternal, "starting the %s interpreter: %w", k.spec.Language, err)
	}
	// The driver comes on stdin, then its end (kernels.go); an
	// interpreter that dies first ends the write.
	go func(w *os.File) {
		_, _ = io.WriteString(w, k.source)
		w.Close()
	}(p.stdin)
	s.contexts.live.Add(1)
	in := &interp{
		k:     k,
		proc:  p,
		req:   reqW,
		msgs:  msgR,
		ready: make(chan struct{}),
		ended: make(chan struct{}),
	}
	for _, c := range idle {
		in.keepIdle(c.stream, c.data)
	}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); readBoth(p.stdout, p.stderr, in.deliver) }()
	go func() { defer readers.Done(); in.readMessages() }()
	go in.wait(&readers)

	timer := time.NewTimer(contextStartWait)
	defer timer.Stop()
	select {
	case <-in.ready:
		in.cpu, _ = procCPU(p.pid)
		_, in.oomBase, _ = s.cg.Memory()
		in.oomSeen = in.oomBase
		return in, nil
	case <-in.ended:
	case <-timer.C:
		in.kill()
		<-in.ended
		return nil, cove.Errorf(cove.CodeUnavailable, "the %s interpreter was not ready within %v", k.spec.Language, contextStartWait)
	}
	var out []byte
	in.mu.Lock()
	for _, c := range in.idle {
		out = append(out, c.data...)
	}
	in.mu.Unlock()
	if len(out) > startOutputKeep {
		out = out[len(out)-startOutputKeep:]
	}
	how := exitText(in.exit.status)
	if len(bytes.TrimSpace(out)) == 0 {
		return nil, cove.Errorf(cove.CodeUnavailable, "the %s interpreter %s at start", k.spec.Language, how)
	}
	return nil, cove.Errorf(cove.CodeUnavailable, "the %s interpreter %s at start: %s", k.spec.Language, how, bytes.TrimSpace(out))
}

// exitText says how a process ended.
func exitText(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return "was killed by signal " + strconv.Itoa(int(ws.Signal())) + " (" + ws.Signal().String() + ")"
	}
	return "exited with code " + strconv.Itoa(ws.ExitStatus())
}

// wait waits for the interpreter to exit; then what it left behind in its
// cgroup dies, its pipes drain, and ended is closed.
func (in *interp) wait(readers *sync.WaitGroup) {
	ex := <-in.proc.exit
	_ = in.proc.grp.Kill()
	readers.Wait()
	in.req.Close()
	in.exit = ex
	in.k.s.contexts.live.Add(-1)
	close(in.ended)
	_ = in.proc.grp.Remove()
}

// isEnded reports whether the interpreter has ended.
func (in *interp) isEnded() bool {
	select {
	case <-in.ended:
		return true
	default:
		return false
	}
}

// kill kills the interpreter and everything it started.
func (in *interp) kill() {
	in.killed.Store(true)
	_ = in.proc.grp.Kill()
}

// signal sends sig to the interpreter if it has not been reaped (after
// that its pid may be another process's).
func (in *interp) signal(sig syscall.Signal) {
	s := in.k.s
	s.reapMu.Lock()
	if ch, ok := s.procs[in.proc.pid]; ok && ch == in.proc.exit {
		_ = syscall.Kill(in.proc.pid, sig)
	}
	s.reapMu.Unlock()
}

// keepIdle keeps output written between cells, up to idleOutputKeep.
func (in *interp) keepIdle(stream int, b []byte) {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := min(len(b), idleOutputKeep-in.idleSize)
	if n <= 0 {
		return
	}
	in.idle = append(in.idle, idleChunk{stream: stream, data: bytes.Clone(b[:n])})
	in.idleSize += n
}

// output hands output on to the running cell, or keeps it for the next.
func (in *interp) output(stream int, b []byte) {
	in.mu.Lock()
	c := in.cell
	in.mu.Unlock()
	if c == nil || !c.output(stream, b) {
		in.keepIdle(stream, b)
	}
}

// deliver forwards what the interpreter wrote to fd 1 or 2 (stream 0 or
// 1), as readBoth reads it.
func (in *interp) deliver(stream int, b []byte) {
	in.delivering[stream].Lock()
	in.output(stream, b)
	in.delivering[stream].Unlock()
}

// settle waits, a few milliseconds at most, until the output that
// reached the interpreter's pipes before its cell ended is handed on.
func (in *interp) settle() {
	for i, f := range []*os.File{in.proc.stdout, in.proc.stderr} {
		for try := 0; try < 50 && pipeBuffered(f) > 0; try++ {
			time.Sleep(100 * time.Microsecond)
		}
		// Taking the lock waits for a delivery in progress to end.
		in.delivering[i].Lock()
		//lint:ignore SA2001 a barrier, not a critical section
		in.delivering[i].Unlock()
	}
}

// pipeBuffered returns how many bytes wait in the pipe r.
func pipeBuffered(r *os.File) int {
	rc, err := r.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ) })
	return n
}

// readMessages reads the driver's messages until it closes fd 4.
func (in *interp) readMessages() {
	defer in.msgs.Close()
	r := bufio.NewReaderSize(in.msgs, 64<<10)
	var long []byte // a message longer than r's buffer, so far
	dropping := false
	for {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			switch {
			case dropping:
			case len(long)+len(line) > maxDriverMessage:
				dropping, long = true, nil
			default:
				long = append(long, line...)
			}
			continue
		}
		switch {
		case dropping:
			dropping, line = false, nil
			in.tooLong()
		case long != nil:
			line = append(long, line...)
			long = nil
			if len(line) > maxDriverMessage {
				in.tooLong()
				line = nil
			}
		}
		if len(line) > 0 {
			in.message(line)
		}
		if err != nil {
			return
		}
	}
}

func (in *interp) tooLong() {
	in.output(1, []byte(fmt.Sprintf("cove: an output of the interpreter larger than %d MiB was dropped\n", maxDriverMessage>>20)))
}

// message acts on one message of the driver. A line that is not a
// message (user code may write to fd 4) is ignored.
func (in *interp) message(line []byte) {
	var m driverMessage
	if json.Unmarshal(line, &m) != nil {
		return
	}
	switch m.Type {
	case "ready":
		in.readyOnce.Do(func() { close(in.ready) })
	case "stdout":
		in.output(0, []byte(m.Text))
	case "stderr":
		in.output(1, []byte(m.Text))
	case "display", "result":
		if m.Bundle == nil {
			return
		}
		b, err := json.Marshal(m.Bundle)
		if err != nil {
			return
		}
		typ := frameDisplay
		if m.Type == "result" {
			typ = frameValue
		}
		in.event(typ, b)
	case "exception":
		b, err := json.Marshal(cove.CellError{Name: m.Name, Message: m.Message, Traceback: m.Traceback, Line: m.Line})
		if err != nil {
			return
		}
		in.event(frameException, b)
	case "done":
		in.mu.Lock()
		c := in.cell
		in.mu.Unlock()
		if c != nil {
			select {
			case c.done <- cellEnd{status: m.Status, cpu: m.CPUNS}:
			default:
			}
		}
	}
}

// event hands a display, result or exception on to the running cell;
// between cells it is dropped.
func (in *interp) event(typ byte, b []byte) {
	in.mu.Lock()
	c := in.cell
	in.mu.Unlock()
	if c != nil {
		c.event(typ, b)
	}
}

// cellRun is a cell that runs.
type cellRun struct {
	in    *interp
	st    io.ReadWriter
	start time.Time
	limit int64
	// timeoutMS is the cell's time limit (0: none).
	timeoutMS int64
	// alone says nothing else used the sandbox's memory when the cell
	// started: the sandbox's peak is the cell's.
	alone bool
	done  chan cellEnd

	// mu is held while writing to st (which blocks while the host does
	// not read) and guards the stream's state.
	mu        sync.Mutex
	ended     bool // no more events: the result follows
	hostGone  bool
	acked     bool        // the acknowledgement is sent
	pending   []byte      // the acknowledgement and frames behind it
	ackTimer  *time.Timer // sends it if the cell is slow
	counts    [2]int64
	truncated [2]bool

	// smu guards what interrupts the cell, which must work even while a
	// write to a host that does not read holds mu.
	smu      sync.Mutex
	finished bool // the cell has ended: nothing to interrupt
	timedOut bool
	limited  bool
	escalate *time.Timer // kills the interpreter if an interrupt is ignored
}

// output forwards a cell's output up to its limit. It returns false if
// the cell has ended, so that the output is kept for the next one.
func (c *cellRun) output(stream int, b []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return false
	}
	c.outputLocked(stream, b)
	return true
}

func (c *cellRun) outputLocked(stream int, b []byte) {
	if c.truncated[stream] {
		return
	}
	if c.limit > 0 && c.counts[stream]+int64(len(b)) > c.limit {
		b = b[:c.limit-c.counts[stream]]
		c.truncated[stream] = true
		c.interrupt(func() { c.limited = true })
	}
	c.counts[stream] += int64(len(b))
	if len(b) == 0 {
		return
	}
	typ := frameStdout
	if stream == 1 {
		typ = frameStderr
	}
	for len(b) > 0 {
		n := min(len(b), chunkSize)
		c.send(typ, b[:n])
		b = b[n:]
	}
}

// send sends one frame to the host; c.mu is held. Until the cell's
// acknowledgement has gone out (ackDelay at most), frames gather behind
// it, so that a quick cell's answer leaves in one write.
func (c *cellRun) send(typ byte, b []byte) {
	if c.hostGone {
		return
	}
	if !c.acked {
		if c.pending == nil {
			c.pending = append(make([]byte, 0, 512), ackFrame...)
		}
		c.pending = append(c.pending, typ, byte(len(b)>>24), byte(len(b)>>16), byte(len(b)>>8), byte(len(b)))
		c.pending = append(c.pending, b...)
		if len(c.pending) >= chunkSize {
			c.flush()
		}
		return
	}
	if writeFrame(c.st, typ, b) != nil {
		c.hostGone = true
	}
}

// flush sends the acknowledgement and the frames gathered behind it;
// c.mu is held.
func (c *cellRun) flush() {
	if c.acked {
		return
	}
	c.acked = true
	buf := c.pending
	c.pending = nil
	if buf == nil {
		buf = ackFrame
	}
	if !c.hostGone {
		if _, err := c.st.Write(buf); err != nil {
			c.hostGone = true
		}
	}
}

// ack sends the cell's acknowledgement if no event has carried it yet.
func (c *cellRun) ack() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flush()
}

func (c *cellRun) event(typ byte, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return
	}
	c.send(typ, b)
}

// interrupt interrupts the cell for the agent after calling mark (if
// any) with c.smu held: if the cell has not ended a second later, its
// interpreter is killed (and replaced).
func (c *cellRun) interrupt(mark func()) {
	c.smu.Lock()
	defer c.smu.Unlock()
	if mark != nil {
		mark()
	}
	if c.finished || c.escalate != nil {
		return
	}
	c.in.signal(syscall.SIGINT)
	c.interruptAgain()
	c.escalate = time.AfterFunc(interruptGrace, c.in.kill)
}

// interruptAgain repeats an interrupt while the cell has not ended. A
// driver drops a SIGINT that arrives before it has begun the cell (it
// interrupts user code only), as one may when a cell is cancelled as soon
// as it is sent; Node's vm watchdog can drop one as a cell passes from its
// synchronous part to awaiting. Without the repeats the interpreter was
// killed a second later, and the context's state lost with it.
func (c *cellRun) interruptAgain() {
	for _, after := range interruptRepeats {
		time.AfterFunc(after, func() {
			c.smu.Lock()
			defer c.smu.Unlock()
			if !c.finished {
				c.in.signal(syscall.SIGINT)
			}
		})
	}
}

// control reads the host's frames: a signal interrupts the cell; the end
// of the stream before the cell's does too (the host gave up on it).
func (c *cellRun) control() {
	for {
		typ, _, err := readFrame(c.st)
		if err != nil {
			c.interrupt(nil)
			return
		}
		if typ == frameSignal {
			c.interrupt(nil)
		}
	}
}

func (s *server) handleRunCell(st io.ReadWriter, spec *RunCellSpec) {
	k := s.contexts.get(spec.Context)
	if k == nil {
		writeCoveError(st, noContext(spec.Context))
		return
	}
	c, endedIdle, err := k.begin(st, &spec.Cell)
	if err != nil {
		writeCoveError(st, err)
		return
	}
	res := k.finish(c)
	if endedIdle != "" {
		res.Restarted, res.EndedIdle = true, endedIdle
	}
	if b, err := json.Marshal(res); err == nil {
		c.mu.Lock()
		c.send(frameResult, b)
		c.flush()
		c.mu.Unlock()
	}
	k.prepareNext()
}

// begin starts a cell: it sends the request to the driver, acknowledges
// the cell to the host and sends the output kept since the last cell. An
// interpreter that ended between cells is replaced first: then endedIdle
// says how it ended, and the cell's stderr starts with a note that says
// so, since the state of the earlier cells is lost with it.
func (k *kcontext) begin(st io.ReadWriter, spec *CellSpec) (c *cellRun, endedIdle string, err error) {
	req, err := json.Marshal(driverRequest{Type: "run", Code: spec.Code, Filename: spec.Filename, SourceMap: spec.SourceMap})
	if err != nil {
		return nil, "", cove.Errorf(cove.CodeInvalid, "encoding the cell: %w", err)
	}
	req = append(req, '\n')
	k.life.Lock()
	defer k.life.Unlock()
	switch {
	case k.stopped:
		return nil, "", noContext(k.spec.ID)
	case k.cell != nil:
		return nil, "", cove.Errorf(cove.CodeConflict, "context %q is running a cell: wait for it, or interrupt it", k.spec.ID)
	}
	in := k.cur
	if in != nil && !in.isEnded() {
		in.awaitOOMVictim()
	}
	if in == nil || in.isEnded() {
		var idle []idleChunk
		if in != nil {
			idle = in.idle
			endedIdle = in.endedText()
		}
		next, err := k.startInterp(idle)
		if err != nil {
			k.cur = nil
			return nil, "", err
		}
		k.cur, in = next, next
	}
	s := k.s
	c = &cellRun{in: in, st: st, limit: spec.OutputLimit, timeoutMS: spec.TimeoutMS, done: make(chan cellEnd, 1)}
	c.alone = s.running.Load() == 0 && s.othersIdle(1)
	c.start = time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	k.cell = c
	in.mu.Lock()
	in.cell = c
	idle := in.idle
	in.idle, in.idleSize = nil, 0
	in.mu.Unlock()
	if _, err := in.req.Write(req); err != nil {
		// The interpreter is ending: finish reports how.
		_ = err
	}
	for _, ch := range idle {
		c.outputLocked(ch.stream, ch.data)
	}
	if endedIdle != "" {
		c.outputLocked(1, []byte("cove: "+EndedIdleNote(endedIdle)+"\n"))
	}
	if !c.acked {
		c.ackTimer = time.AfterFunc(ackDelay, c.ack)
	}
	// The sandbox's peak memory was reset when the previous cell ended,
	// unless something else ran since: then it is reset now, while the
	// driver is at work.
	if c.alone && (k.peakMark != s.peakMark() || in != k.peakInterp) {
		_ = s.resetPeak()
	}
	return c, endedIdle, nil
}

// oomVictimWait is how long a cell's start waits for its interpreter to
// be found ended after an OOM kill in the sandbox.
const oomVictimWait = 200 * time.Millisecond

// awaitOOMVictim waits a moment for the interpreter to end when the
// sandbox's count of OOM kills went up since a cell last began on it: the
// kernel kills at once, but the agent hears of the exit a little later,
// and a cell begun meanwhile would run into the dead interpreter instead
// of a fresh one with the note that the state is lost. It waits once per
// kill, and only when one happened. k.life must be held.
func (in *interp) awaitOOMVictim() {
	_, oom, err := in.k.s.cg.Memory()
	if err != nil || oom <= in.oomSeen {
		return
	}
	in.oomSeen = oom
	t := time.NewTimer(oomVictimWait)
	defer t.Stop()
	select {
	case <-in.ended:
	case <-t.C:
	}
}

// endedText says how an interpreter that ended between cells ended (see
// CellResult.EndedIdle). Killed by SIGKILL, not by the agent, while the
// sandbox's count of OOM kills went up: the kernel's OOM killer, which
// picks the largest process of the sandbox, idle or not.
func (in *interp) endedText() string {
	ws := in.exit.status
	if ws.Signaled() && ws.Signal() == syscall.SIGKILL && !in.killed.Load() {
		if _, oom, err := in.k.s.cg.Memory(); err == nil && oom > in.oomBase {
			return "was killed for lack of memory (a sandbox's contexts and processes share its memory limit)"
		}
	}
	return exitText(ws)
}

// finish waits for the cell to end, replaces its interpreter if that
// ended, and returns the result.
func (k *kcontext) finish(c *cellRun) *CellResult {
	in := c.in
	s := k.s
	alone := c.alone
	go c.control()
	var timer *time.Timer
	if c.timeoutMS > 0 {
		timer = time.AfterFunc(time.Duration(c.timeoutMS)*time.Millisecond, func() {
			c.interrupt(func() { c.timedOut = true })
		})
	}
	var end cellEnd
	died := false
	select {
	case end = <-c.done:
	case <-in.ended:
		select {
		case end = <-c.done:
		default:
			died = true
		}
	}
	wall := time.Since(c.start)
	if timer != nil {
		timer.Stop()
	}
	c.smu.Lock()
	c.finished = true
	if c.escalate != nil {
		c.escalate.Stop()
	}
	res := &CellResult{Status: end.status, TimedOut: c.timedOut, WallNS: int64(wall)}
	c.smu.Unlock()
	if !died {
		in.settle()
	}
	c.mu.Lock()
	c.ended = true
	if c.ackTimer != nil {
		c.ackTimer.Stop()
	}
	res.StdoutTruncated, res.StderrTruncated = c.truncated[0], c.truncated[1]
	c.mu.Unlock()
	c.smu.Lock()
	res.OutputLimited = c.limited
	c.smu.Unlock()
	in.mu.Lock()
	in.cell = nil
	in.mu.Unlock()

	var peak, oomAfter int64
	var memErr error
	if alone || died {
		peak, oomAfter, memErr = s.cg.Memory()
	}
	if died {
		ws := in.exit.status
		res.Status = "died"
		switch {
		case ws.Exited():
			res.ExitCode = ws.ExitStatus()
		case ws.Signaled():
			res.Signal = int(ws.Signal())
			res.ExitCode = 128 + int(ws.Signal())
		}
		ru := in.exit.rusage
		res.CPUNS = int64(time.Duration(ru.Utime.Nano()+ru.Stime.Nano()) - in.cpu)
		// Killed by SIGKILL, not by the agent, while the sandbox's count
		// of OOM kills went up: the kernel's OOM killer.
		res.OOMKilled = memErr == nil && oomAfter > in.oomBase && ws.Signaled() && ws.Signal() == syscall.SIGKILL && !in.killed.Load()
		res.RestartRequested = in.restartAsked.Load()
		if !alone {
			res.PeakMemory = ru.Maxrss * 1024
		}
	} else {
		if end.cpu != nil {
			res.CPUNS = *end.cpu
			in.cpu += time.Duration(*end.cpu)
		} else if cpu, err := procCPU(in.proc.pid); err == nil {
			res.CPUNS = int64(cpu - in.cpu)
			in.cpu = cpu
		}
		if !alone {
			res.PeakMemory = procPeakRSS(in.proc.pid)
		}
	}
	if alone && memErr == nil {
		res.PeakMemory = peak
	}
	res.CPUNS = max(res.CPUNS, 0)

	k.life.Lock()
	if died && !k.stopped && k.cur == in {
		next, err := k.startInterp(in.idle)
		k.cur = next
		if err != nil {
			k.cur = nil
			c.mu.Lock()
			c.outputLocked(1, []byte("cove: the interpreter could not be started again: "+cove.ErrorMessage(err)+"\n"))
			c.mu.Unlock()
		}
	}
	if died && !k.stopped && k.cur != nil && k.cur != in {
		res.Restarted = true
	}
	// A restart may have let the cell go already (see restart), and
	// the context may run the next one.
	if k.cell == c {
		k.cell = nil
	}
	k.life.Unlock()
	return res
}

// procCPU reads the CPU time of process pid and of the children it waited
// for, from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold anything.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// Fields after the name start at the state, field 3; utime is 14.
	if len(f) < 15 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	var ticks int64
	for _, s := range f[11:15] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
		}
		ticks += v
	}
	return time.Duration(ticks) * clockTick, nil
}

// procPeakRSS reads the peak resident memory of process pid (VmHWM), 0
// when unknown.
func procPeakRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// prepareNext resets the sandbox's peak memory for the context's next
// cell once a cell has ended, off the path of the next cell, if nothing
// else runs. A cell that begins meanwhile sees a stale mark and resets
// the peak itself.
func (k *kcontext) prepareNext() {
	s := k.s
	if s.running.Load() != 0 || !s.othersIdle(1) {
		return
	}
	_ = s.resetPeak()
	mark := s.peakMark()
	k.life.Lock()
	k.peakMark, k.peakInterp = mark, k.cur
	k.life.Unlock()
}

// handleContextOp runs op on the context id.
func (s *server) handleContextOp(st io.Writer, id string, op func(*kcontext) error) {
	k := s.contexts.get(id)
	if k == nil {
		writeCoveError(st, noContext(id))
		return
	}
	if err := op(k); err != nil {
		writeCoveError(st, err)
		return
	}
	writeJSONFrame(st, frameResult, struct{}{})
}

// interrupt interrupts the running cell, if any.
func (k *kcontext) interrupt() error {
	k.life.Lock()
	defer k.life.Unlock()
	if k.stopped {
		return noContext(k.spec.ID)
	}
	if c := k.cell; c != nil {
		c.in.signal(syscall.SIGINT)
		c.interruptAgain()
	}
	return nil
}

// interruptRepeats are when an interrupt is repeated if the cell has not
// ended (see interruptAgain); those before interruptGrace come before an
// interrupt of the agent's own kills the interpreter.
var interruptRepeats = []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, 600 * time.Millisecond, time.Second}

// restart replaces the interpreter with a fresh one. A running cell ends
// with status died, Restarted and RestartRequested; the context lets it
// go at once, so that a cell sent as soon as restart returns is not
// refused while the killed one's result is on its way.
func (k *kcontext) restart() error {
	k.life.Lock()
	defer k.life.Unlock()
	if k.stopped {
		return noContext(k.spec.ID)
	}
	old := k.cur
	if old != nil {
		old.restartAsked.Store(true)
		old.kill()
		// Its output may be stuck on a host that does not read it; the
		// new interpreter need not wait for that.
		select {
		case <-old.ended:
		case <-time.After(stopWait):
		}
	}
	if c := k.cell; c != nil && c.in == old {
		k.cell = nil
	}
	next, err := k.startInterp(nil)
	k.cur = next
	if err != nil {
		k.cur = nil
		return err
	}
	return nil
}

// stop kills the interpreter and forgets the context.
func (k *kcontext) stop() error {
	k.life.Lock()
	if k.stopped {
		k.life.Unlock()
		return noContext(k.spec.ID)
	}
	k.stopped = true
	in := k.cur
	k.cur = nil
	k.life.Unlock()
	t := &k.s.contexts
	t.mu.Lock()
	if t.m[k.spec.ID] == k {
		delete(t.m, k.spec.ID)
	}
	t.mu.Unlock()
	if in != nil {
		in.kill()
		select {
		case <-in.ended:
		case <-time.After(stopWait):
		}
	}
	return nil
}
