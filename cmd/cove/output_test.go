package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestParseLocation(t *testing.T) {
	cases := []struct {
		in   string
		want location
	}{
		{"3f9a:/workspace/a.txt", location{"3f9a", "/workspace/a.txt"}},
		{"3f9a:a.txt", location{"3f9a", "a.txt"}},
		{"3f9a:", location{"3f9a", "."}},
		{"-", location{"", "-"}},
		{"file.txt", location{"", "file.txt"}},
		{"./a:b", location{"", "./a:b"}},
		{"/tmp/a:b", location{"", "/tmp/a:b"}},
		{":x", location{"", ":x"}},
	}
	for _, tc := range cases {
		if got := parseLocation(tc.in); got != tc.want {
			t.Errorf("parseLocation(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestPairs(t *testing.T) {
	m, err := pairs("--env", []string{"A=1", "B=x=y", "C="})
	if err != nil || len(m) != 3 || m["A"] != "1" || m["B"] != "x=y" || m["C"] != "" {
		t.Fatalf("got %v %v", m, err)
	}
	for _, bad := range []string{"A", "=1"} {
		if _, err := pairs("--env", []string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if m, err := pairs("--env", nil); m != nil || err != nil {
		t.Fatalf("no values: %v %v", m, err)
	}
}

func TestCellQuotesWhatATerminalWouldRun(t *testing.T) {
	for in, want := range map[string]string{
		"plain name":      "plain name",
		"tab\there":       `"tab\there"`,
		"evil\x1b[2Jx":    `"evil\x1b[2Jx"`,
		"line\nbreak":     `"line\nbreak"`,
		"unicode ünïcödé": "unicode ünïcödé",
	} {
		if got := cell(in); got != want {
			t.Errorf("cell(%q) = %s, want %s", in, got, want)
		}
	}
	if got := printableLine("\tindented"); got != "\tindented" {
		t.Errorf("printableLine kept %q", got)
	}
}

func TestAge(t *testing.T) {
	now := time.Now()
	for d, want := range map[time.Duration]string{
		5 * time.Second: "5s", 3 * time.Minute: "3m", 5 * time.Hour: "5h", 47 * time.Hour: "47h", 72 * time.Hour: "3d",
	} {
		if got := age(now.Add(-d)); got != want {
			t.Errorf("age(-%v) = %s, want %s", d, got, want)
		}
	}
	if age(time.Time{}) != "-" {
		t.Error("the zero time has an age")
	}
}

func TestProgressLine(t *testing.T) {
	p := &progress{label: "data.bin", total: 4 << 20}
	if got := p.line(1<<20, time.Second); got != "data.bin  [======                  ]  25%  1 MiB / 4 MiB  1 MiB/s" {
		t.Errorf("known total: %q", got)
	}
	p.total = 0
	if got := p.line(3<<20, 2*time.Second); got != "data.bin  3 MiB  1.5 MiB/s" {
		t.Errorf("unknown total: %q", got)
	}
}

func TestProgressDrawsOnlyLargeTransfers(t *testing.T) {
	var small, large bytes.Buffer
	p := startProgress(&small, "small", 1000, time.Millisecond)
	p.reader(strings.NewReader(strings.Repeat("x", 1000))).Read(make([]byte, 1000))
	time.Sleep(20 * time.Millisecond)
	p.finish()
	if small.Len() != 0 {
		t.Errorf("a small transfer drew %q", small.String())
	}
	p = startProgress(&large, "large", 2<<20, time.Millisecond)
	w := p.writer(&bytes.Buffer{})
	w.Write(make([]byte, 2<<20))
	p.finish()
	if out := large.String(); !strings.Contains(out, "100%  2 MiB / 2 MiB") || !strings.HasSuffix(out, "\n") {
		t.Errorf("a large transfer drew %q", out)
	}
	var nilProgress *progress
	nilProgress.finish() // disabled: no terminal
}

func TestSpinner(t *testing.T) {
	var buf syncBuffer
	buf.mu, buf.first = make(chan struct{}, 1), make(chan struct{})
	stop := startSpinner(&buf, "creating sandbox", 0)
	<-buf.first
	stop()
	stop()
	out := buf.String()
	if !strings.Contains(out, " creating sandbox") || !strings.HasSuffix(out, "\r\x1b[K") {
		t.Errorf("spinner drew %q", out)
	}
	var fast bytes.Buffer
	startSpinner(&fast, "quick", time.Hour)()
	if fast.Len() != 0 {
		t.Errorf("a fast call drew %q", fast.String())
	}
}

func TestNoSpinnerWhenPiped(t *testing.T) {
	var stderr bytes.Buffer
	e := &env{stderr: &stderr}
	e.spin("creating", false)()
	if p := e.progress("x", 10<<20); p != nil {
		t.Error("progress on a pipe")
	}
	if stderr.Len() != 0 {
		t.Errorf("drew %q on a pipe", stderr.String())
	}
}

func TestExpiresIn(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{-time.Second, "now"},
		{30*time.Second - time.Millisecond, "in 30s"},
		{time.Hour - time.Millisecond, "in 1h"},
		{59*time.Minute - time.Millisecond, "in 59m"},
		{2*time.Hour - time.Second, "in 2h"},
		{90*time.Minute - time.Second, "in 1h30m"},
		{47*time.Hour + 59*time.Minute, "in 47h59m"},
		{72 * time.Hour, "in 3d"},
	} {
		if got := expiresIn(now.Add(tc.in)); got != tc.want {
			t.Errorf("%v from now: %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := expiresIn(time.Time{}); got != "-" {
		t.Errorf("no TTL: %q", got)
	}
}
