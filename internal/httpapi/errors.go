package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

// httpError is an error of the HTTP layer itself whose status is not the
// one cove.Codes gives its code: 413 for a body too large, 415 for an
// encoding the API does not take, 405 for a wrong method.
type httpError struct {
	status int
	err    *cove.Error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

func statusError(status int, err *cove.Error) error { return &httpError{status: status, err: err} }

// tooLarge is the 413 answer for a body over limit bytes.
func tooLarge(what string, limit int64) error {
	return statusError(http.StatusRequestEntityTooLarge, cove.Errorf(cove.CodeInvalid, "%s is too large: the limit is %s", what, cove.FormatBytes(limit)))
}

// retryAfter is the Retry-After of quota errors, in seconds: quotas free
// up as soon as another request of the key ends.
const retryAfter = "1"

// translate turns err into the status and body of an error answer; this is
// the one place where errors become HTTP. Internal errors are logged with
// their detail and an id, and only the id reaches the client.
func (s *server) translate(r *http.Request, err error) (int, *wire.ErrorBody) {
	status := 0
	var he *httpError
	if errors.As(err, &he) {
		status = he.status
	}
	code := cove.ErrorCode(err)
	if code == cove.CodeInternal && errors.Is(err, context.DeadlineExceeded) {
		code = cove.CodeTimeout
	}
	info, known := cove.Codes[code]
	if !known {
		code, info = cove.CodeInternal, cove.Codes[cove.CodeInternal]
	}
	if status == 0 {
		status = info.HTTPStatus
	}
	msg := cove.ErrorMessage(err)
	if code == cove.CodeInternal {
		id := errorID()
		s.log.Error("internal error", "id", id, "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error (id " + id + ")"
	} else if status >= 500 {
		s.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	return status, &wire.ErrorBody{Error: wire.ErrorDetail{Code: string(code), Message: msg}}
}

// writeError answers with err. A request whose client has gone gets no
// answer: nobody would read it.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil && errors.Is(err, r.Context().Err()) {
		s.log.Debug("client went away", "method", r.Method, "path", r.URL.Path)
		return
	}
	status, body := s.translate(r, err)
	switch body.Error.Code {
	case string(cove.CodeQuotaExceeded):
		w.Header().Set("Retry-After", retryAfter)
	case string(cove.CodeUnauthorized):
		// Only a 401 asks for credentials; a 403 says these may not
		// do it.
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cove"`)
		}
	}
	switch status {
	case http.StatusRequestTimeout, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		// The body was not read to its end, and the client may be
		// stalling: do not read the rest to reuse the connection.
		w.Header().Set("Connection", "close")
	}
	// Headers meant for a success (a file's type and length) must not
	// describe the error.
	for _, h := range []string{"Content-Length", "Content-Disposition", "Content-Encoding", "Last-Modified", headerFileInfo} {
		w.Header().Del(h)
	}
	writeJSON(w, status, body)
}

// errorDetail returns err as it goes into a stream's error event.
func (s *server) errorDetail(r *http.Request, err error) *wire.ErrorDetail {
	_, body := s.translate(r, err)
	return &body.Error
}

func errorID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
