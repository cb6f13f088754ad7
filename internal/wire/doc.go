// Package wire holds the JSON shapes of cove's REST API and their
// conversions to and from the domain types of package cove. The server
// (internal/httpapi) and the Go SDK (package client) both use it, so the two
// sides cannot disagree about a field.
//
// Conventions on the wire:
//
//   - Durations are strings such as "30s" or "1m30s"; on input a JSON
//     number is also accepted, as seconds.
//   - Sizes are in binary units named by their suffix: memory_mb (MiB),
//     output_kb (KiB). They are numbers and may be fractional, so every
//     byte count converts without loss; on input the byte-exact names
//     (memory_bytes, ...) are accepted too.
//   - Bytes that may not be text (program output, stdin, file contents) are
//     a UTF-8 string when they are valid UTF-8, and otherwise base64 with a
//     companion encoding field set to "base64".
//   - Permission bits are an octal string ("0755"); on input a JSON number
//     is also accepted (its value, so 493 is 0755).
//   - Errors are {"error": {"code": "...", "message": "..."}}, with the
//     codes of cove.Codes.
package wire
