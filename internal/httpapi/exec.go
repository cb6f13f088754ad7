package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

// mediaExecStream is the media type of an execution request whose standard
// input streams (?stdin=stream): the JSON request on its first line, then
// the program's standard input, raw, until the end of the body.
const mediaExecStream = "application/x-cove-exec-stream"

func (s *server) exec(w http.ResponseWriter, r *http.Request) error {
	var req wire.ExecRequest
	r, stdin, done, err := s.decodeExecution(w, r, &req, &req.Stdin)
	if err != nil {
		return err
	}
	defer done()
	er, err := req.Request()
	if err != nil {
		return err
	}
	er.StdinReader = stdin
	st, err := s.svc.Exec(r.Context(), r.PathValue("id"), er)
	if err != nil {
		return err
	}
	return s.answerExecution(w, r, st)
}

// stopExecution kills a running execution that another request streams;
// that request's answer ends with the execution's result.
func (s *server) stopExecution(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.StopExecution(r.Context(), r.PathValue("eid")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) runCode(w http.ResponseWriter, r *http.Request) error {
	var req wire.CodeRequest
	r, stdin, done, err := s.decodeExecution(w, r, &req, &req.Stdin)
	if err != nil {
		return err
	}
	defer done()
	cr, err := req.Request()
	if err != nil {
		return err
	}
	cr.StdinReader = stdin
	st, err := s.svc.RunCode(r.Context(), r.PathValue("id"), cr)
	if err != nil {
		return err
	}
	return s.answerExecution(w, r, st)
}

func (s *server) run(w http.ResponseWriter, r *http.Request) error {
	var req wire.RunRequest
	r, stdin, done, err := s.decodeExecution(w, r, &req, &req.Stdin)
	if err != nil {
		return err
	}
	defer done()
	rr, err := req.Request()
	if err != nil {
		return err
	}
	rr.StdinReader = stdin
	st, err := s.svc.Run(r.Context(), rr)
	if err != nil {
		return err
	}
	return s.answerExecution(w, r, st)
}

// decodeExecution decodes the body of an execution request into v. With
// ?stdin=stream the body is the JSON request on one line followed by the
// standard input, which it returns as a reader for the program, with the
// request to use from then on (its context is cancelled when the client
// breaks off the body) and done, which the handler defers. Without, the
// body is JSON and the reader nil. inline is v's stdin field, which a
// streamed request must leave out.
func (s *server) decodeExecution(w http.ResponseWriter, r *http.Request, v any, inline **string) (*http.Request, io.Reader, func(), error) {
	mode := r.URL.Query().Get("stdin")
	switch mode {
	case "":
		return r, nil, func() {}, s.decodeJSON(w, r, v)
	case "stream":
	default:
		return r, nil, func() {}, invalid("invalid stdin=%q: use stream, or leave it out and send the standard input in the JSON request", cove.Excerpt(mode, 64))
	}
	if err := refuseEncoding(r); err != nil {
		return r, nil, func() {}, err
	}
	rc := http.NewResponseController(w)
	// Events are answered while the standard input is still coming.
	rc.EnableFullDuplex()
	// The connection ends with the answer, whatever is left of the body:
	// done breaks off its reading.
	w.Header().Set("Connection", "close")
	ctx, cancel := context.WithCancel(r.Context())
	br := bufio.NewReaderSize(r.Body, 64<<10)
	in := &streamedStdin{r: br, cancel: cancel}
	done := func() {
		cancel()
		// The client may still be sending standard input the program did
		// not read. Closing the connection on it would reset it, and the
		// reset can drop the end of the answer before the client has
		// read it: the rest of the body is read and dropped until the
		// client, having the answer, stops, for drainTimeout at most (a
		// read of the program's still waiting ends then too: the body
		// cannot be read once the handler has returned).
		rc.SetReadDeadline(time.Now().Add(drainTimeout))
		in.end()
		io.Copy(io.Discard, br)
		rc.SetReadDeadline(time.Now())
	}
	rc.SetReadDeadline(time.Now().Add(bodyReadTimeout))
	line, err := readLine(br, s.opts.MaxBodyBytes)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		err = tooLarge("the request line", s.opts.MaxBodyBytes)
	case isTimeout(err):
		err = statusError(http.StatusRequestTimeout, cove.Errorf(cove.CodeInvalid, "timed out reading the request line"))
	case err != nil:
		err = invalid("reading the request body: %v", err)
	case len(bytes.TrimSpace(line)) == 0:
		err = invalid("with stdin=stream the body starts with the JSON request on one line")
	default:
		err = decodeJSONFrom(bytes.NewReader(line), v)
	}
	if err == nil && *inline != nil {
		err = invalid("with stdin=stream the standard input follows the JSON request: leave out stdin")
	}
	if err != nil {
		done()
		return r, nil, func() {}, err
	}
	// Standard input may pause for as long as the program runs.
	rc.SetReadDeadline(time.Time{})
	return r.WithContext(ctx), in, done, nil
}

// readLine reads up to and including the next newline, or to the end of
// the body, of at most limit bytes (a MaxBytesError beyond).
func readLine(br *bufio.Reader, limit int64) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if int64(len(line)+len(chunk)) > limit {
			return nil, &http.MaxBytesError{Limit: limit}
		}
		line = append(line, chunk...)
		switch {
		case err == nil, errors.Is(err, io.EOF):
			return line, nil
		case !errors.Is(err, bufio.ErrBufferFull):
			return nil, err
		}
	}
}

// streamedStdin is the rest of a streamed request's body. The end of the
// body is the end of the program's standard input; a body broken off (the
// client went away) cancels the execution instead.
type streamedStdin struct {
	r      io.Reader
	cancel context.CancelFunc
	mu     sync.Mutex
	ended  bool
}

func (s *streamedStdin) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return 0, io.EOF
	}
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		s.cancel()
	}
	return n, err
}

// end waits for a read in progress (unblocked by a read deadline) and
// makes every later read the end of the input: the body is the handler's
// again.
func (s *streamedStdin) end() {
	s.mu.Lock()
	s.ended = true
	s.mu.Unlock()
}
