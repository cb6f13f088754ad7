package wire

import (
	"time"

	"github.com/cove-sandbox/cove"
)

// ContextList is the body of GET /v1/sandboxes/{id}/contexts.
type ContextList struct {
	Contexts []*cove.Context `json:"contexts"`
}

// CellRequest is the body of POST /v1/sandboxes/{id}/contexts/{cid}/run.
type CellRequest struct {
	// Code is required; nil tells a request without it from an empty
	// cell ("").
	Code    *string  `json:"code"`
	Timeout Duration `json:"timeout,omitzero"`
}

// CellRequestFrom returns r on the wire.
func CellRequestFrom(r cove.CellRequest) *CellRequest {
	code := r.Code
	return &CellRequest{Code: &code, Timeout: Duration(r.Timeout)}
}

// Request converts w to a cove.CellRequest. Errors: invalid (code
// missing).
func (w *CellRequest) Request() (cove.CellRequest, error) {
	if w.Code == nil {
		return cove.CellRequest{}, errCodeRequired("the cell's source")
	}
	return cove.CellRequest{Code: *w.Code, Timeout: time.Duration(w.Timeout)}, nil
}

// CellRun is the answer of a cell run that does not stream: the result's
// fields, and the cell's other events in order.
type CellRun struct {
	*Result
	Outputs []*Event `json:"outputs"`
}

// CellRunFrom returns r on the wire.
func CellRunFrom(r *cove.CellRun) *CellRun {
	w := &CellRun{Result: ResultFrom(r.ExecResult), Outputs: make([]*Event, 0, len(r.Outputs))}
	for _, ev := range r.Outputs {
		w.Outputs = append(w.Outputs, EventFrom(ev))
	}
	return w
}
