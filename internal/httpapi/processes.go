package httpapi

import (
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

func (s *server) startProcess(w http.ResponseWriter, r *http.Request) error {
	var req wire.ProcessRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	p, err := s.svc.StartProcess(r.Context(), r.PathValue("id"), req.Request())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, wire.ProcessFrom(p))
	return nil
}

func (s *server) listProcesses(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.svc.ListProcesses(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	out := &wire.ProcessList{Processes: make([]*wire.Process, 0, len(ps))}
	for _, p := range ps {
		out.Processes = append(out.Processes, wire.ProcessFrom(p))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) getProcess(w http.ResponseWriter, r *http.Request) error {
	pid, err := pathPID(r)
	if err != nil {
		return err
	}
	p, err := s.svc.GetProcess(r.Context(), r.PathValue("id"), pid)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.ProcessFrom(p))
	return nil
}

func (s *server) processLogs(w http.ResponseWriter, r *http.Request) error {
	pid, err := pathPID(r)
	if err != nil {
		return err
	}
	follow, err := queryBool(r, "follow")
	if err != nil {
		return err
	}
	st, err := s.svc.ProcessLogs(r.Context(), r.PathValue("id"), pid, follow)
	if err != nil {
		return err
	}
	if kind := streamKind(r); kind != "" {
		s.writeStream(w, r, st, kind)
		return nil
	}
	defer st.Close()
	var stdout, stderr []byte
	out := &wire.ProcessLogs{}
	for {
		ev, err := st.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		switch ev.Type {
		case cove.EventStdout:
			stdout = append(stdout, ev.Data...)
		case cove.EventStderr:
			stderr = append(stderr, ev.Data...)
		case cove.EventExit:
			out.Result = wire.ResultFrom(ev.Result)
		}
	}
	out.Stdout, out.StdoutEncoding = wire.EncodeData(stdout)
	out.Stderr, out.StderrEncoding = wire.EncodeData(stderr)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Bounds of the timeout query parameter of a wait for a process.
const (
	defaultWaitTimeout = 30 * time.Second
	maxWaitTimeout     = 10 * time.Minute
)

// waitProcess waits up to ?timeout for a background process to exit and
// answers with it: exited, with its result, or, when the timeout passes
// first, as it is then (running), for the client to ask again.
func (s *server) waitProcess(w http.ResponseWriter, r *http.Request) error {
	pid, err := pathPID(r)
	if err != nil {
		return err
	}
	timeout, err := waitTimeout(r)
	if err != nil {
		return err
	}
	p, err := cove.WaitProcessFor(r.Context(), s.svc, r.PathValue("id"), pid, timeout)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.ProcessFrom(p))
	return nil
}

// waitTimeout reads the timeout query parameter: a duration or a number
// of seconds, more than 0 and at most maxWaitTimeout; defaultWaitTimeout
// without one.
func waitTimeout(r *http.Request) (time.Duration, error) {
	v := r.URL.Query().Get("timeout")
	if v == "" {
		return defaultWaitTimeout, nil
	}
	d, err := wire.ParseDuration(v)
	if err != nil || d <= 0 || d > maxWaitTimeout {
		return 0, invalid("invalid timeout=%q: use a duration such as \"30s\" or a number of seconds, more than 0 and at most 10m", cove.Excerpt(v, 64))
	}
	return d, nil
}

func (s *server) processStdin(w http.ResponseWriter, r *http.Request) error {
	pid, err := pathPID(r)
	if err != nil {
		return err
	}
	eof, err := queryBool(r, "eof")
	if err != nil {
		return err
	}
	data, err := s.readBody(w, r, s.opts.MaxBodyBytes, "standard input")
	if err != nil {
		return err
	}
	if err := s.svc.WriteProcessStdin(r.Context(), r.PathValue("id"), pid, data, eof); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) signalProcess(w http.ResponseWriter, r *http.Request) error {
	pid, err := pathPID(r)
	if err != nil {
		return err
	}
	var req wire.SignalRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := s.svc.SignalProcess(r.Context(), r.PathValue("id"), pid, req.Signal); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) killProcess(w http.ResponseWriter, r *http.Request) error {
	pid, err := pathPID(r)
	if err != nil {
		return err
	}
	if err := s.svc.SignalProcess(r.Context(), r.PathValue("id"), pid, "SIGKILL"); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// readBody reads a whole raw body of at most limit bytes.
func (s *server) readBody(w http.ResponseWriter, r *http.Request, limit int64, what string) ([]byte, error) {
	if err := refuseEncoding(r); err != nil {
		return nil, err
	}
	if r.ContentLength > limit {
		return nil, tooLarge(what, limit)
	}
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(bodyReadTimeout)) == nil {
		defer rc.SetReadDeadline(time.Time{})
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, tooLarge(what, limit)
	}
	if isTimeout(err) {
		return nil, statusError(http.StatusRequestTimeout, cove.Errorf(cove.CodeInvalid, "timed out reading the request body"))
	}
	if err != nil {
		return nil, invalid("reading the request body: %v", err)
	}
	return data, nil
}
