package cove

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseBytes(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"512M", 512 << 20, true}, {"1G", 1 << 30, true}, {"1.5GiB", 3 << 29, true}, {"64mb", 64 << 20, true},
		{"1048576", 1 << 20, true}, {"10k", 10 << 10, true}, {"lots", 0, false}, {"", 0, false}, {"-1M", 0, false},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseBytes(c.in)
			if (err == nil) != c.ok || got != c.want {
				t.Fatalf("ParseBytes(%q) = %d, %v", c.in, got, err)
			}
		})
	}
}

func TestErrorClasses(t *testing.T) {
	base := Errorf(CodeNotFound, "sandbox %q not found", "x")
	wrapped := fmt.Errorf("deleting: %w", base)
	if ErrorCode(wrapped) != CodeNotFound || !errors.Is(wrapped, &Error{Code: CodeNotFound}) {
		t.Fatalf("code lost through wrapping: %v", wrapped)
	}
	if ErrorCode(errors.New("plain")) != CodeInternal || ErrorCode(nil) != "" {
		t.Fatal("plain errors are internal, nil has no code")
	}
	// A reason is found through wrapping and matched only when the
	// target names one.
	full := Errorf(CodeQuotaExceeded, "no space left in the workspace")
	full.Reason = ReasonDiskFull
	wrappedFull := fmt.Errorf("uploading: %w", full)
	if ErrorReason(wrappedFull) != ReasonDiskFull || ErrorReason(wrapped) != "" || ErrorReason(errors.New("plain")) != "" {
		t.Errorf("reasons: %q, %q", ErrorReason(wrappedFull), ErrorReason(wrapped))
	}
	if !errors.Is(wrappedFull, &Error{Code: CodeQuotaExceeded}) || !errors.Is(wrappedFull, &Error{Code: CodeQuotaExceeded, Reason: ReasonDiskFull}) {
		t.Error("an error with a reason does not match its code, or its code and reason")
	}
	if errors.Is(wrappedFull, &Error{Code: CodeQuotaExceeded, Reason: ReasonFileExists}) || errors.Is(wrapped, &Error{Code: CodeNotFound, Reason: ReasonSandboxGone}) {
		t.Error("an error matches a reason it does not have")
	}
	statuses, exits := map[int]Code{}, map[int]Code{}
	for code, info := range Codes {
		if info.HTTPStatus < 400 || info.ExitCode < 119 || info.ExitCode > 127 {
			t.Errorf("%s: %+v", code, info)
		}
		if other, dup := statuses[info.HTTPStatus]; dup {
			t.Errorf("%s and %s share HTTP status %d", code, other, info.HTTPStatus)
		}
		if other, dup := exits[info.ExitCode]; dup {
			t.Errorf("%s and %s share exit code %d", code, other, info.ExitCode)
		}
		statuses[info.HTTPStatus], exits[info.ExitCode] = code, code
	}
	// A valid key that may not do something is told so, not asked for
	// another key.
	if f := Codes[CodeForbidden]; f.HTTPStatus != 403 || f.ExitCode != 119 {
		t.Errorf("forbidden: %+v, want 403 and exit code 119", f)
	}
	// A cause is told once: Errorf's message holds it, a message given
	// apart from its cause is followed by it.
	if got := Errorf(CodeInvalid, "reading config: %w", io.ErrUnexpectedEOF).Error(); got != "reading config: unexpected EOF" {
		t.Errorf("Errorf with a cause reads %q", got)
	}
	if got := (&Error{Code: CodeUnavailable, Message: "cannot reach cove", Err: io.EOF}).Error(); got != "cannot reach cove: EOF" {
		t.Errorf("an error with a separate cause reads %q", got)
	}
}

func TestLimitsJSONAndValidation(t *testing.T) {
	l := DefaultLimits()
	b, _ := json.Marshal(l)
	var back Limits
	if err := json.Unmarshal(b, &back); err != nil || back != l {
		t.Fatalf("round trip: %s -> %+v, %v", b, back, err)
	}
	if err := json.Unmarshal([]byte(`{"timeout":"soon"}`), &back); err == nil {
		t.Fatal("bad duration accepted")
	}
	bad := Limits{MemoryBytes: 1, Pids: 2, CPUs: -1, Timeout: 48 * time.Hour, OpenFiles: MinOpenFiles - 1}
	err := bad.Validate()
	if ErrorCode(err) != CodeInvalid {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{"memory", "pids", "cpus", "timeout", "open files 63 is out of range (64 to"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not mention %s", err, want)
		}
	}
	// Bounds that keep a request from switching a limit off or costing the
	// server its memory: a timeout under a millisecond would be none, and
	// an answer that is not streamed holds its whole output.
	for _, tc := range []struct {
		l    Limits
		want string
	}{
		{Limits{Timeout: 999 * time.Microsecond}, "timeout 999µs is out of range (1ms to 24h)"},
		{Limits{Timeout: time.Nanosecond}, "timeout 1ns is out of range"},
		{Limits{OutputBytes: 32 << 20}, "output limit 32 MiB is out of range (up to 16 MiB per stream"},
		{Limits{Pids: MaxPids + 1}, "pids 4194305 is out of range (8 to 4194304)"},
		{Limits{FileBytes: 2 << 20, DiskBytes: 1 << 20}, "file size limit 2 MiB is larger than the disk limit of 1 MiB: give at most the disk limit, or leave it out"},
		{Limits{TmpBytes: 1}, "tmp size 1 byte is below the minimum of 1 MiB"},
		{Limits{TmpBytes: 1 << 40}.WithDefaults(DefaultLimits()), "tmp size 1024 GiB is larger than the memory limit of 512 MiB"},
	} {
		err := tc.l.Validate()
		if ErrorCode(err) != CodeInvalid || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.l, err, tc.want)
		}
	}
	// A default /tmp larger than a small memory limit shrinks to it.
	if l := (Limits{MemoryBytes: 16 << 20}).WithDefaults(DefaultLimits()); l.TmpBytes != 16<<20 || l.Validate() != nil {
		t.Errorf("16 MiB of memory with the default /tmp: %+v, %v", l, l.Validate())
	}
	for _, ok := range []Limits{{Timeout: time.Millisecond}, {OutputBytes: MaxOutputBytes}, {Pids: MaxPids}, {FileBytes: 1 << 20, DiskBytes: 1 << 20}, {FileBytes: 1 << 40}, {TmpBytes: 1 << 20}, {TmpBytes: 1 << 30, MemoryBytes: 1 << 30}} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
	// The agent lives under the open-files limit too: the smallest one
	// accepted leaves it room, and 0 takes the default.
	for _, ok := range []int{0, MinOpenFiles} {
		if err := (Limits{OpenFiles: ok}).Validate(); err != nil {
			t.Errorf("open files %d: %v", ok, err)
		}
	}
}
