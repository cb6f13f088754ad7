package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
)

// Bounds of background processes. Their output is kept, not limited: the
// last logKeep bytes of stdout and of stderr each, in ring buffers, with
// the order in which they arrived (logSegments alternations between the
// two; beyond that the oldest kept bytes lose their exact interleaving,
// never their content). The table keeps every running process and the
// maxExited most recently exited ones; the output of exited processes is
// kept up to exitedLogBudget bytes in all, newest first, and the older
// ones keep only their result.
const (
	logKeep         = cove.ProcessOutputKept
	logSegments     = 4096
	maxExited       = 100
	exitedLogBudget = 16 << 20
	// maxLineSkip is how far into what is kept of a stream a log that
	// lost its start looks for the first whole line.
	maxLineSkip = 64 << 10
	// logReadMax is how much output a log stream copies at a time.
	logReadMax = 256 << 10
)

// processTable is the agent's table of background processes, by pid. Its
// zero value is ready to use.
type processTable struct {
	mu      sync.Mutex
	procs   map[int]*bgProcess
	exited  []*bgProcess // oldest first
	running atomic.Int64
}

// bgProcess is one background process.
type bgProcess struct {
	pid     int
	name    string
	argv    []string
	started time.Time
	exit    <-chan exitInfo
	log     outputLog

	stdinMu sync.Mutex
	stdin   *os.File // nil once closed

	mu       sync.Mutex
	timedOut bool
	result   *ExecResult   // set once it has exited
	done     chan struct{} // closed once result is set and the log is final
}

func (t *processTable) add(p *bgProcess) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.procs == nil {
		t.procs = map[int]*bgProcess{}
	}
	// A pid the kernel gave out again replaces the exited process that
	// had it.
	if old := t.procs[p.pid]; old != nil {
		t.exited = slices.DeleteFunc(t.exited, func(e *bgProcess) bool { return e == old })
	}
	t.procs[p.pid] = p
	t.running.Add(1)
}

func (t *processTable) get(pid int) *bgProcess {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.procs[pid]
}

// list returns every process, oldest first.
func (t *processTable) list() []*bgProcess {
	t.mu.Lock()
	ps := make([]*bgProcess, 0, len(t.procs))
	for _, p := range t.procs {
		ps = append(ps, p)
	}
	t.mu.Unlock()
	slices.SortFunc(ps, func(a, b *bgProcess) int {
		if c := a.started.Compare(b.started); c != 0 {
			return c
		}
		return a.pid - b.pid
	})
	return ps
}

// exit moves p to the exited processes, forgets the oldest beyond
// maxExited and drops the output of the older ones beyond exitedLogBudget.
func (t *processTable) exit(p *bgProcess) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.running.Add(-1)
	if t.procs[p.pid] != p {
		return
	}
	p.log.compact()
	t.exited = append(t.exited, p)
	for len(t.exited) > maxExited {
		old := t.exited[0]
		t.exited = t.exited[1:]
		if t.procs[old.pid] == old {
			delete(t.procs, old.pid)
		}
	}
	var kept int64
	for _, e := range slices.Backward(t.exited) {
		kept += e.log.size()
		if kept > exitedLogBudget {
			e.log.discard()
		}
	}
}

func (p *bgProcess) info() *ProcessInfo {
	p.mu.Lock()
	res := p.result
	p.mu.Unlock()
	return &ProcessInfo{PID: p.pid, Name: p.name, Argv: p.argv, Running: res == nil, StartedAt: p.started, Result: res}
}

// codedError is an error with a code and a message for the user.
func codedError(code cove.Code, msg string) error { return &cove.Error{Code: code, Message: msg} }

// spawn starts a background process as runExec starts an execution: the
// same fork thread, its own execution cgroup, the sandbox user, the given
// environment and directory.
func (s *server) spawn(spec *SpawnSpec) (*ProcessInfo, error) {
	es := &spec.Exec
	if len(spec.Name) > 256 {
		return nil, codedError(cove.CodeInvalid, "the process name is longer than 256 bytes")
	}
	if len(es.Files) > 0 {
		if err := writeFiles(es.Files, s.cfg.UID, s.cfg.GID); err != nil {
			return nil, codedError(cove.CodeInvalid, "writing program files: "+err.Error())
		}
	}
	if len(es.Argv) == 0 {
		return nil, codedError(cove.CodeInvalid, "empty command: give the program to run")
	}
	argv0, err := lookPath(es.Argv[0], es.Env, es.Dir)
	if err != nil {
		return nil, codedError(cove.CodeInvalid, err.Error())
	}
	before, _ := s.cg.Stats()
	start := time.Now()
	pp, err := s.startPiped(argv0, es.Argv, es.Env, es.Dir, true)
	if err != nil {
		var fe *forkError
		if errors.As(err, &fe) {
			if fe.dir != "" {
				return nil, codedError(cove.CodeInvalid, fe.dir)
			}
			return nil, startFailure(es.Argv[0], fe.err)
		}
		return nil, codedError(cove.CodeInternal, err.Error())
	}
	grp, pid, exit, stdinW, outR, errR := pp.grp, pp.pid, pp.exit, pp.stdin, pp.stdout, pp.stderr
	p := &bgProcess{
		pid:     pid,
		name:    spec.Name,
		argv:    slices.Clone(es.Argv),
		started: start,
		exit:    exit,
		stdin:   stdinW,
		done:    make(chan struct{}),
	}
	p.log.init()
	s.bg.add(p)

	var pumps sync.WaitGroup
	pumps.Add(1)
	go func() { defer pumps.Done(); readBoth(outR, errR, p.log.append) }()
	var timer *time.Timer
	if es.TimeoutMS > 0 {
		timer = time.AfterFunc(time.Duration(es.TimeoutMS)*time.Millisecond, func() {
			p.mu.Lock()
			p.timedOut = true
			p.mu.Unlock()
			_ = grp.Kill()
		})
	}
	go func() {
		ex := <-exit
		wall := time.Since(start)
		if timer != nil {
			timer.Stop()
		}
		// What the process left behind dies with it, as with executions;
		// then the pipes' last writers are gone and the pumps end.
		_ = grp.Kill()
		pumps.Wait()
		res := &ExecResult{}
		fillExit(res, ex, wall)
		if after, err := s.cg.Stats(); err == nil {
			res.OOMKilled = after.OOMKills > before.OOMKills && ex.status.Signaled() && ex.status.Signal() == syscall.SIGKILL
		}
		res.StdoutBytes, res.StderrBytes = p.log.totals()
		// Whether the logs lost the start of a stream.
		res.StdoutTruncated, res.StderrTruncated = res.StdoutBytes > logKeep, res.StderrBytes > logKeep
		_ = grp.Remove()
		p.stdinMu.Lock()
		if p.stdin != nil {
			p.stdin.Close()
			p.stdin = nil
		}
		p.stdinMu.Unlock()
		p.mu.Lock()
		res.TimedOut = p.timedOut
		p.result = res
		p.mu.Unlock()
		s.bg.exit(p)
		close(p.done)
	}()
	return p.info(), nil
}

// startFailure classifies why a program could not be started: what the
// user can fix is invalid, a full pids limit a conflict.
func startFailure(argv0 string, err error) error {
	switch {
	case errors.Is(err, syscall.EAGAIN):
		return codedError(cove.CodeConflict, "the sandbox's process limit is reached: stop a process and try again")
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.ENOEXEC), errors.Is(err, syscall.ENOTDIR):
		return codedError(cove.CodeInvalid, startErrorText(argv0, err))
	}
	return codedError(cove.CodeInternal, startErrorText(argv0, err))
}

func (s *server) handleSpawn(st io.Writer, spec *SpawnSpec) {
	info, err := s.spawn(spec)
	if err != nil {
		writeCoveError(st, err)
		return
	}
	writeJSONFrame(st, frameResult, info)
}

func writeCoveError(w io.Writer, err error) {
	writeError(w, string(cove.ErrorCode(err)), cove.ErrorMessage(err))
}

func (s *server) handleListProcesses(st io.Writer) {
	ps := s.bg.list()
	infos := make([]*ProcessInfo, 0, len(ps))
	for _, p := range ps {
		infos = append(infos, p.info())
	}
	writeJSONFrame(st, frameResult, infos)
}

func (s *server) handleGetProcess(st io.Writer, pid int) {
	p := s.bg.get(pid)
	if p == nil {
		writeCoveError(st, noProcess(pid))
		return
	}
	writeJSONFrame(st, frameResult, p.info())
}

// onHangup calls f if the host closes st (its caller gave up) before stop
// is called. Nothing else may read st meanwhile.
func onHangup(st io.Reader, f func()) (stop func()) {
	var mu sync.Mutex
	stopped := false
	go func() {
		for {
			if _, _, err := readFrame(st); err != nil {
				break
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			f()
		}
	}()
	return func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
	}
}

// handleLogs streams what the log of a background process holds and, with
// follow, what it prints until it exits; then its result, or, without
// follow, a running marker if it has not exited. With result only it
// sends no output: it waits for the process to exit and sends its
// description.
func (s *server) handleLogs(st io.ReadWriter, spec *LogsSpec) {
	p := s.bg.get(spec.PID)
	if p == nil {
		writeCoveError(st, noProcess(spec.PID))
		return
	}
	if writeJSONFrame(st, frameAck, struct{}{}) != nil {
		return
	}
	hangup := make(chan struct{})
	defer onHangup(st, func() { close(hangup) })()
	if spec.ResultOnly {
		select {
		case <-p.done:
			writeJSONFrame(st, frameResult, p.info())
		case <-hangup:
		}
		return
	}
	var cur logCursor
	for {
		pieces, changed := p.log.read(&cur, logReadMax)
		if len(pieces) > 0 {
			if sendPieces(st, pieces) != nil {
				return
			}
			continue
		}
		select {
		case <-p.done:
			// The log is final now; output may have come in since the
			// read above.
			if pieces, _ := p.log.read(&cur, logReadMax); len(pieces) > 0 {
				if sendPieces(st, pieces) != nil {
					return
				}
				continue
			}
			p.mu.Lock()
			res := p.result
			p.mu.Unlock()
			writeJSONFrame(st, frameResult, res)
			return
		default:
		}
		if !spec.Follow {
			writeJSONFrame(st, frameResult, resultFrame{Running: true})
			return
		}
		select {
		case <-changed:
		case <-p.done:
		case <-hangup:
			return
		}
	}
}

func sendPieces(w io.Writer, pieces []logPiece) error {
	for _, pc := range pieces {
		if err := writeChunks(w, pc.typ, pc.data); err != nil {
			return err
		}
	}
	return nil
}

// writeChunks writes b as frames of at most chunkSize bytes.
func writeChunks(w io.Writer, typ byte, b []byte) error {
	for len(b) > 0 {
		n := min(len(b), chunkSize)
		if err := writeFrame(w, typ, b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// handleStdin writes to a background process's standard input. A process
// that does not read holds the request until it does, or until the host
// gives up.
func (s *server) handleStdin(st io.ReadWriter, spec *StdinSpec) {
	p := s.bg.get(spec.PID)
	if p == nil {
		writeCoveError(st, noProcess(spec.PID))
		return
	}
	p.stdinMu.Lock()
	defer p.stdinMu.Unlock()
	select {
	case <-p.done:
		writeCoveError(st, cove.Errorf(cove.CodeConflict, "process %d has exited", spec.PID))
		return
	default:
	}
	if p.stdin == nil {
		writeCoveError(st, cove.Errorf(cove.CodeConflict, "the standard input of process %d is closed", spec.PID))
		return
	}
	if len(spec.Data) > 0 {
		f := p.stdin
		f.SetWriteDeadline(time.Time{})
		stop := onHangup(st, func() { f.SetWriteDeadline(time.Unix(1, 0)) })
		_, err := f.Write(spec.Data)
		stop()
		if err != nil {
			f.Close()
			p.stdin = nil
			if errors.Is(err, os.ErrDeadlineExceeded) {
				writeCoveError(st, cove.Errorf(cove.CodeConflict, "writing to process %d was interrupted; its standard input is now closed", spec.PID))
				return
			}
			writeCoveError(st, cove.Errorf(cove.CodeConflict, "process %d no longer reads its standard input", spec.PID))
			return
		}
	}
	if spec.EOF {
		p.stdin.Close()
		p.stdin = nil
	}
	writeJSONFrame(st, frameResult, struct{}{})
}

// handleSignal signals a background process's process group (the process
// itself if it has left it). A process that has exited is not signalled,
// whether or not it has been reaped: once reaped its pid (and so its
// process group id) may be another process's, and before that the signal
// would reach nothing of it. The answer then is a conflict that says so
// and how the process ended, never a success.
func (s *server) handleSignal(st io.Writer, spec *SignalSpec) {
	if spec.Signal < 1 || spec.Signal > 64 {
		writeCoveError(st, cove.Errorf(cove.CodeInvalid, "signal %d is out of range (1 to 64)", spec.Signal))
		return
	}
	p := s.bg.get(spec.PID)
	if p == nil {
		writeCoveError(st, noProcess(spec.PID))
		return
	}
	sig := syscall.Signal(spec.Signal)
	sent := false
	// The reaper reaps only while holding reapMu: while s.procs has the
	// process, its pid is its own, and exitedUnreaped sees whether it has
	// exited all the same.
	s.reapMu.Lock()
	if ch, ok := s.procs[p.pid]; ok && ch == p.exit && !exitedUnreaped(p.pid) {
		if err := syscall.Kill(-p.pid, sig); errors.Is(err, syscall.ESRCH) {
			_ = syscall.Kill(p.pid, sig)
		}
		sent = true
	}
	s.reapMu.Unlock()
	if !sent {
		writeCoveError(st, p.exitedError())
		return
	}
	writeJSONFrame(st, frameResult, struct{}{})
}

// exitedUnreaped reports whether the child pid has exited and waits to be
// reaped, without reaping it.
func exitedUnreaped(pid int) bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	// With WNOHANG and nothing to report, the kernel zeroes info.
	return err == nil && info.Signo == int32(unix.SIGCHLD)
}

// exitedWait bounds how long a signal for a process that has just exited
// waits for its result, to say how it ended.
const exitedWait = 5 * time.Second

// exitedError is the conflict of a signal for p, which has exited: it
// says how p ended once its result is known (at most exitedWait after
// its exit).
func (p *bgProcess) exitedError() error {
	t := time.NewTimer(exitedWait)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
	}
	p.mu.Lock()
	res := p.result
	p.mu.Unlock()
	if res == nil {
		return cove.Errorf(cove.CodeConflict, "process %d has already exited; nothing was signalled", p.pid)
	}
	return cove.Errorf(cove.CodeConflict, "process %d has already exited (%s); nothing was signalled", p.pid, exitSummary(res))
}

// exitSummary says briefly how a background process ended.
func exitSummary(res *ExecResult) string {
	switch {
	case res.TimedOut:
		return "killed at its timeout"
	case res.OOMKilled:
		return "killed: out of memory"
	case res.Signal != 0:
		if name := unix.SignalName(syscall.Signal(res.Signal)); name != "" {
			return "killed by " + name
		}
		return fmt.Sprintf("killed by signal %d", res.Signal)
	}
	return fmt.Sprintf("exit status %d", res.ExitCode)
}

// outputLog keeps the tail of a process's stdout and stderr and the order
// in which their bytes arrived. Readers follow it with a logCursor.
type outputLog struct {
	mu      sync.Mutex
	streams [2]byteRing // stdout, stderr
	// segs record arrival order: each is a run of one stream's bytes up
	// to the stream offset end. segs[i] has sequence number first+i.
	segs    []logSeg
	first   uint64
	changes chan struct{} // closed and replaced on every append
}

type logSeg struct {
	stream int
	end    int64
}

// logCursor is a reader's position in an outputLog: the sequence number
// of the segment to look at first and the bytes of each stream read so far.
type logCursor struct {
	seq uint64
	pos [2]int64
}

// logPiece is output read from a log.
type logPiece struct {
	typ  byte // frameStdout or frameStderr
	data []byte
}

func (l *outputLog) init() { l.changes = make(chan struct{}) }

func (l *outputLog) append(stream int, b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := &l.streams[stream]
	r.write(b)
	if n := len(l.segs); n > 0 && l.segs[n-1].stream == stream {
		l.segs[n-1].end = r.total
	} else {
		l.segs = append(l.segs, logSeg{stream: stream, end: r.total})
	}
	// Forget segments whose bytes are gone, and the oldest beyond the
	// bound (their bytes then read as part of the stream's next segment).
	for len(l.segs) > 0 {
		s := l.segs[0]
		if s.end > l.streams[s.stream].start() && len(l.segs) <= logSegments {
			break
		}
		l.segs = l.segs[1:]
		l.first++
	}
	close(l.changes)
	l.changes = make(chan struct{})
}

// read copies up to limit bytes of output after c, in arrival order, and
// advances c. A reader that fell more than logKeep bytes behind skips what
// was dropped.
func (l *outputLog) read(c *logCursor, limit int) ([]logPiece, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var pieces []logPiece
	i := 0
	if c.seq > l.first {
		i = int(c.seq - l.first)
	}
	budget := int64(limit)
	for ; i < len(l.segs) && budget > 0; i++ {
		s := l.segs[i]
		r := &l.streams[s.stream]
		from := c.pos[s.stream]
		if from < r.start() {
			// What this reader had not read is gone: it goes on at the
			// first line that starts in what is kept, not in the middle
			// of one, unless that line is far in (long lines).
			from = r.lineStart(r.start(), min(s.end, r.start()+maxLineSkip))
		}
		if s.end <= from {
			continue
		}
		n := min(s.end-from, budget)
		typ := frameStdout
		if s.stream == 1 {
			typ = frameStderr
		}
		pieces = append(pieces, logPiece{typ: typ, data: r.copy(from, n)})
		c.pos[s.stream] = from + n
		budget -= n
		if from+n < s.end {
			break
		}
	}
	// The last segment read may still grow; look at it again next time.
	c.seq = l.first + uint64(max(i-1, 0))
	return pieces, l.changes
}

func (l *outputLog) totals() (stdout, stderr int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.streams[0].total, l.streams[1].total
}

// size returns the bytes the log holds.
func (l *outputLog) size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(len(l.streams[0].buf) + len(l.streams[1].buf))
}

// compact releases the unused capacity of a log that is final.
func (l *outputLog) compact() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.streams {
		l.streams[i].compact()
	}
	l.segs = slices.Clip(slices.Clone(l.segs))
}

// discard drops the log's output, keeping its byte counts.
func (l *outputLog) discard() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.streams {
		l.streams[i].buf, l.streams[i].head = nil, 0
	}
	l.first += uint64(len(l.segs))
	l.segs = nil
}

// byteRing keeps the last logKeep bytes written to it. Its buffer grows
// as needed up to logKeep, then wraps.
type byteRing struct {
	buf   []byte
	head  int   // index of the oldest byte once the buffer is full
	total int64 // bytes ever written
}

// start returns the stream offset of the oldest byte kept.
func (r *byteRing) start() int64 { return r.total - int64(len(r.buf)) }

func (r *byteRing) write(b []byte) {
	r.total += int64(len(b))
	if len(b) >= logKeep {
		b = b[len(b)-logKeep:]
		if cap(r.buf) < logKeep {
			r.buf = make([]byte, logKeep)
		}
		r.buf = r.buf[:logKeep]
		copy(r.buf, b)
		r.head = 0
		return
	}
	if len(r.buf) < logKeep {
		n := min(logKeep-len(r.buf), len(b))
		if len(r.buf)+n > cap(r.buf) {
			grown := make([]byte, len(r.buf), min(max(2*cap(r.buf), len(r.buf)+n, 4096), logKeep))
			copy(grown, r.buf)
			r.buf = grown
		}
		r.buf = append(r.buf, b[:n]...)
		b = b[n:]
	}
	for len(b) > 0 {
		n := copy(r.buf[r.head:], b)
		b = b[n:]
		r.head = (r.head + n) % len(r.buf)
	}
}

// copy returns n bytes from stream offset from, which must be kept.
func (r *byteRing) copy(from, n int64) []byte {
	out := make([]byte, n)
	off := (r.head + int(from-r.start())) % max(len(r.buf), 1)
	k := copy(out, r.buf[off:])
	copy(out[k:], r.buf)
	return out
}

// lineStart returns the stream offset just after the first newline kept
// in [from, end), or from when there is none.
func (r *byteRing) lineStart(from, end int64) int64 {
	if len(r.buf) == 0 || end <= from {
		return from
	}
	off := (r.head + int(from-r.start())) % len(r.buf)
	n := int(end - from)
	first := r.buf[off:min(off+n, len(r.buf))]
	if i := bytes.IndexByte(first, '\n'); i >= 0 {
		return from + int64(i) + 1
	}
	if rest := n - len(first); rest > 0 {
		if i := bytes.IndexByte(r.buf[:rest], '\n'); i >= 0 {
			return from + int64(len(first)+i) + 1
		}
	}
	return from
}

// compact copies the kept bytes into a buffer of their exact size.
func (r *byteRing) compact() {
	if len(r.buf) == cap(r.buf) && r.head == 0 {
		return
	}
	out := make([]byte, len(r.buf))
	k := copy(out, r.buf[r.head:])
	copy(out[k:], r.buf[:r.head])
	r.buf, r.head = out, 0
}
