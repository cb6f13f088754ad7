package cove

import (
	"errors"
	"io"
)

// Collect drains a stream into one ExecResult with Stdout and Stderr filled
// in, and closes the stream.
func Collect(s Stream) (*ExecResult, error) {
	defer s.Close()
	var out, errb []byte
	for {
		ev, err := s.Next()
		if errors.Is(err, io.EOF) {
			return nil, Errorf(CodeInternal, "stream ended without a result")
		}
		if err != nil {
			return nil, err
		}
		switch ev.Type {
		case EventStdout:
			out = append(out, ev.Data...)
		case EventStderr:
			errb = append(errb, ev.Data...)
		case EventExit:
			r := *ev.Result
			r.Stdout, r.Stderr = string(out), string(errb)
			return &r, nil
		}
	}
}
