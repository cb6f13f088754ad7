package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

func newPsCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ps [flags] ID",
		Short: "List a sandbox's background processes",
		Args:  exactArgs(1, "ps [flags] ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := e.remoteService(cmd.Context())
			if err != nil {
				return err
			}
			procs, err := svc.ListProcesses(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				out := wire.ProcessList{Processes: []*wire.Process{}}
				for _, p := range procs {
					out.Processes = append(out.Processes, wire.ProcessFrom(p))
				}
				return writeJSON(e.stdout, out)
			}
			t := newTable(e.stdout, "PID", "NAME", "STATE", "EXIT", "AGE", "CMD")
			for _, p := range procs {
				exit := "-"
				if p.Result != nil {
					exit = strconv.Itoa(p.Result.ExitCode)
				}
				t.row(strconv.Itoa(p.PID), orDash(p.Name), string(p.State), exit, age(p.StartedAt), strings.Join(p.Cmd, " "))
			}
			return t.flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the processes as JSON")
	return cmd
}

func newSpawnCmd(e *env) *cobra.Command {
	var (
		name, cwd string
		envs      []string
		timeout   time.Duration
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "spawn [flags] ID [--] CMD...",
		Short: "Start a background process in a sandbox and print its pid",
		Long: `Start a long-running background process in a sandbox (a server, a watcher)
and print its pid. Follow its output with cove logs -f, list it with cove ps,
stop it with cove kill.

cove's flags go before the sandbox id (or between it and --); everything
after the id is the command's, its flags too.`,
		Example: `  cove spawn --name web 3f9a1c2b7d4e -- python3 -m http.server 8000
  cove logs -f 3f9a1c2b7d4e 7`,
		RunE: func(cmd *cobra.Command, args []string) error {
			id, argv, err := idAndCommand(cmd, args)
			if err != nil {
				return err
			}
			if len(argv) == 0 {
				return cove.Errorf(cove.CodeInvalid, "nothing to run: give the command after the sandbox id (cove spawn ID -- CMD...)")
			}
			req := cove.ProcessRequest{Cmd: argv, Name: name, Cwd: cwd, Timeout: timeout}
			if req.Env, err = pairs("--env", envs); err != nil {
				return err
			}
			svc, err := e.remoteService(cmd.Context())
			if err != nil {
				return err
			}
			p, err := svc.StartProcess(cmd.Context(), id, req)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.stdout, wire.ProcessFrom(p))
			}
			_, err = fmt.Fprintln(e.stdout, p.PID)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&name, "name", "", "name shown by cove ps")
	fl.StringVarP(&cwd, "cwd", "w", "", "working directory (default /workspace)")
	fl.StringArrayVarP(&envs, "env", "e", nil, "environment variable KEY=VALUE (repeatable)")
	durationVar(fl, &timeout, "timeout", "kill the process after this long (default: never)")
	fl.BoolVar(&asJSON, "json", false, "print the process as JSON")
	return takesCommandAfterID(cmd)
}

// pidArg decodes a process id argument.
// processTarget reads the pid argument of a command on a background
// process and connects to the server that runs it.
func (e *env) processTarget(ctx context.Context, pidText string) (cove.Service, int, error) {
	pid, err := pidArg(pidText)
	if err != nil {
		return nil, 0, err
	}
	svc, err := e.remoteService(ctx)
	return svc, pid, err
}

func pidArg(s string) (int, error) {
	pid, err := strconv.Atoi(s)
	if err != nil || pid <= 0 {
		return 0, cove.Errorf(cove.CodeInvalid, "process id %q: use the number cove spawn or cove ps shows", s)
	}
	return pid, nil
}

func newLogsCmd(e *env) *cobra.Command {
	var follow, asJSON bool
	cmd := &cobra.Command{
		Use:   "logs [flags] ID PID",
		Short: "Print a background process's output",
		Long: `Print a background process's output from its start (what is kept of it);
with -f, go on until the process exits.

The exit status is 0 once the output is shown, whatever the process's own
(as with docker logs -f), so that a pipeline reading the logs does not fail
for it; cove wait exits with the process's status.`,
		Args: exactArgs(2, "logs [flags] ID PID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, pid, err := e.processTarget(cmd.Context(), args[1])
			if err != nil {
				return err
			}
			st, err := svc.ProcessLogs(cmd.Context(), args[0], pid, follow)
			if err != nil {
				return err
			}
			defer st.Close()
			enc := json.NewEncoder(e.stdout)
			for {
				ev, err := st.Next()
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return err
				}
				switch {
				case asJSON:
					if err := enc.Encode(wire.EventFrom(ev)); err != nil {
						return err
					}
				case ev.Type == cove.EventStdout:
					if _, err := e.stdout.Write(ev.Data); err != nil {
						return err
					}
				case ev.Type == cove.EventStderr:
					if _, err := e.stderr.Write(ev.Data); err != nil {
						return err
					}
				case ev.Type == cove.EventExit:
					if ev.Result.Message != "" {
						fmt.Fprintf(e.stderr, "cove: %s\n", ev.Result.Message)
					}
					if ev.Result.StdoutTruncated || ev.Result.StderrTruncated {
						fmt.Fprintf(e.stderr, "cove: the start of its output is no longer kept: cove keeps the last %s of each stream of a background process (to keep it all, send it to a file: CMD > out.log 2>&1)\n", cove.FormatBytes(cove.ProcessOutputKept))
					}
				}
				if ev.Type == cove.EventExit {
					return nil
				}
			}
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the output until the process exits")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the events as JSON lines (data as text, or base64 with \"encoding\":\"base64\" when it is not UTF-8)")
	return cmd
}

func newWaitCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "wait [flags] ID PID",
		Short: "Wait for a background process to exit, and exit with its status",
		Long: `Wait for a background process to exit, and exit with its status as cove exec
does: the process's own, or, when cove stopped it (its timeout, a limit, a
signal), a non-zero status and why on stderr. A process that has already
exited is answered at once. Ctrl-C stops the wait, not the process.`,
		Example: `  pid=$(cove spawn 3f9a1c2b7d4e -- make test)
  cove logs -f 3f9a1c2b7d4e "$pid"; cove wait 3f9a1c2b7d4e "$pid"`,
		Args: exactArgs(2, "wait [flags] ID PID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, pid, err := e.processTarget(cmd.Context(), args[1])
			if err != nil {
				return err
			}
			p, err := svc.WaitProcess(cmd.Context(), args[0], pid)
			if err != nil {
				return err
			}
			res := p.Result
			if res == nil {
				return cove.Errorf(cove.CodeInternal, "process %d exited without a result", pid)
			}
			if asJSON {
				if err := writeJSON(e.stdout, wire.ResultFrom(res)); err != nil {
					return err
				}
			} else if res.Message != "" {
				fmt.Fprintf(e.stderr, "cove: %s\n", res.Message)
			}
			return exitFor(res)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the process's result as JSON")
	return cmd
}

func newKillCmd(e *env) *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   "kill [flags] ID PID",
		Short: "Send a signal to a background process",
		Long: `Send a signal to a background process and the processes of its group.

A process that has already exited is not signalled (its pid may be another
process's by now): like kill(1) for a process that is gone, cove kill says
so on stderr, with how the process ended, and exits 121 (conflict).`,
		Args: exactArgs(2, "kill [flags] ID PID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, pid, err := e.processTarget(cmd.Context(), args[1])
			if err != nil {
				return err
			}
			return svc.SignalProcess(cmd.Context(), args[0], pid, signal)
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "SIGTERM", "signal to send: a name (SIGTERM, KILL) or a number")
	return cmd
}
