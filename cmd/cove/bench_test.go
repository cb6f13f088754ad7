package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// buildCove builds the cove command for tests that need it as a separate
// binary: cove bench starts itself.
func buildCove(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "cove")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// TestBench runs the benchmarks the README's figures come from, briefly,
// and checks that they measure what they say.
func TestBench(t *testing.T) {
	c := newCLI(t)
	if testing.Short() {
		t.Skip("builds cove and runs its benchmarks")
	}
	bin := buildCove(t)
	env := append(os.Environ(), "COVE_DATA_DIR="+c.data, "COVE_RUN_DIR="+c.run)

	t.Run("sandboxes", func(t *testing.T) {
		cmd := exec.Command(bin, "bench", "--runs", "5", "--json")
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("cove bench: %v\n%s", err, out)
		}
		var rows []benchRow
		if err := json.Unmarshal(out, &rows); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		names := map[string]*benchRow{}
		for i := range rows {
			names[rows[i].Name] = &rows[i]
		}
		for _, n := range []string{"bare", "run", "exec", "create_destroy"} {
			r := names[n]
			if r == nil || r.P50MS <= 0 || r.MinMS > r.P50MS || r.P50MS > r.P90MS {
				t.Errorf("row %s: %+v", n, r)
			}
		}
		run := names["run"]
		if run == nil || run.Ratio <= 1 || len(run.Steps) != len(runSteps) {
			t.Fatalf("run row: %+v", run)
		}
		var sum float64
		for _, s := range run.Steps {
			if s.P50MS <= 0 {
				t.Errorf("stretch %s -> %s not measured", s.From, s.To)
			}
			sum += s.P50MS
		}
		// Medians of the parts need not add up to the median of the
		// whole, but they cannot be far from it.
		if sum < run.P50MS/2 || sum > run.P50MS*2 {
			t.Errorf("the stretches add up to %.2f ms, the run takes %.2f ms", sum, run.P50MS)
		}
	})

	t.Run("api", func(t *testing.T) {
		cmd := exec.Command(bin, "bench", "--api", "--runs", "5", "--seconds", "1", "--idle", "3")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("cove bench --api: %v\n%s", err, out)
		}
		for _, want := range []string{
			`API overhead -?\d+\.\d+ ms`,
			`POST /v1/sandboxes from the warm pool: p50 \d+\.\d+ ms`,
			`one at a time \(run_reuse \d+, warm pool \d+\): p50 \d+\.\d+ ms`,
			`against this server \(COVE_URL\), one at a time: p50 \d+\.\d+ ms, \d+\.\d+x bare`,
			`removed\s+-> end\s+\d+\.\d+ ms`,
			`at concurrency 4, run_reuse [1-9]\d*: [1-9]\d* runs in \d+\.\d+ s = \d+\.\d+ runs/s, \d+% of bare`,
			`[1-9]\d* runs got a sandbox reset after an earlier run, \d+ a new one`,
			`at concurrency 4, run_reuse 0 \(a new sandbox for every run\): [1-9]\d* runs in \d+\.\d+ s = \d+\.\d+ runs/s, \d+% of bare`,
			`machine CPU per run \d+\.\d+ ms, of which the program's own \d+\.\d+ ms`,
			`bare \S+ -c 'print\(1\)' at concurrency 4, before and after: [1-9][\d.]* runs/s, machine CPU per run \d+\.\d+ ms`,
			`3 idle sandboxes held at once`,
		} {
			if !regexp.MustCompile(want).Match(out) {
				t.Errorf("no %q in:\n%s", want, out)
			}
		}
	})
}
