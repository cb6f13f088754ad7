package wire

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
)

func TestDuration(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{`"30s"`, 30 * time.Second, true}, {`"1m30s"`, 90 * time.Second, true}, {`30`, 30 * time.Second, true},
		{`0.25`, 250 * time.Millisecond, true}, {`null`, 0, true}, {`""`, 0, true}, {`"45"`, 45 * time.Second, true},
		{`"soon"`, 0, false}, {`1e300`, 0, false}, {`true`, 0, false}, {`"-5s"`, -5 * time.Second, true},
	}
	for _, c := range cases {
		var d Duration
		err := json.Unmarshal([]byte(c.in), &d)
		if (err == nil) != c.ok || (c.ok && time.Duration(d) != c.want) {
			t.Errorf("%s: %v, %v", c.in, time.Duration(d), err)
		}
	}
	b, _ := json.Marshal(Duration(90 * time.Second))
	if string(b) != `"1m30s"` {
		t.Fatalf("marshal %s", b)
	}
}

func TestMode(t *testing.T) {
	cases := []struct {
		in   string
		want uint32
		ok   bool
	}{
		{`"0755"`, 0o755, true}, {`"755"`, 0o755, true}, {`"0o600"`, 0o600, true}, {`493`, 0o755, true},
		{`"0999"`, 0, false}, {`"rwx"`, 0, false}, {`70000`, 0, false}, {`-1`, 0, false}, {`1.5`, 0, false}, {`""`, 0, false},
	}
	for _, c := range cases {
		var m Mode
		err := json.Unmarshal([]byte(c.in), &m)
		if (err == nil) != c.ok || (c.ok && uint32(m) != c.want) {
			t.Errorf("%s: %o, %v", c.in, m, err)
		}
	}
	b, _ := json.Marshal(Mode(0o4755))
	if string(b) != `"4755"` {
		t.Fatalf("marshal %s", b)
	}
}

func TestData(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("text ü\n"), {0xff, 0}, []byte("\x00nul is valid UTF-8")} {
		s, enc := EncodeData(b)
		back, err := DecodeData(s, enc)
		if err != nil || string(back) != string(b) {
			t.Errorf("%q: %q %q -> %q, %v", b, s, enc, back, err)
		}
	}
	if _, enc := EncodeData([]byte{0xff}); enc != EncodingBase64 {
		t.Fatal("invalid UTF-8 not base64")
	}
	if _, err := DecodeData("x", "hex"); err == nil {
		t.Fatal("unknown encoding accepted")
	}
	if _, err := DecodeData("%%", "base64"); err == nil {
		t.Fatal("bad base64 accepted")
	}
}

func TestFileContent(t *testing.T) {
	var files map[string]FileContent
	err := json.Unmarshal([]byte(`{"a":"text","b":{"content":"AP8=","encoding":"base64"},"c":{"content":"plain"}}`), &files)
	if err != nil || string(files["a"]) != "text" || string(files["b"]) != "\x00\xff" || string(files["c"]) != "plain" {
		t.Fatalf("%q %v", files, err)
	}
	for _, bad := range []string{`{"a":{"content":"x","extra":1}}`, `{"a":{"content":"x","encoding":"hex"}}`, `{"a":5}`} {
		if err := json.Unmarshal([]byte(bad), &files); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	b, _ := json.Marshal(map[string]FileContent{"t": FileContent("hi"), "b": {0xff}})
	if string(b) != `{"b":{"content":"/w==","encoding":"base64"},"t":"hi"}` {
		t.Fatalf("marshal %s", b)
	}
}

func TestLimitsRoundTrip(t *testing.T) {
	for _, l := range []cove.Limits{
		cove.DefaultLimits(),
		{MemoryBytes: 100_000_001, DiskBytes: 3, TmpBytes: 1 << 40, OutputBytes: 1, FileBytes: 12345, CPUs: 0.01, Pids: 9, OpenFiles: 7, Timeout: 1500 * time.Millisecond},
		{},
	} {
		b, err := json.Marshal(LimitsFrom(l))
		if err != nil {
			t.Fatal(err)
		}
		var w Limits
		if err := json.Unmarshal(b, &w); err != nil {
			t.Fatal(err)
		}
		back, err := w.Cove()
		if err != nil || back != l {
			t.Errorf("%+v -> %s -> %+v, %v", l, b, back, err)
		}
		if strings.Contains(string(b), "_bytes") {
			t.Errorf("answers use the unit names only: %s", b)
		}
	}
}

// TestCutCharacterDropped checks that output a limit cut in the middle of
// a character goes as text without that character's start, and that
// other invalid UTF-8 still goes as base64.
func TestCutCharacterDropped(t *testing.T) {
	cut := "x" + "é"[:1]
	w := ResultFrom(&cove.ExecResult{Stdout: cut, StdoutTruncated: true, Stderr: cut})
	if w.Stdout != "x" || w.StdoutEncoding != "" {
		t.Errorf("a cut stream: %q (%s)", w.Stdout, w.StdoutEncoding)
	}
	if w.StderrEncoding != "base64" {
		t.Errorf("a stream that was not cut, ending in a broken character: %q (%s)", w.Stderr, w.StderrEncoding)
	}
	w = ResultFrom(&cove.ExecResult{Stdout: "\xff\xfeabc", StdoutTruncated: true})
	if w.StdoutEncoding != "base64" {
		t.Errorf("binary output that was cut: %q (%s)", w.Stdout, w.StdoutEncoding)
	}
}

// TestNegativeLimitsNamedAsGiven checks that a negative size, which the
// server refuses, is refused in the caller's own terms: the bytes given,
// not a fraction of a MiB.
func TestNegativeLimitsNamedAsGiven(t *testing.T) {
	b, _ := json.Marshal(LimitsFrom(cove.Limits{MemoryBytes: -1, OutputBytes: -2048}))
	var w Limits
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	_, err := w.Cove()
	if msg := cove.ErrorMessage(err); !strings.Contains(msg, "memory_bytes -1 must not be negative") || !strings.Contains(msg, "output_bytes -2048 must not be negative") || strings.Contains(msg, "e-0") {
		t.Errorf("%s -> %v", b, err)
	}
}

// FuzzLimitsRoundTrip checks that every byte count crosses the wire
// without loss.
func FuzzLimitsRoundTrip(f *testing.F) {
	f.Add(int64(512<<20), int64(1), int64(1<<40), int64(1000))
	f.Fuzz(func(t *testing.T, mem, disk, tmp, out int64) {
		l := cove.Limits{MemoryBytes: abs(mem), DiskBytes: abs(disk), TmpBytes: abs(tmp), OutputBytes: abs(out)}
		b, _ := json.Marshal(LimitsFrom(l))
		var w Limits
		if err := json.Unmarshal(b, &w); err != nil {
			t.Fatal(err)
		}
		back, err := w.Cove()
		if err != nil || back != l {
			t.Fatalf("%+v -> %s -> %+v, %v", l, b, back, err)
		}
	})
}

// abs keeps sizes within what the wire carries exactly (2^53 bytes).
func abs(n int64) int64 {
	if n < 0 {
		n = -n
	}
	return n % (1 << 53)
}

func TestLimitsConflicts(t *testing.T) {
	_, err := Limits{ResourceLimits: ResourceLimits{MemoryMB: 1, MemoryBytes: 2}}.Cove()
	if cove.ErrorCode(err) != cove.CodeInvalid || !strings.Contains(err.Error(), "memory_mb and memory_bytes") {
		t.Fatalf("%v", err)
	}
	if l, err := (Limits{ResourceLimits: ResourceLimits{MemoryMB: 1, MemoryBytes: 1 << 20}}).Cove(); err != nil || l.MemoryBytes != 1<<20 {
		t.Fatalf("agreeing units: %+v %v", l, err)
	}
	_, err = Limits{ResourceLimits: ResourceLimits{MemoryMB: math.MaxFloat64}}.Cove()
	if cove.ErrorCode(err) != cove.CodeInvalid {
		t.Fatalf("huge size: %v", err)
	}
	_, err = Limits{ResourceLimits: ResourceLimits{CPUs: 1, Pids: 5}}.Merge(Limits{ResourceLimits: ResourceLimits{CPUs: 2, Pids: 5}})
	if err == nil || !strings.Contains(err.Error(), "cpus is given twice") || strings.Contains(err.Error(), "pids") {
		t.Fatalf("merge: %v", err)
	}
	m, err := Limits{ResourceLimits: ResourceLimits{CPUs: 1}}.Merge(Limits{ResourceLimits: ResourceLimits{Pids: 5}})
	if err != nil || m.CPUs != 1 || m.Pids != 5 {
		t.Fatalf("merge: %+v %v", m, err)
	}
}

// TestNegativeSizesNameTheirField checks that a negative size is refused
// by the name the request gave it, in its own unit, every one at once.
func TestNegativeSizesNameTheirField(t *testing.T) {
	_, err := Limits{ResourceLimits: ResourceLimits{MemoryMB: -1, DiskBytes: -5, OutputKB: -0.5, TmpMB: 3}}.Cove()
	for _, want := range []string{
		"memory_mb -1 must not be negative: give a size in MiB (or memory_bytes in bytes)",
		"disk_bytes -5 must not be negative",
		"output_kb -0.5 must not be negative: give a size in KiB",
	} {
		if cove.ErrorCode(err) != cove.CodeInvalid || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want invalid with %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "tmp") {
		t.Errorf("error %v names a valid field", err)
	}
	_, err = Quota{MaxMemoryMB: -2}.Cove()
	if cove.ErrorCode(err) != cove.CodeInvalid || !strings.Contains(err.Error(), "max_memory_mb -2 must not be negative") {
		t.Errorf("quota: %v", err)
	}
}

// TestRoundTrips sends domain values through their wire forms and back.
func TestRoundTrips(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	sb := &cove.Sandbox{ID: "x", State: cove.StateStopped, Language: "python", Limits: cove.DefaultLimits(), Env: map[string]string{"a": "b"},
		Labels: map[string]string{"l": "v"}, Backend: "native", Owner: "k", IdleTimeout: time.Minute, TTL: time.Hour,
		CreatedAt: now, LastActiveAt: now, ExpiresAt: now.Add(time.Hour)}
	var wsb Sandbox
	roundTrip(t, SandboxFrom(sb), &wsb)
	if back, err := wsb.Cove(); err != nil || !reflect.DeepEqual(back, sb) {
		t.Errorf("sandbox %+v, %v", back, err)
	}

	res := &cove.ExecResult{Verdict: cove.VerdictKilled, ExitCode: -1, Signal: "SIGKILL", Stdout: "out", Stderr: "\xff", StdoutTruncated: true,
		WallMS: 5, CPUMS: 2, PeakMemoryBytes: 3, Message: "killed", Reason: cove.ReasonDiskFull, Limits: cove.DefaultLimits()}
	var wr Result
	roundTrip(t, ResultFrom(res), &wr)
	if back, err := wr.Cove(); err != nil || !reflect.DeepEqual(back, res) {
		t.Errorf("result %+v, %v", back, err)
	}

	for _, ev := range []cove.Event{{Type: cove.EventStdout, Data: []byte("x")}, {Type: cove.EventStderr, Data: []byte{0, 0xff}}, {Type: cove.EventExit, Result: res}} {
		var we Event
		roundTrip(t, EventFrom(ev), &we)
		back, err := we.Cove()
		if err != nil || !reflect.DeepEqual(back, ev) {
			t.Errorf("event %+v -> %+v, %v", ev, back, err)
		}
	}
	errEv := Event{Type: EventError, Error: &ErrorDetail{Code: "conflict", Message: "stopped", Reason: "file_exists"}}
	if _, err := errEv.Cove(); cove.ErrorCode(err) != cove.CodeConflict || cove.ErrorReason(err) != cove.ReasonFileExists {
		t.Errorf("error event: %v (reason %q)", err, cove.ErrorReason(err))
	}

	ttl := time.Duration(0)
	var wu UpdateSandbox
	roundTrip(t, UpdateSandboxFrom(cove.SandboxUpdate{Labels: map[string]string{}, TTL: &ttl}), &wu)
	if u := wu.Update(); u.Labels == nil || len(u.Labels) != 0 || u.TTL == nil || *u.TTL != 0 {
		t.Errorf("update %+v", u)
	}
	roundTrip(t, UpdateSandboxFrom(cove.SandboxUpdate{}), &wu)
	if u := (&UpdateSandbox{}).Update(); u.Labels != nil || u.TTL != nil {
		t.Errorf("empty update %+v", u)
	}

	rr := cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "py", Code: "x", Stdin: []byte{}, Argv: []string{"a"}, Timeout: 5 * time.Second},
		Files: map[string][]byte{"a": {0xff}, "b": []byte("t")}, Limits: cove.Limits{MemoryBytes: 64 << 20}}
	var wrr RunRequest
	roundTrip(t, RunRequestFrom(rr), &wrr)
	if back, err := wrr.Request(); err != nil || !reflect.DeepEqual(back, rr) {
		t.Errorf("run request %+v, %v", back, err)
	}

	k := &cove.Key{ID: "k", Name: "n", Quota: cove.Quota{MaxSandboxes: 1, MaxMemoryBytes: 1 << 30}, CreatedAt: now}
	var wk Key
	roundTrip(t, KeyFrom(k), &wk)
	if back, err := wk.Cove(); err != nil || !reflect.DeepEqual(back, k) {
		t.Errorf("key %+v, %v", back, err)
	}
}

func roundTrip(t *testing.T, in, out any) {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
}

// TestRefusedValuesNameTheirField checks that the wire types that decode
// their JSON themselves refuse a value with the one error that
// encoding/json completes with the field's path, and that Rule says what
// the type takes, so that the API's answer can name the field.
func TestRefusedValuesNameTheirField(t *testing.T) {
	var v struct {
		TTL    Duration               `json:"ttl"`
		Nested struct{ Mode *Mode }   `json:"nested"`
		Files  map[string]FileContent `json:"files"`
	}
	cases := []struct {
		in, field, value string
		typ              reflect.Type
	}{
		{`{"ttl":"soon"}`, "ttl", `"soon"`, reflect.TypeFor[Duration]()},
		{`{"ttl":1e300}`, "ttl", `1e300`, reflect.TypeFor[Duration]()},
		{`{"nested":{"Mode":"999"}}`, "nested.Mode", `"999"`, reflect.TypeFor[Mode]()},
		{`{"files":{"a":{"content": "x", "encoding": "hex"}}}`, "files", `{"content":"x","encoding":"hex"}`, reflect.TypeFor[FileContent]()},
		{`{"ttl":"` + strings.Repeat("é", 40) + `"}`, "ttl", `"` + strings.Repeat("é", 31) + `...`, reflect.TypeFor[Duration]()},
	}
	for _, c := range cases {
		err := json.Unmarshal([]byte(c.in), &v)
		var typ *json.UnmarshalTypeError
		if !errors.As(err, &typ) || typ.Field != c.field || typ.Value != c.value || typ.Type != c.typ {
			t.Errorf("%s: %#v", c.in, err)
			continue
		}
		if _, ok := Rule(typ.Type); !ok {
			t.Errorf("%s: no rule for %s", c.in, typ.Type)
		}
	}
	if _, ok := Rule(reflect.TypeFor[string]()); ok {
		t.Error("a rule for string")
	}
}
