package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestStepDurations(t *testing.T) {
	steps, err := readSteps(strings.NewReader("110 main\n150 create\n190 started\n300 output\n320 exit\n330 removed\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := stepDurations(steps, 100, 340)
	want := []time.Duration{10, 40, 40, 110, 20, 10, 10}
	if len(got) != len(want) {
		t.Fatalf("got %d stretches, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("stretch %s->%s: got %v, want %v", runSteps[i].from, runSteps[i].to, got[i], want[i])
		}
	}

	// A run without output: the stretches around the missing step are
	// left out, the others kept.
	delete(steps, stepOutput)
	got = stepDurations(steps, 100, 340)
	for i, d := range got {
		missing := runSteps[i].from == stepOutput || runSteps[i].to == stepOutput
		if missing != (d < 0) {
			t.Errorf("stretch %s->%s: %v", runSteps[i].from, runSteps[i].to, d)
		}
	}

	if _, err := readSteps(strings.NewReader("garbage\n")); err == nil {
		t.Error("a malformed trace line was accepted")
	}
}

// TestRunTrace runs `cove run` as cove bench does, in-process and against
// a server, and checks that it reports every step, in order.
func TestRunTrace(t *testing.T) {
	t.Run("local", func(t *testing.T) {
		c := newCLI(t)
		checkRunTrace(t, "COVE_DATA_DIR="+c.data, "COVE_RUN_DIR="+c.run)
	})
	t.Run("server", func(t *testing.T) {
		s := newServer(t)
		checkRunTrace(t, "COVE_URL="+s.url, "COVE_API_KEY="+s.admin)
	})
}

func checkRunTrace(t *testing.T, env ...string) {
	cmd := exec.Command(os.Args[0], "run", "-l", "python", "-c", "print(1)")
	cmd.Env = append(append(os.Environ(), "COVE_TEST_AS_CLI=1", "COVE_TRACE_FD=3"), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	ds, err := runTraced(cmd)
	if err != nil {
		t.Fatalf("%v: %s", err, errb.String())
	}
	total := time.Since(start)
	if out.String() != "1\n" || errb.Len() != 0 {
		t.Fatalf("stdout %q stderr %q", out.String(), errb.String())
	}
	var sum time.Duration
	for i, d := range ds {
		if d <= 0 {
			t.Errorf("stretch %s->%s: %v (missing or out of order)", runSteps[i].from, runSteps[i].to, d)
		}
		sum += d
	}
	if sum > total {
		t.Errorf("the stretches add up to %v, more than the %v the command took", sum, total)
	}
}
