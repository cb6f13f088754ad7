package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

// httpError is an error of the HTTP layer itself whose status is not the
// one cove.Codes gives its code: 413 for a body too large, 415 for an
// encoding the API does not take, 405 for a wrong method, 416 for a range
// past a file's end.
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

// maxEcho is how much of a value of the request's path an error message
// repeats.
const maxEcho = 64

// shortenEchoes shortens, in msg, the values of the request's path (a
// sandbox id, a file path) that are longer than maxEcho: the service
// repeats them whole, and a client may send thousands of characters.
func shortenEchoes(r *http.Request, msg string) string {
	if len(msg) <= maxEcho {
		return msg
	}
	for _, name := range []string{"id", "cid", "pid", "path", "action"} {
		v := r.PathValue(name)
		if len(v) <= maxEcho {
			continue
		}
		q := strconv.Quote(v)
		msg = strings.ReplaceAll(msg, q, strconv.Quote(cove.Excerpt(v, 64)))
		msg = strings.ReplaceAll(msg, v, cove.Excerpt(v, 64))
	}
	return msg
}

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
	msg := shortenEchoes(r, cove.ErrorMessage(err))
	if code == cove.CodeInternal {
		id := errorID()
		s.log.Error("internal error", "id", id, "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error (id " + id + ")"
	} else if status >= 500 && r.Pattern != "GET /healthz" {
		// The health check logs its own failures, once (noteHealth).
		s.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	detail := wire.ErrorDetail{Code: string(code), Message: msg}
	if code != cove.CodeInternal {
		detail.Reason = string(cove.ErrorReason(err))
	}
	return status, &wire.ErrorBody{Error: detail}
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
		// Only where waiting may let the request through: the service
		// says so on the error (a disk limit reached, or sandboxes kept,
		// need something deleted instead).
		var ce *cove.Error
		if errors.As(err, &ce) && ce.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((ce.RetryAfter+time.Second-1)/time.Second)))
		}
	case string(cove.CodeUnauthorized):
		// A 401 asks for credentials; forbidden (403) says that these
		// are valid but may not do it, and asks for none.
		w.Header().Set("WWW-Authenticate", `Bearer realm="cove"`)
	}
	switch status {
	case http.StatusRequestTimeout, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		// The body was not read to its end, and the client may be
		// stalling: do not read the rest to reuse the connection.
		w.Header().Set("Connection", "close")
	}
	// Headers meant for a success (a file's type and length) must not
	// describe the error; a range past a file's end keeps the file's
	// description, which says where it ends (as Content-Range does).
	for _, h := range []string{"Content-Length", "Content-Disposition", "Content-Encoding", "Last-Modified", headerFileInfo} {
		if h != headerFileInfo || status != http.StatusRequestedRangeNotSatisfiable {
			w.Header().Del(h)
		}
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
