package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"sync"
)

// answeredStdio lets standard input end without losing answers: a client
// that writes its requests and closes its end (as `printf ... | cove mcp`
// does) still gets a response to every request it sent. The reader holds
// back the end of input until the writer has passed on as many responses
// as the reader passed on requests, or until ctx ends; only then does the
// session see the end and close.
type answeredStdio struct {
	ctx context.Context
	in  io.Reader
	out io.Writer

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced when answered grows
	asked    int           // requests read (messages with a method and an id)
	answered int           // responses written (messages with an id and no method)
	inLine   []byte        // the unfinished last line read
	outLine  []byte        // the unfinished last line written
}

func newAnsweredStdio(ctx context.Context, in io.Reader, out io.Writer) *answeredStdio {
	return &answeredStdio{ctx: ctx, in: in, out: out, changed: make(chan struct{})}
}

// Reader is the transport's input.
func (s *answeredStdio) Reader() io.ReadCloser { return stdioReader{s} }

// Writer is the transport's output; closing it leaves out open.
func (s *answeredStdio) Writer() io.WriteCloser { return stdioWriter{s} }

type stdioReader struct{ s *answeredStdio }

func (r stdioReader) Read(p []byte) (int, error) {
	s := r.s
	n, err := s.in.Read(p)
	s.mu.Lock()
	s.asked += countMessages(&s.inLine, p[:n], isRequest)
	s.mu.Unlock()
	if err != io.EOF {
		return n, err
	}
	if n > 0 {
		// The end comes with the next read, once this data is handled.
		return n, nil
	}
	for {
		s.mu.Lock()
		done, wait := s.answered >= s.asked, s.changed
		s.mu.Unlock()
		if done {
			return 0, io.EOF
		}
		select {
		case <-wait:
		case <-s.ctx.Done():
			return 0, io.EOF
		}
	}
}

func (stdioReader) Close() error { return nil }

type stdioWriter struct{ s *answeredStdio }

func (w stdioWriter) Write(p []byte) (int, error) {
	s := w.s
	n, err := s.out.Write(p)
	s.mu.Lock()
	if k := countMessages(&s.outLine, p[:n], isResponse); k > 0 {
		s.answered += k
		close(s.changed)
		s.changed = make(chan struct{})
	}
	s.mu.Unlock()
	return n, err
}

func (stdioWriter) Close() error { return nil }

// countMessages adds data to the unfinished line in *line and counts the
// complete lines that are JSON-RPC messages for which match is true (each
// element of a batch counts).
func countMessages(line *[]byte, data []byte, match func(rpcMessage) bool) int {
	count := 0
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			*line = append(*line, data...)
			break
		}
		msg := data[:i]
		if len(*line) > 0 {
			msg = append(*line, msg...)
			*line = (*line)[:0]
		}
		data = data[i+1:]
		msg = bytes.TrimSpace(msg)
		var batch []rpcMessage
		if len(msg) > 0 && msg[0] == '[' {
			json.Unmarshal(msg, &batch)
		} else {
			var m rpcMessage
			if json.Unmarshal(msg, &m) == nil {
				batch = []rpcMessage{m}
			}
		}
		for _, m := range batch {
			if match(m) {
				count++
			}
		}
	}
	return count
}

// rpcMessage is what tells JSON-RPC requests, notifications and responses
// apart.
type rpcMessage struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
}

func hasID(m rpcMessage) bool { return len(m.ID) > 0 && string(m.ID) != "null" }

func isRequest(m rpcMessage) bool { return m.Method != "" && hasID(m) }

func isResponse(m rpcMessage) bool { return m.Method == "" && hasID(m) }
