package cove

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Code classifies an error so that every front end can translate it once:
// to an HTTP status, an MCP isError result or a CLI exit code.
type Code string

// The error codes cove uses.
const (
	CodeInvalid       Code = "invalid"        // the request is malformed or a value is out of range
	CodeNotFound      Code = "not_found"      // the sandbox, file or key does not exist (or is not yours)
	CodeConflict      Code = "conflict"       // the request conflicts with the current state
	CodeUnauthorized  Code = "unauthorized"   // missing, unknown or revoked credentials
	CodeForbidden     Code = "forbidden"      // the credentials are valid but may not do this (an admin's are needed)
	CodeQuotaExceeded Code = "quota_exceeded" // a per-key quota would be exceeded, or a workspace's disk limit is reached
	CodeUnavailable   Code = "unavailable"    // the host cannot do it now (missing kernel feature, shutting down)
	CodeTimeout       Code = "timeout"        // the operation itself (not a user program) timed out
	CodeInternal      Code = "internal"       // a bug or an unexpected host failure
)

// Error is cove's classified error. Message is safe to show to the user.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	// Err is the underlying cause; it is logged, never sent to clients.
	Err error `json:"-"`
	// RetryAfter, on a quota_exceeded error, is how long to wait before
	// the same request may succeed: the quota is of work that ends by
	// itself (executions at once, one-call runs, the AI provider's rate).
	// Zero where waiting frees nothing (a disk limit, sandboxes kept).
	// The REST API sends it as Retry-After, which the SDK reads back.
	RetryAfter time.Duration `json:"-"`
	// Reason, when set, tells apart the cases of one code that a client
	// may handle differently; it is one of the Reason constants, and
	// stable where the message is for people and may change.
	Reason Reason `json:"reason,omitempty"`
}

// Reason names the case of an error (Error.Reason) or of an execution
// that could not start (ExecResult.Reason) where its code alone does not
// say what a client may do about it. Clients test reasons instead of
// reading messages; a reason they do not know they treat as none.
type Reason string

// The reasons cove gives.
const (
	// ReasonFileExists: the code of a run would overwrite a file of the
	// workspace that cove did not write for an earlier run (a conflict):
	// give the code another filename, or move that file.
	ReasonFileExists Reason = "file_exists"
	// ReasonDiskFull: the workspace's disk limit is reached
	// (quota_exceeded, or an execution's setup_failed): delete files, or
	// use a sandbox with a larger disk.
	ReasonDiskFull Reason = "disk_full"
	// ReasonSandboxGone: the sandbox existed and was deleted, by its TTL
	// or by a request (not_found); the message says which, and when.
	ReasonSandboxGone Reason = "sandbox_gone"
)

// Error returns the message, followed by the cause when the message does
// not already hold it; an error without a message is its code and cause.
func (e *Error) Error() string {
	if e.Err != nil && e.Message == "" {
		return string(e.Code) + ": " + e.Err.Error()
	}
	// Errorf's messages hold their cause already.
	if e.Err != nil && !strings.Contains(e.Message, e.Err.Error()) {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same code, and the
// same reason if target has one, so that
// errors.Is(err, &cove.Error{Code: cove.CodeNotFound}) and
// errors.Is(err, &cove.Error{Code: cove.CodeQuotaExceeded, Reason: cove.ReasonDiskFull})
// work.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && (t.Reason == "" || t.Reason == e.Reason) && t.Message == "" && t.Err == nil
}

// Errorf returns an *Error with the given code and a formatted message.
// A %w verb in format also records the cause.
func Errorf(code Code, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: code, Message: err.Error(), Err: errors.Unwrap(err)}
}

// ErrorCode returns the code of the first *Error in err's chain, or
// CodeInternal when there is none. A nil error has no code (""). An
// error of a cancelled or expired context (context.Canceled,
// context.DeadlineExceeded) carries no code either, and so is
// CodeInternal here: a caller that wants to tell those apart tests them
// with errors.Is first.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var ce *Error
	if errors.As(err, &ce) {
		return ce.Code
	}
	return CodeInternal
}

// ErrorMessage returns the user-facing message of err: the message of its
// *Error, or the whole text when err carries no code.
func ErrorMessage(err error) string {
	var ce *Error
	if errors.As(err, &ce) && ce.Message != "" {
		return ce.Message
	}
	return err.Error()
}

// ErrorReason returns the reason of the first *Error in err's chain, or
// "" when it has none.
func ErrorReason(err error) Reason {
	var ce *Error
	if errors.As(err, &ce) {
		return ce.Reason
	}
	return ""
}

// CodeInfo maps an error code to its representation at each edge.
type CodeInfo struct {
	HTTPStatus int // status for REST responses
	ExitCode   int // exit status of the CLI
}

// Codes is the one table that maps error codes to HTTP statuses and CLI
// exit codes. CLI exit codes are 119 to 127, one each, so that they seldom
// collide with the exit status of a user program, which `cove run` passes
// through: programs rarely choose them, and 128 and above mean a signal.
var Codes = map[Code]CodeInfo{
	CodeInvalid:       {HTTPStatus: 400, ExitCode: 125},
	CodeUnauthorized:  {HTTPStatus: 401, ExitCode: 126},
	CodeForbidden:     {HTTPStatus: 403, ExitCode: 119},
	CodeNotFound:      {HTTPStatus: 404, ExitCode: 127},
	CodeConflict:      {HTTPStatus: 409, ExitCode: 121},
	CodeQuotaExceeded: {HTTPStatus: 429, ExitCode: 122},
	CodeUnavailable:   {HTTPStatus: 503, ExitCode: 123},
	CodeTimeout:       {HTTPStatus: 504, ExitCode: 124},
	CodeInternal:      {HTTPStatus: 500, ExitCode: 120},
}

// Excerpt is s as a message quotes what a user gave: whole when it is at
// most max bytes, otherwise its first max bytes at most, cut at a
// character boundary, and "...".
func Excerpt(s string, max int) string {
	if len(s) <= max {
		return s
	}
	n := max
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
