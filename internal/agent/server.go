package agent

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
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

	// reapMu serialises fork-and-register against reaping, so the reaper
	// never reaps a child before its execution is registered.
	reapMu sync.Mutex
	procs  map[int]chan exitInfo
}

func newServer(cfg *BootConfig, cg *cgroups.Delegated) *server {
	return &server{cfg: cfg, cg: cg, forkReqs: make(chan *forkRequest), procs: map[int]chan exitInfo{}}
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
	go s.reapLoop()
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
	if err != nil || typ != frameRequest {
		return
	}
	var req Request
	if err := json.Unmarshal(payload, &req); err != nil {
		writeError(st, "invalid", "decoding request: "+err.Error())
		return
	}
	switch {
	case req.Exec != nil:
		s.handleExec(st, req.Exec)
	case len(req.WriteFiles) > 0:
		if err := writeFiles(req.WriteFiles, s.cfg.UID, s.cfg.GID); err != nil {
			writeFileError(st, err)
			return
		}
		writeJSONFrame(st, frameResult, struct{}{})
	case req.ReadFile != "":
		data, err := readFile(req.ReadFile, s.cfg.UID, s.cfg.GID)
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
	}, nil
}

func writeError(w io.Writer, code, msg string) {
	writeJSONFrame(w, frameError, wireError{Code: code, Message: msg})
}

func writeFileError(w io.Writer, err error) {
	code := "internal"
	var pe *os.PathError
	switch {
	case errors.Is(err, os.ErrNotExist):
		code = "not_found"
	case errors.As(err, &pe), errors.Is(err, errBadPath):
		code = "invalid"
	}
	writeError(w, code, err.Error())
}
