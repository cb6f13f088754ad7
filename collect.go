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

// CellRun is a context cell's whole outcome: its result (Stdout and Stderr
// filled in) and its outputs in order.
type CellRun struct {
	*ExecResult
	// Outputs are the cell's events but the exit: output chunks, results,
	// display data and the exception, in the order they came.
	Outputs []Event `json:"outputs"`
}

// CollectCell drains a cell's stream into a CellRun and closes the stream.
func CollectCell(s Stream) (*CellRun, error) {
	defer s.Close()
	run := &CellRun{}
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
		case EventExit:
			r := *ev.Result
			r.Stdout, r.Stderr = string(out), string(errb)
			run.ExecResult = &r
			return run, nil
		case EventStdout:
			out = append(out, ev.Data...)
		case EventStderr:
			errb = append(errb, ev.Data...)
		}
		run.Outputs = append(run.Outputs, ev)
	}
}
