// Command cove runs untrusted code in isolated Linux sandboxes.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/agent"
	"github.com/cove-sandbox/cove/internal/agentbin"
	"github.com/cove-sandbox/cove/internal/config"
	"github.com/cove-sandbox/cove/internal/runtime"
	"github.com/cove-sandbox/cove/internal/runtime/native"
	"github.com/cove-sandbox/cove/internal/service"
)

func main() {
	if agent.IsAgentInvocation() {
		agent.Main()
		return
	}
	openStepTrace(os.Getenv)
	traceStep(stepMain)
	// A write to a closed pipe returns an error instead of killing cove on
	// the spot, so that a program's output piped into `head` ends the
	// program and removes its sandbox.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	// SIGHUP, the terminal going away, ends a command as SIGTERM does:
	// its sandbox is removed and the terminal restored. Unless it is
	// ignored already (nohup cove serve): asking for it would undo that.
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	ctx, stop := signalContext(context.Background(), sigs...)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// printable is msg with its control characters escaped (\x1b): a message
// may repeat names that code in a sandbox chose (a file's, a link's
// target), and an escape sequence among them would act on the user's
// terminal.
func printable(msg string) string {
	if utf8.ValidString(msg) && !strings.ContainsFunc(msg, isControl) {
		return msg
	}
	var b strings.Builder
	for i := 0; i < len(msg); {
		r, n := utf8.DecodeRuneInString(msg[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			// A byte that is no character (0x9b is CSI to some
			// terminals).
			fmt.Fprintf(&b, `\x%02x`, msg[i])
		case isControl(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case isControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += n
	}
	return b.String()
}

// isControl reports whether r is a control character (C0 but tab, DEL,
// C1) or a character that reorders the text around it (bidirectional
// controls).
func isControl(r rune) bool {
	return (r < 0x20 && r != '\t') || (r >= 0x7f && r < 0xa0) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}

// signalCause ends the context of a command that a signal interrupted.
type signalCause struct{ sig syscall.Signal }

func (s signalCause) Error() string { return "interrupted by " + s.sig.String() }

// signalContext is signal.NotifyContext that also says which signal came:
// context.Cause of the context is a signalCause.
func signalContext(parent context.Context, sigs ...os.Signal) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	go func() {
		select {
		case sig := <-ch:
			if s, ok := sig.(syscall.Signal); ok {
				cancel(signalCause{s})
			} else {
				cancel(nil)
			}
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel(nil)
	}
}

// pipeWriter is standard output or error; it notes a write to a pipe
// whose reader has gone.
type pipeWriter struct {
	w      io.Writer
	broken *atomic.Bool
}

func (p *pipeWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	if errors.Is(err, syscall.EPIPE) {
		p.broken.Store(true)
	}
	return n, err
}

// brokenPipeStatus is the exit status of a command whose output went to a
// pipe that its reader closed: what the shell shows for a command killed
// by SIGPIPE, as `yes | head -1` leaves yes.
const brokenPipeStatus = 128 + int(syscall.SIGPIPE)

// exitError carries an exit status that is not an error of cove's own: the
// status of a user program that `cove run` passes through.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// env is what commands need from the process: streams, the environment and
// a way to build the service.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	cfg            config.Config
	// server is the --server flag; dialed is the server a command used.
	server, dialed string
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	var broken atomic.Bool
	stdout, stderr = &pipeWriter{stdout, &broken}, &pipeWriter{stderr, &broken}
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := newRootCmd(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := e.explain(root.ExecuteContext(ctx))
	if broken.Load() {
		// The reader of the output has gone, and the command stopped
		// for it: nothing is left to say, and nowhere to say it.
		return brokenPipeStatus
	}
	if err == nil {
		return 0
	}
	var xe *exitError
	if errors.As(err, &xe) {
		return xe.code
	}
	var sc signalCause
	if errors.As(err, &sc) || errors.Is(err, context.Canceled) {
		// A command ends with the error of its cancelled context, or with
		// a signalCause of its own (a terminal that hung up).
		if sc.sig == 0 && !errors.As(context.Cause(ctx), &sc) {
			sc.sig = syscall.SIGINT
		}
		switch sc.sig {
		case syscall.SIGTERM:
			fmt.Fprintln(stderr, "cove: terminated")
		case syscall.SIGHUP:
			fmt.Fprintln(stderr, "cove: hung up")
		default:
			fmt.Fprintln(stderr, "cove: interrupted")
			return 130
		}
		return 128 + int(sc.sig)
	}
	code := cove.ErrorCode(err)
	fmt.Fprintf(stderr, "cove: %s\n", printable(cove.ErrorMessage(err)))
	if info, ok := cove.Codes[code]; ok {
		return info.ExitCode
	}
	return 1
}

func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "cove",
		Short:         "Run untrusted code in isolated sandboxes",
		Long:          "cove runs untrusted Python, JavaScript, TypeScript and shell code in isolated Linux sandboxes\n(namespaces, cgroups, seccomp, Landlock), with limits on memory, CPU, processes, disk, time and output.",
		Version:       cove.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		// An unknown command is the user's mistake, not cove's.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
					return cove.Errorf(cove.CodeInvalid, "unknown command %q: did you mean %s? (see cove --help)", args[0], strings.Join(s, " or "))
				}
				return cove.Errorf(cove.CodeInvalid, "unknown command %q: see cove --help", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(e.getenv)
			if err != nil {
				return err
			}
			e.cfg = cfg
			return nil
		},
	}
	root.AddCommand(newRunCmd(e), newServeCmd(e), newMCPCmd(e), newBenchCmd(e), newVersionCmd(e))
	root.AddCommand(newAICmd(e))
	root.PersistentFlags().StringVar(&e.server, "server", "", "URL of the cove server (default $COVE_URL, else "+defaultServer+")")
	root.SetFlagErrorFunc(flagProblem)
	root.SuggestionsMinimumDistance = 2
	root.SetVersionTemplate("cove {{.Version}}\n")
	root.AddCommand(newCreateCmd(e), newListCmd(e), newExecCmd(e), newShellCmd(e), newCpCmd(e), newFilesCmd(e),
		newPsCmd(e), newSpawnCmd(e), newLogsCmd(e), newWaitCmd(e), newKillCmd(e), newStopCmd(e), newStartCmd(e), newRemoveCmd(e), newUpdateCmd(e), newKeysCmd(e), newReplCmd(e))
	return root
}

// nativeOptions configures the native runtime from the configuration, with
// the small agent binary embedded in cove. A server starts its agents
// through a launcher process; a one-shot command, directly.
func (e *env) nativeOptions(log *slog.Logger, server bool) native.Options {
	return native.Options{
		Launcher:        server,
		DataDir:         e.cfg.DataDir,
		RunDir:          e.cfg.RunDir,
		DisableLandlock: !e.cfg.Landlock,
		AgentBinary:     agentbin.Binary(),
		AgentHash:       agentbin.Hash(),
		Logger:          log,
	}
}

// newLogger returns the logger the configuration asks for (log_level,
// log_format), writing to w. A level or format that does not read is
// info or text: Validate refuses them where it matters.
func newLogger(w io.Writer, cfg config.Config) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// local is the in-process service on the native runtime.
type local struct {
	*service.Service
	be    *native.Backend
	log   *slog.Logger
	swept chan struct{}
}

// localService builds the in-process service on the native runtime.
func (e *env) localService(ctx context.Context) (*local, error) {
	return e.newLocal(ctx, func(b *native.Backend) runtime.Backend { return b })
}

// newLocal is localService with the backend its service gets, made from
// the native one by backend.
func (e *env) newLocal(ctx context.Context, backend func(*native.Backend) runtime.Backend) (*local, error) {
	if err := e.cfg.Validate(); err != nil {
		return nil, err
	}
	log := newLogger(e.stderr, e.cfg)
	be, err := native.New(ctx, e.nativeOptions(log, false))
	if err != nil {
		return nil, err
	}
	svc := service.New(backend(be), service.Options{Defaults: e.cfg.Limits, NetworkPrivate: e.cfg.NetworkPrivate, Logger: log, Analyzer: e.analyzer(log)})
	return &local{Service: svc, be: be, log: log}, nil
}

// sweepInBackground removes what crashed runs of cove left behind, on the
// other core while the caller's program runs; close waits for it.
func (l *local) sweepInBackground(ctx context.Context) {
	l.swept = make(chan struct{})
	go func() {
		defer close(l.swept)
		if err := l.be.Sweep(ctx, nil); err != nil {
			l.log.Warn("sweeping leftovers of earlier runs", "err", err)
		}
	}()
}

func (l *local) close(ctx context.Context) {
	if l.swept != nil {
		<-l.swept
	}
	l.Service.Close(context.WithoutCancel(ctx))
	l.be.Close()
}

func newVersionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print cove's version",
		Args:  noArgs("version"),
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(e.stdout, "cove", cove.Version)
			return nil
		},
	}
}
