package agent

import (
	"encoding/json"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/cove-sandbox/cove/internal/cgroups"
)

// server is the agent's request loop and its bookkeeping of processes.
type server struct {
	cfg *BootConfig
	cg  *cgroups.Delegated

	forkReqs chan *forkRequest
	execSeq  atomic.Int64
	running  atomic.Int64
	// peakResets counts resets of the sandbox's peak memory use.
	peakResets atomic.Int64

	// reapMu serialises fork-and-register against reaping, so the reaper
	// never reaps a child before its execution is registered.
	reapMu sync.Mutex
	procs  map[int]chan exitInfo

	// Background processes and terminals (process_linux.go, pty_linux.go).
	bg        processTable
	terminals atomic.Int64

	// Stateful code contexts (context_linux.go).
	contexts contextTable

	// execMu guards execs: the running executions by their stream's id,
	// for SignalExec.
	execMu sync.Mutex
	execs  map[uint32]*execControl

	// kept is set once the sandbox has held something that outlives a
	// request (a background process, a terminal, a context): such a
	// sandbox is not reset for reuse (reset_linux.go).
	kept atomic.Bool

	// workspace is where file operations work (workspaceDir when empty;
	// tests use a directory of their own).
	workspace string
}

func newServer(cfg *BootConfig, cg *cgroups.Delegated) *server {
	return &server{cfg: cfg, cg: cg, forkReqs: make(chan *forkRequest), procs: map[int]chan exitInfo{}, execs: map[uint32]*execControl{}}
}

func yamuxConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.EnableKeepAlive = false // a socketpair or a local stream does not go stale
	c.LogOutput = io.Discard
	c.MaxStreamWindowSize = 1 << 20
	c.StreamOpenTimeout = 30 * time.Second
	c.StreamCloseTimeout = 5 * time.Second
	return c
}

// serve answers host requests until the connection closes; then the agent
// exits, which takes the whole sandbox down with it.
func (s *server) serve(conn net.Conn) {
	s.startReaper()
	sess, err := yamux.Server(conn, yamuxConfig())
	if err != nil {
		return
	}
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			return
		}
		go s.handle(st)
	}
}

func (s *server) handle(st *yamux.Stream) {
	defer st.Close()
	typ, payload, err := readFrame(st)
	if err != nil {
		return
	}
	if typ == frameExec {
		var spec ExecSpec
		if err := unmarshalBinary(payload, &spec); err != nil {
			writeError(st, "invalid", "decoding execution: "+err.Error())
			return
		}
		s.handleExec(st, st.StreamID(), &spec)
		return
	}
	if typ != frameRequest {
		return
	}
	var req Request
	if err := json.Unmarshal(payload, &req); err != nil {
		writeError(st, "invalid", "decoding request: "+err.Error())
		return
	}
	switch {
	case len(req.WriteFiles) > 0:
		if err := s.files().writeFiles(req.WriteFiles); err != nil {
			writeFileError(st, err)
			return
		}
		writeJSONFrame(st, frameResult, struct{}{})
	case req.ReadFile != "":
		data, err := s.files().readFile(req.ReadFile)
		if err != nil {
			writeFileError(st, err)
			return
		}
		writeFrame(st, frameResult, data)
	case req.Stats:
		st2, err := s.stats()
		if err != nil {
			writeError(st, "internal", err.Error())
			return
		}
		writeJSONFrame(st, frameResult, st2)
	case req.Ping:
		writeJSONFrame(st, frameResult, struct{}{})
	case req.Reset:
		res, err := s.reset()
		if err != nil {
			writeError(st, "conflict", err.Error())
			return
		}
		writeJSONFrame(st, frameResult, res)
	case req.Spawn != nil:
		s.kept.Store(true)
		s.handleSpawn(st, req.Spawn)
	case req.ListProcesses:
		s.handleListProcesses(st)
	case req.GetProcess != 0:
		s.handleGetProcess(st, req.GetProcess)
	case req.ProcessLogs != nil:
		s.handleLogs(st, req.ProcessLogs)
	case req.ProcessStdin != nil:
		s.handleStdin(st, req.ProcessStdin)
	case req.SignalProcess != nil:
		s.handleSignal(st, req.SignalProcess)
	case req.SignalExec != nil:
		s.handleSignalExec(st, req.SignalExec)
	case req.OpenPTY != nil:
		s.kept.Store(true)
		s.handlePTY(st, req.OpenPTY)
	// Stateful code contexts.
	case req.RunCell != nil:
		s.kept.Store(true)
		s.handleRunCell(st, req.RunCell)
	case req.StartContext != nil:
		s.kept.Store(true)
		s.handleStartContext(st, req.StartContext)
	case req.InterruptContext != "":
		s.handleContextOp(st, req.InterruptContext, (*kcontext).interrupt)
	case req.RestartContext != "":
		s.handleContextOp(st, req.RestartContext, (*kcontext).restart)
	case req.StopContext != "":
		s.handleContextOp(st, req.StopContext, (*kcontext).stop)
	// File operations.
	case req.isFileOp():
		s.handleFileOp(st, &req)
	default:
		writeError(st, "invalid", "empty request")
	}
}

func (s *server) stats() (Stats, error) {
	cs, err := s.cg.Stats()
	if err != nil {
		return Stats{}, err
	}
	return Stats{
		MemoryBytes:     cs.MemoryCurrent,
		PeakMemoryBytes: cs.MemoryPeak,
		OOMKills:        cs.OOMKills,
		CPUNS:           int64(cs.CPUUsage),
		Processes:       int(cs.Pids),
		Execs:           int(s.running.Load()),

		BackgroundProcesses: int(s.bg.running.Load()),
		Contexts:            int(s.contexts.live.Load()),
	}, nil
}

func writeError(w io.Writer, code, msg string) {
	writeJSONFrame(w, frameError, wireError{Code: code, Message: msg})
}

func writeFileError(w io.Writer, err error) {
	code, msg := fileErrorCode(err)
	writeError(w, string(code), msg)
}
