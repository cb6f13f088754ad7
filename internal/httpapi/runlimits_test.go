package httpapi

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cove-sandbox/cove"
)

// TestRunTakesFlatLimits checks that POST /v1/run takes limits at the top
// level as POST /v1/sandboxes does, as well as nested, and still refuses
// fields that are neither.
func TestRunTakesFlatLimits(t *testing.T) {
	code := cove.CodeRequest{Language: "python", Code: "print(1)"}
	timed := code
	timed.Timeout = 5e9
	cases := []struct {
		name, body string
		want       cove.RunRequest
	}{
		{"flat", `{"language":"python","code":"print(1)","memory_mb":64,"cpus":0.5,"output_kb":2}`,
			cove.RunRequest{CodeRequest: code, Limits: cove.Limits{MemoryBytes: 64 << 20, CPUs: 0.5, OutputBytes: 2048}}},
		{"nested", `{"language":"python","code":"print(1)","limits":{"memory_mb":64,"timeout":"3s"}}`,
			cove.RunRequest{CodeRequest: code, Limits: cove.Limits{MemoryBytes: 64 << 20, Timeout: 3e9}}},
		{"both, agreeing", `{"language":"python","code":"print(1)","memory_bytes":67108864,"pids":50,"limits":{"memory_mb":64}}`,
			cove.RunRequest{CodeRequest: code, Limits: cove.Limits{MemoryBytes: 64 << 20, Pids: 50}}},
		{"top-level timeout", `{"language":"python","code":"print(1)","timeout":"5s","limits":{"timeout":"3s"}}`,
			cove.RunRequest{CodeRequest: timed, Limits: cove.Limits{Timeout: 3e9}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeService{}
			w := serve(t, f, Options{}, "POST", "/v1/run", "user", c.body)
			if w.Code != 200 {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if got, want := fmt.Sprintf("%#v", f.last), fmt.Sprintf("%#v", c.want); got != want {
				t.Fatalf("service got %s\nwant %s", got, want)
			}
		})
	}
	bad := []struct{ name, body, want string }{
		{"disagreeing", `{"language":"python","code":"x","memory_mb":64,"limits":{"memory_mb":128}}`, "memory_mb is given twice with different values (at the top level and in limits)"},
		{"typo", `{"language":"python","code":"x","memroy_mb":64}`, `invalid JSON body: unknown field "memroy_mb"`},
		{"wrong type", `{"language":"python","code":"x","memory_mb":"lots"}`, `field "memory_mb" must be a number, not string`},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeService{}
			w := serve(t, f, Options{}, "POST", "/v1/run", "user", c.body)
			if code, msg := errorOf(t, w); w.Code != 400 || code != "invalid" || !strings.Contains(msg, c.want) {
				t.Fatalf("%d %s %q, want %q in it", w.Code, code, msg, c.want)
			}
			if f.last != nil {
				t.Fatalf("the service got %#v", f.last)
			}
		})
	}
}
