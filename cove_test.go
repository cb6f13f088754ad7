package cove

import (
	"encoding/json"
	"errors"
	"fmt"
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
	for code, info := range Codes {
		if info.HTTPStatus < 400 || info.ExitCode < 120 || info.ExitCode > 127 {
			t.Errorf("%s: %+v", code, info)
		}
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
	// The agent lives under the open-files limit too: the smallest one
	// accepted leaves it room, and 0 takes the default.
	for _, ok := range []int{0, MinOpenFiles} {
		if err := (Limits{OpenFiles: ok}).Validate(); err != nil {
			t.Errorf("open files %d: %v", ok, err)
		}
	}
}
