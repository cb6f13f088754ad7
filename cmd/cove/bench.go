package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cove-sandbox/cove"
)

// benchRow is one measured operation.
type benchRow struct {
	Name  string  `json:"name"`
	What  string  `json:"what"`
	P50MS float64 `json:"p50_ms"`
	P90MS float64 `json:"p90_ms"`
	MinMS float64 `json:"min_ms"`
	Ratio float64 `json:"ratio_to_bare,omitempty"`
	// CPUMS is the mean CPU time, user and system, of cove and of the
	// processes it waited for, per operation; 0 where not measured.
	CPUMS float64 `json:"cpu_ms,omitempty"`
	// Steps, for the one-shot run, is where its time goes.
	Steps []*benchStep `json:"steps,omitempty"`
	times []time.Duration
	cpu   time.Duration
}

func (r *benchRow) finish(bare float64) {
	slices.Sort(r.times)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	r.P50MS = ms(r.times[len(r.times)/2])
	r.P90MS = ms(r.times[len(r.times)*9/10])
	r.MinMS = ms(r.times[0])
	r.CPUMS = ms(r.cpu) / float64(len(r.times))
	if bare > 0 && r.Name != "create_destroy" {
		r.Ratio = r.P50MS / bare
	}
}

func newBenchCmd(e *env) *cobra.Command {
	var (
		runs    int
		asJSON  bool
		python  string
		api     bool
		idle    int
		seconds int
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure cove's overhead against a bare process on this machine",
		Long: `Measure cove's overhead against a bare process on this machine.

Each round runs, one after another so that all see the same machine load:
  bare            ` + "`python3 -c 'print(1)'`" + ` started directly
  run             ` + "`cove run -l python -c 'print(1)'`" + ` (a new sandbox, created and destroyed)
  exec            the same program in a sandbox that already exists
  create_destroy  creating and destroying an idle sandbox
and reports medians and ratios to bare, and where the time of the one-shot
run goes: cove run reports when it reaches each step (COVE_TRACE_FD).

With --api it starts a server on a loopback port and measures the REST API:
the overhead of an exec through the API over the same exec in-process, a
trivial cell in a stateful context (in-process and through the API) and the
memory an idle context costs, creation from the warm pool, the throughput of
POST /v1/run at concurrency 4 (between two halves of the same measure for the
bare interpreter, which it reports as a share of), and the host memory that
idle sandboxes cost.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runs < 5 {
				return cove.Errorf(cove.CodeInvalid, "--runs must be at least 5")
			}
			ctx := cmd.Context()
			if api {
				return benchAPI(ctx, e, runs, idle, seconds, python)
			}
			self, err := os.Executable()
			if err != nil {
				return cove.Errorf(cove.CodeInternal, "finding cove's own binary: %w", err)
			}
			svc, err := e.localService(ctx)
			if err != nil {
				return err
			}
			defer svc.close(ctx)
			sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{})
			if err != nil {
				return err
			}
			rows := []*benchRow{
				{Name: "bare", What: python + " -c 'print(1)'"},
				{Name: "run", What: "cove run -l python -c 'print(1)'", Steps: newBenchSteps(false)},
				{Name: "exec", What: "python3 -c 'print(1)' in an existing sandbox"},
				{Name: "create_destroy", What: "create and destroy an idle sandbox"},
			}
			cleanEnv := []string{"PATH=/usr/bin:/bin"}
			measure := func(f func() error) (time.Duration, time.Duration, error) {
				c := cpuTime()
				t := time.Now()
				err := f()
				return time.Since(t), cpuTime() - c, err
			}
			for i := 0; i < runs+2; i++ {
				steps := []func() error{
					func() error {
						c := exec.CommandContext(ctx, python, "-c", "print(1)")
						c.Env = cleanEnv
						return c.Run()
					},
					func() error {
						c := exec.CommandContext(ctx, self, "run", "-l", "python", "-c", "print(1)")
						c.Env = append(cleanEnv, "COVE_DATA_DIR="+e.cfg.DataDir, "COVE_RUN_DIR="+e.cfg.RunDir, "COVE_TRACE_FD=3")
						steps, err := runTraced(c)
						if err == nil && i >= 2 {
							addStepDurations(rows[1].Steps, steps)
						}
						return err
					},
					func() error {
						st, err := svc.Exec(ctx, sb.ID, cove.ExecRequest{Cmd: []string{"python3", "-c", "print(1)"}})
						if err != nil {
							return err
						}
						res, err := cove.Collect(st)
						if err == nil && res.Verdict != cove.VerdictOK {
							err = fmt.Errorf("exec ended %s: %s", res.Verdict, res.Stderr)
						}
						return err
					},
					func() error {
						s, err := svc.CreateSandbox(ctx, cove.SandboxSpec{})
						if err != nil {
							return err
						}
						return svc.DeleteSandbox(ctx, s.ID)
					},
				}
				for j, step := range steps {
					d, cpu, err := measure(step)
					if err != nil {
						return fmt.Errorf("%s: %w", rows[j].Name, err)
					}
					if i >= 2 { // two warm-up rounds
						rows[j].times = append(rows[j].times, d)
						rows[j].cpu += cpu
					}
				}
			}
			for _, r := range rows {
				r.finish(0)
			}
			for _, r := range rows[1:] {
				r.finish(rows[0].P50MS)
			}
			finishSteps(rows[1].Steps)
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			fmt.Fprintf(e.stdout, "%d rounds, interleaved\n\n", runs)
			fmt.Fprintf(e.stdout, "%-15s %8s %8s %8s %7s %7s  %s\n", "operation", "p50 ms", "p90 ms", "min ms", "ratio", "cpu ms", "what")
			for _, r := range rows {
				ratio := "-"
				if r.Ratio > 0 {
					ratio = fmt.Sprintf("%.2fx", r.Ratio)
				}
				cpu := "-"
				if r.Name != "exec" {
					cpu = fmt.Sprintf("%.2f", r.CPUMS)
				}
				fmt.Fprintf(e.stdout, "%-15s %8.2f %8.2f %8.2f %7s %7s  %s\n", r.Name, r.P50MS, r.P90MS, r.MinMS, ratio, cpu, r.What)
			}
			fmt.Fprintln(e.stdout, "\ncpu ms: mean user and system time of cove and the processes it waited for (the exec's")
			fmt.Fprintln(e.stdout, "processes are the sandbox's, counted when it is destroyed)")
			fmt.Fprintln(e.stdout, "\nwhere the time of `cove run` goes (p50 of each stretch, from the command's start):")
			printSteps(e.stdout, rows[1].Steps)
			return nil
		},
	}
	cmd.Flags().IntVar(&runs, "runs", 50, "measured rounds")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the results as JSON")
	cmd.Flags().StringVar(&python, "python", "/usr/bin/python3", "the bare interpreter to compare with")
	cmd.Flags().BoolVar(&api, "api", false, "measure the REST API instead: exec overhead, POST /v1/run throughput, warm-pool creates, idle sandboxes")
	cmd.Flags().IntVar(&idle, "idle", 200, "with --api: how many idle sandboxes to hold at once (0: skip)")
	cmd.Flags().IntVar(&seconds, "seconds", 10, "with --api: how long to measure POST /v1/run throughput")
	return cmd
}

// runTraced runs a `cove run` command with a pipe as its descriptor 3 for
// step tracing (COVE_TRACE_FD=3) and returns the length of each of
// runSteps.
func runTraced(c *exec.Cmd) ([]time.Duration, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	c.ExtraFiles = []*os.File{w}
	start := monotonicNanos()
	err = c.Start()
	w.Close()
	if err != nil {
		return nil, err
	}
	if err := c.Wait(); err != nil {
		return nil, err
	}
	end := monotonicNanos()
	steps, err := readSteps(r)
	if err != nil {
		return nil, err
	}
	return stepDurations(steps, start, end), nil
}

// cpuTime is the user and system time of this process and of the children
// it has waited for.
func cpuTime() time.Duration {
	var self, kids syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(kids.Utime) + tv(kids.Stime)
}
