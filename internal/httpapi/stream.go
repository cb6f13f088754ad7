package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

// The media types of streams.
const (
	mediaNDJSON = "application/x-ndjson"
	mediaSSE    = "text/event-stream"
)

// streamKind returns the streaming media type the client asks for in its
// Accept header, or "" for a plain JSON answer.
func streamKind(r *http.Request) string {
	for _, part := range strings.Split(strings.Join(r.Header.Values("Accept"), ","), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || params["q"] == "0" {
			continue
		}
		switch mt {
		case mediaNDJSON, "application/jsonl", "application/x-jsonlines":
			return mediaNDJSON
		case mediaSSE:
			return mediaSSE
		}
	}
	return ""
}

// answerExecution answers with an execution's stream: as NDJSON or SSE
// events when the client asks for a stream, else as one JSON result once
// it ends. The stream is closed in every case; a client that goes away
// cancels the request's context, and with it the execution.
func (s *server) answerExecution(w http.ResponseWriter, r *http.Request, st cove.Stream) error {
	if kind := streamKind(r); kind != "" {
		if id := cove.ExecutionID(st); id != "" {
			// For StopExecution, from another request while this one
			// streams. A JSON answer's headers come with the result,
			// when the id names nothing any more: it has none.
			w.Header().Set("Cove-Execution-Id", id)
		}
		s.writeStream(w, r, st, kind)
		return nil
	}
	res, err := cove.Collect(st)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.ResultFrom(res))
	return nil
}

// writeStream writes st's events as they come, flushing each, and ends
// with an error event if the stream fails.
func (s *server) writeStream(w http.ResponseWriter, r *http.Request, st cove.Stream, kind string) {
	writeEvents(s, w, r, st, kind, func(ev cove.Event) (string, any) { return string(ev.Type), wire.EventFrom(ev) })
}

// eventStream is what writeEvents writes: cove.Stream and cove.AIStream.
type eventStream[E any] interface {
	Next() (E, error)
	Close() error
}

// writeEvents writes a stream's events as NDJSON lines or SSE events as
// they come, flushing each, and ends with an error event if the stream
// fails. wireOf gives an event's type (the SSE event's name) and its wire
// form. The stream is closed at the end; a client that goes away cancels
// the request's context, and with it what the stream delivers.
func writeEvents[E any](s *server, w http.ResponseWriter, r *http.Request, st eventStream[E], kind string, wireOf func(E) (string, any)) {
	defer st.Close()
	h := w.Header()
	h.Set("Content-Type", kind)
	h.Set("Cache-Control", "no-store")
	// Proxies such as nginx would otherwise buffer the stream.
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	dw := s.newDeadlineWriter(w)
	defer dw.reset()
	dw.rc.Flush()
	ew := &eventWriter{w: dw, rc: dw.rc, sse: kind == mediaSSE}
	for {
		ev, err := st.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			if r.Context().Err() != nil {
				return // the client went away; nobody reads an error
			}
			if ew.write(wire.EventError, &wire.Event{Type: wire.EventError, Error: s.errorDetail(r, err)}) != nil {
				panic(http.ErrAbortHandler)
			}
			return
		}
		if ew.write(wireOf(ev)) != nil {
			// The client is gone or stalled: drop the connection rather
			// than block on the rest of the answer.
			panic(http.ErrAbortHandler)
		}
	}
}

// eventWriter writes events as NDJSON lines or SSE events, flushing each.
type eventWriter struct {
	w   io.Writer
	rc  *http.ResponseController
	sse bool
	buf bytes.Buffer
}

// write writes one event, named typ for SSE.
func (e *eventWriter) write(typ string, v any) error {
	e.buf.Reset()
	if e.sse {
		e.buf.WriteString("event: " + typ + "\ndata: ")
	}
	enc := json.NewEncoder(&e.buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	if e.sse {
		e.buf.WriteByte('\n')
	}
	if _, err := e.w.Write(e.buf.Bytes()); err != nil {
		return err
	}
	return e.rc.Flush()
}
