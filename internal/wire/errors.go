package wire

import (
	"net/http"

	"github.com/cove-sandbox/cove"
)

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is a classified error: a code of cove.Codes, a message for
// people, and where a client may act on the case, its reason
// (cove.Reason).
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Reason  string `json:"reason,omitempty"`
}

// Err returns d as a *cove.Error. An empty or unknown code is kept as is,
// so that a newer server's codes (and reasons) still reach the caller.
func (d *ErrorDetail) Err() *cove.Error {
	return &cove.Error{Code: cove.Code(d.Code), Message: d.Message, Reason: cove.Reason(d.Reason)}
}

// CodeForStatus returns the error code that cove.Codes maps to an HTTP
// status, for answers without an error body (a proxy's 502, say); statuses
// it does not list give unavailable for 5xx and invalid otherwise.
func CodeForStatus(status int) cove.Code {
	for code, info := range cove.Codes {
		if info.HTTPStatus == status {
			return code
		}
	}
	switch {
	case status == http.StatusRequestEntityTooLarge, status == http.StatusUnsupportedMediaType:
		return cove.CodeInvalid
	case status >= 500:
		return cove.CodeUnavailable
	}
	return cove.CodeInvalid
}

// HeaderNoRoute marks a 404 answer for a path that is no route of the API
// (rather than a resource that is not there): a client that builds only
// the API's paths learns from it that the server's URL is wrong.
const HeaderNoRoute = "Cove-No-Route"
