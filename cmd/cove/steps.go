package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Step tracing shows where a one-shot `cove run` spends its time: cove
// bench starts the command with COVE_TRACE_FD naming a descriptor it holds
// open, and cove writes one line to it at each step of the run,
// "<CLOCK_MONOTONIC nanoseconds> <step>".

// The steps, in the order a run reaches them.
const (
	stepMain    = "main"    // cove's main function starts
	stepCreate  = "create"  // the sandbox's creation starts
	stepStarted = "started" // the sandbox exists and the program has started
	stepOutput  = "output"  // the program's first output arrived
	stepExit    = "exit"    // the program's exit event arrived
	stepRemoved = "removed" // the sandbox is gone
)

// runSteps describes the stretches between consecutive steps, from the
// command's start to its exit, for cove bench: what happens in each when
// cove runs the program in-process, and when it sends it to a server.
var runSteps = []struct{ from, to, what, remote string }{
	{"", stepMain, "the Go runtime's start and the package initialization of the cove binary", ""},
	{stepMain, stepCreate, "the command line, the configuration, opening the runtime", "the command line, the configuration, the client"},
	{stepCreate, stepStarted, "creating the sandbox and starting the program", "the request, until the server has started the program in a sandbox from its warm pool"},
	{stepStarted, stepOutput, "the program, up to its first output", ""},
	{stepOutput, stepExit, "the rest of the program, its exit and the agent's report", ""},
	{stepExit, stepRemoved, "removing the sandbox", "the end of the answer (the server resets or removes the sandbox afterwards)"},
	{stepRemoved, "", "cove's own exit", ""},
}

var stepTrace *os.File

// openStepTrace starts step tracing when getenv names an open descriptor.
func openStepTrace(getenv func(string) string) {
	fd, err := strconv.Atoi(getenv("COVE_TRACE_FD"))
	if err != nil || fd < 3 {
		return
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		return
	}
	unix.CloseOnExec(fd)
	stepTrace = os.NewFile(uintptr(fd), "cove-trace")
}

// traceStep records that the run reached step, when tracing.
func traceStep(step string) {
	if stepTrace == nil {
		return
	}
	fmt.Fprintf(stepTrace, "%d %s\n", monotonicNanos(), step)
}

func monotonicNanos() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// readSteps parses a trace into the time of each step.
func readSteps(r io.Reader) (map[string]int64, error) {
	steps := map[string]int64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		ns, step, ok := strings.Cut(sc.Text(), " ")
		t, err := strconv.ParseInt(ns, 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("bad trace line %q", sc.Text())
		}
		steps[step] = t
	}
	return steps, sc.Err()
}

// stepDurations gives the length of each of runSteps for one run started
// at start and ended at end; a stretch whose ends are not both in steps is
// left out (-1).
func stepDurations(steps map[string]int64, start, end int64) []time.Duration {
	at := func(step string, dflt int64) (int64, bool) {
		if step == "" {
			return dflt, true
		}
		t, ok := steps[step]
		return t, ok
	}
	out := make([]time.Duration, len(runSteps))
	for i, s := range runSteps {
		from, ok1 := at(s.from, start)
		to, ok2 := at(s.to, end)
		out[i] = -1
		if ok1 && ok2 && to >= from {
			out[i] = time.Duration(to - from)
		}
	}
	return out
}

// benchStep is one stretch of a one-shot run in cove bench's results.
type benchStep struct {
	From  string  `json:"from"`
	To    string  `json:"to"`
	What  string  `json:"what"`
	P50MS float64 `json:"p50_ms"`
	times []time.Duration
}

func newBenchSteps(remote bool) []*benchStep {
	out := make([]*benchStep, len(runSteps))
	for i, s := range runSteps {
		what := s.what
		if remote && s.remote != "" {
			what = s.remote
		}
		from, to := s.from, s.to
		if from == "" {
			from = "start"
		}
		if to == "" {
			to = "end"
		}
		out[i] = &benchStep{From: from, To: to, What: what}
	}
	return out
}

func addStepDurations(bs []*benchStep, ds []time.Duration) {
	for i, d := range ds {
		if d >= 0 {
			bs[i].times = append(bs[i].times, d)
		}
	}
}

func finishSteps(bs []*benchStep) {
	for _, b := range bs {
		if len(b.times) == 0 {
			continue
		}
		slices.Sort(b.times)
		b.P50MS = float64(b.times[len(b.times)/2].Microseconds()) / 1000
	}
}

// printSteps writes one line per stretch.
func printSteps(w io.Writer, bs []*benchStep) {
	for _, b := range bs {
		fmt.Fprintf(w, "  %-8s -> %-8s %7.2f ms  %s\n", b.From, b.To, b.P50MS, b.What)
	}
}
