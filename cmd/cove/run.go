package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/lang"
	"github.com/cove-sandbox/cove/internal/wire"
)

// limitFlags are the flags that override sandbox limits.
type limitFlags struct {
	memory, disk, tmp, output string
	network                   string
	cpus                      float64
	pids, openFiles           int
	timeout                   time.Duration
}

func (f *limitFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.memory, "memory", "", "memory limit, no swap (e.g. 64M, 1G; default 512M unless configured)")
	fl.Float64Var(&f.cpus, "cpus", 0, "CPU limit in cores (e.g. 0.5; default 1 unless configured)")
	fl.IntVar(&f.pids, "pids", 0, "process and thread limit (default 256 unless configured)")
	fl.StringVar(&f.disk, "disk", "", "workspace disk limit (default 1G unless configured)")
	fl.StringVar(&f.tmp, "tmp", "", "size of /tmp and of /dev/shm (default 64M unless configured)")
	durationVar(fl, &f.timeout, "timeout", "wall-clock limit (e.g. 2s, 1m; default 30s unless configured)")
	fl.StringVar(&f.output, "output", "", "limit of each of stdout and stderr (default 1M unless configured)")
	fl.IntVar(&f.openFiles, "open-files", 0, "open file limit (default 1024 unless configured)")
	fl.StringVar(&f.network, "network", "", `hosts the sandbox may reach through cove's HTTP proxy (e.g. "pypi.org,*.pythonhosted.org"; default none)`)
}

// limits parses the flags; unset flags stay zero (the configured default).
func (f *limitFlags) limits() (cove.Limits, error) {
	var l cove.Limits
	var probs []string
	for _, s := range []struct {
		flag, v string
		dst     *int64
	}{{"--memory", f.memory, &l.MemoryBytes}, {"--disk", f.disk, &l.DiskBytes}, {"--tmp", f.tmp, &l.TmpBytes}, {"--output", f.output, &l.OutputBytes}} {
		if s.v == "" {
			continue
		}
		n, err := cove.ParseBytes(s.v)
		if err != nil {
			probs = append(probs, s.flag+": "+cove.ErrorMessage(err))
			continue
		}
		*s.dst = n
	}
	if len(probs) > 0 {
		return l, cove.Errorf(cove.CodeInvalid, "%s", probs[0])
	}
	l.CPUs, l.Pids, l.OpenFiles, l.Timeout = f.cpus, f.pids, f.openFiles, f.timeout
	network, err := cove.NormalizeNetwork(f.network)
	if err != nil {
		return l, cove.Errorf(cove.CodeInvalid, "--%s", cove.ErrorMessage(err))
	}
	l.Network = network
	return l, l.Validate()
}

func newRunCmd(e *env) *cobra.Command {
	var (
		language, code string
		passStdin      bool
		asJSON         bool
		lf             limitFlags
	)
	cmd := &cobra.Command{
		Use:   "run [flags] (FILE | - | -c CODE) [-- ARGS...]",
		Short: "Run a program in a new sandbox and remove the sandbox afterwards",
		Long: `Run a program in a new sandbox and remove the sandbox afterwards.

The language comes from the file's extension or from -l/--lang: python (py),
javascript (js, node), typescript (ts) or bash (sh). "-" reads the program from
standard input. Arguments after "--" are passed to the program. The program's
standard input is empty unless -i passes cove's through: one that reads it
(Python's input()) gets end of file.

The exit status is the program's own. When cove stops the program (time,
memory or output limit) it says why on stderr and exits non-zero.

It runs in-process; with --server or COVE_URL set, on that server instead.`,
		Example: `  cove run hello.py
  cove run -l python -c 'print(6*7)'
  echo 'console.log(1+1)' | cove run -l javascript -
  cove run main.ts -- arg1 arg2
  cove run --memory 64M --timeout 2s --pids 64 --cpus 0.5 --json hog.py`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var progArgs []string
			if n := cmd.ArgsLenAtDash(); n >= 0 {
				args, progArgs = args[:n], args[n:]
			}
			if code == "" && cmd.Flags().Changed("code") {
				return cove.Errorf(cove.CodeInvalid, "-c is empty: give the program's text, such as -c 'print(1)'")
			}
			req, err := buildRunRequest(e, language, code, args, progArgs)
			if err != nil {
				return err
			}
			if req.Limits, err = lf.limits(); err != nil {
				return err
			}
			if passStdin {
				if code == "" && len(args) == 1 && args[0] == "-" {
					return cove.Errorf(cove.CodeInvalid, "-i passes standard input to the program, but the program itself is read from standard input (-): give the program as a file or with -c")
				}
				req.StdinReader = e.stdin
			}
			if _, remote := e.serverURL(); remote {
				svc, err := e.remoteService(cmd.Context())
				if err != nil {
					return err
				}
				traceStep(stepCreate)
				st, err := svc.Run(cmd.Context(), req)
				traceStep(stepStarted)
				if err != nil {
					return err
				}
				err = printRun(cmd.Context(), e, st, runOutput{asJSON: asJSON, stdin: passStdin, oneShot: true, terminal: e.stdinTerminal()})
				traceStep(stepRemoved)
				return err
			}
			svc, err := e.localService(cmd.Context())
			if err != nil {
				return err
			}
			defer func() {
				svc.close(cmd.Context())
				traceStep(stepRemoved)
			}()
			traceStep(stepCreate)
			st, err := svc.Run(cmd.Context(), req)
			traceStep(stepStarted)
			svc.sweepInBackground(cmd.Context())
			if err != nil {
				return err
			}
			return printRun(cmd.Context(), e, st, runOutput{asJSON: asJSON, stdin: passStdin, oneShot: true, terminal: e.stdinTerminal()})
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&language, "lang", "l", "", "language: python (py), javascript (js, node), typescript (ts), bash (sh)")
	fl.StringVarP(&code, "code", "c", "", "program text to run instead of a file")
	fl.BoolVarP(&passStdin, "stdin", "i", false, "pass standard input through to the program")
	fl.BoolVar(&asJSON, "json", false, "print one JSON object with the outputs and the verdict instead of streaming")
	lf.register(cmd)
	return cmd
}

func buildRunRequest(e *env, language, code string, args, progArgs []string) (cove.RunRequest, error) {
	var req cove.RunRequest
	switch {
	case code != "" && len(args) > 0:
		return req, cove.Errorf(cove.CodeInvalid, "give either -c CODE or a file, not both (program arguments go after --)")
	case code != "":
		if language == "" {
			return req, cove.Errorf(cove.CodeInvalid, "-c needs a language: add -l python, javascript, typescript or bash")
		}
		req.Code = code
	case len(args) == 0:
		return req, cove.Errorf(cove.CodeInvalid, "nothing to run: give a file, - for standard input, or -c CODE")
	case len(args) > 1:
		return req, cove.Errorf(cove.CodeInvalid, "too many arguments %q: program arguments go after --", args[1:])
	case args[0] == "-":
		if language == "" {
			return req, cove.Errorf(cove.CodeInvalid, "reading the program from standard input needs a language: add -l python, javascript, typescript or bash")
		}
		b, err := io.ReadAll(io.LimitReader(e.stdin, maxProgramBytes+1))
		if err != nil {
			return req, cove.Errorf(cove.CodeInvalid, "reading the program from standard input: %v", err)
		}
		if len(b) > maxProgramBytes {
			return req, cove.Errorf(cove.CodeInvalid, "the program is larger than %s", cove.FormatBytes(maxProgramBytes))
		}
		req.Code = string(b)
	default:
		path := args[0]
		b, err := readProgram(path, "", maxProgramBytes)
		if err != nil {
			return req, err
		}
		if language == "" {
			l, err := lang.ForProgram(path, b)
			if err != nil {
				return req, err
			}
			language = l.Name
		}
		req.Code = string(b)
		req.Filename = filepath.Base(path)
	}
	req.Language = language
	req.Argv = progArgs
	return req, nil
}

// maxProgramBytes is the largest program cove run reads.
const maxProgramBytes = 16 << 20

// readProgram reads a local file given on the command line (flag names
// the flag that gave it, if any): a missing file is not found, as a
// missing sandbox file is, and no more than max bytes are read, since a
// device or a pipe tells no size beforehand.
func readProgram(path, flag string, max int64) ([]byte, error) {
	name := path
	if flag != "" {
		name = flag + " " + path
	}
	fi, err := os.Stat(path)
	if err == nil && fi.IsDir() {
		return nil, cove.Errorf(cove.CodeInvalid, "%s is a directory: give a program file", name)
	}
	if err == nil && fi.Size() > max {
		return nil, cove.Errorf(cove.CodeInvalid, "%s is larger than %s", name, cove.FormatBytes(max))
	}
	var b []byte
	f, err := os.Open(path)
	if err == nil {
		b, err = io.ReadAll(io.LimitReader(f, max+1))
		f.Close()
	}
	if err != nil {
		code := cove.CodeInvalid
		if errors.Is(err, fs.ErrNotExist) {
			code = cove.CodeNotFound
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, cove.Errorf(code, "cannot read %s: %v", name, err)
	}
	if int64(len(b)) > max {
		return nil, cove.Errorf(cove.CodeInvalid, "%s is larger than %s", name, cove.FormatBytes(max))
	}
	return b, nil
}

// printRun streams the program's output (or collects it for --json) and
// turns its verdict into cove's exit status. When ctx ends (Ctrl-C) the
// program is killed, and the command says it was interrupted; when the
// output cannot be written (a closed pipe), the program is killed too.
func printRun(ctx context.Context, e *env, st cove.Stream, o runOutput) error {
	var res *cove.ExecResult
	if o.asJSON {
		r, err := cove.Collect(st)
		if err != nil {
			return err
		}
		// Interrupted, the object still says what ran, for a caller
		// that keeps a deadline of its own.
		if err := writeJSON(e.stdout, wire.ResultFrom(r)); err != nil {
			return err
		}
		if interrupted(ctx, r) {
			return ctx.Err()
		}
		return exitFor(r)
	}
	defer st.Close()
	output := false
	// The end of the output, to see whether the program failed for want
	// of a network; the last byte of each stream, and of the two, for
	// cove's own line to start a line of its own.
	var tail tailBuffer
	var lastErr, last byte
	for res == nil {
		ev, err := st.Next()
		if err != nil {
			return err
		}
		if !output && (ev.Type == cove.EventStdout || ev.Type == cove.EventStderr) {
			traceStep(stepOutput)
			output = true
		}
		switch ev.Type {
		case cove.EventStdout:
			if _, err := e.stdout.Write(ev.Data); err != nil {
				return err
			}
			tail.Write(ev.Data)
			if n := len(ev.Data); n > 0 {
				last = ev.Data[n-1]
			}
		case cove.EventStderr:
			if _, err := e.stderr.Write(ev.Data); err != nil {
				return err
			}
			tail.Write(ev.Data)
			if n := len(ev.Data); n > 0 {
				lastErr, last = ev.Data[n-1], ev.Data[n-1]
			}
		case cove.EventExit:
			traceStep(stepExit)
			res = ev.Result
		}
	}
	// cove's line goes on a line of its own: after a program's partial
	// last line on stderr, or on stdout when both show on one terminal.
	partial := lastErr != 0 && lastErr != '\n'
	if sameTarget(e.stdout, e.stderr) {
		partial = last != 0 && last != '\n'
	}
	say := func(format string, args ...any) {
		if partial {
			fmt.Fprintln(e.stderr)
			partial = false
		}
		fmt.Fprintf(e.stderr, "cove: "+format+"\n", args...)
	}
	if interrupted(ctx, res) {
		if partial {
			fmt.Fprintln(e.stderr)
		}
		return ctx.Err()
	}
	if res.Message != "" {
		say("%s", res.Message)
	}
	if res.Verdict == cove.VerdictExitNonzero {
		if hint := failureHint(tail.String(), res, o); hint != "" {
			say("%s", hint)
		}
	}
	return exitFor(res)
}

// runOutput says how printRun shows a run.
type runOutput struct {
	asJSON bool
	// stdin is whether the program was given cove's standard input (-i).
	stdin bool
	// oneShot is whether the run's limits are the command's own (cove
	// run), rather than its sandbox's.
	oneShot bool
	// terminal is whether cove's standard input is a terminal.
	terminal bool
}

// failureHint says, from the end of the output of a program that failed,
// what it likely lacked that cove withholds, and how to give it; "" when
// nothing fits.
func failureHint(tail string, res *cove.ExecResult, o runOutput) string {
	limit := func(what, flag string) string {
		if o.oneShot {
			return what + ": " + flag + " gives more"
		}
		return what + ": the sandbox's limits are set when it is created (cove create " + flag + ")"
	}
	switch {
	case lang.PipRefusedSystemInstall(tail):
		// pip says so before it tries the network.
		hint := "pip does not install into the system's Python; the host's packages are importable already, and others go into a virtual environment: python3 -m venv .venv && .venv/bin/pip install PACKAGE"
		if !res.Limits.HasNetwork() {
			hint += " (with --network pypi.org,files.pythonhosted.org, in the same run)"
		}
		return hint
	case !res.Limits.HasNetwork() && cove.ReachedNoHost(tail):
		return "the program could not reach a host: the sandbox has no network; give it the hosts it needs with --network (for pip install: --network pypi.org,files.pythonhosted.org)"
	case !o.stdin && o.terminal && strings.Contains(tail, "EOFError: EOF when reading a line"):
		return "the program read standard input, which it does not get without -i: cove run -i passes yours through"
	case strings.Contains(tail, "Disk quota exceeded"):
		return limit(fmt.Sprintf("the program filled the workspace's disk limit of %s", cove.FormatBytes(res.Limits.DiskBytes)), "--disk")
	case strings.Contains(tail, "No space left on device"):
		return limit(fmt.Sprintf("the program likely filled /tmp or /dev/shm (%s each)", cove.FormatBytes(res.Limits.TmpBytes)), "--tmp")
	case strings.Contains(tail, "Too many open files"):
		return limit(fmt.Sprintf("the program reached the limit of %d open files", res.Limits.OpenFiles), "--open-files")
	case strings.Contains(tail, "Resource temporarily unavailable") && (strings.Contains(tail, "fork") || strings.Contains(tail, "thread")),
		strings.Contains(tail, "can't start new thread"):
		return limit(fmt.Sprintf("the program likely reached the limit of %d processes and threads", res.Limits.Pids), "--pids")
	}
	return ""
}

// sameTarget reports whether a and b write to the same file (one
// terminal, say), so that what either writes shows in one sequence.
func sameTarget(a, b io.Writer) bool {
	fa, fb := fileOf(a), fileOf(b)
	if fa == nil || fb == nil {
		return false
	}
	sa, err1 := fa.Stat()
	sb, err2 := fb.Stat()
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// fileOf is the *os.File under w, or nil.
func fileOf(w io.Writer) *os.File {
	if p, ok := w.(*pipeWriter); ok {
		w = p.w
	}
	f, _ := w.(*os.File)
	return f
}

// interrupted reports whether the program was killed because ctx ended
// (the user pressed Ctrl-C), which an in-process run reports as a result.
func interrupted(ctx context.Context, res *cove.ExecResult) bool {
	return ctx.Err() != nil && res.Verdict == cove.VerdictKilled
}

// tailBuffer keeps the last 16 KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) {
	const keep = 16 << 10
	t.b = append(t.b, p...)
	if len(t.b) > keep {
		t.b = append(t.b[:0], t.b[len(t.b)-keep:]...)
	}
}

func (t *tailBuffer) String() string { return string(t.b) }

func exitFor(res *cove.ExecResult) error {
	code := res.ExitCode
	if code == 0 && res.Verdict != cove.VerdictOK {
		code = 1
	}
	if code == 0 {
		return nil
	}
	return &exitError{code: code}
}
