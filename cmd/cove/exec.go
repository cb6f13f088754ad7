package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/cove-sandbox/cove"
)

func newExecCmd(e *env) *cobra.Command {
	var (
		cwd     string
		envs    []string
		stdin   bool
		timeout time.Duration
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "exec [flags] ID [--] CMD...",
		Short: "Run a command in a sandbox",
		Long: `Run a command in a sandbox and stream its output.

cove's flags go before the sandbox id (or between it and --); everything
after the id is the command's, its flags too, as with docker exec.

The exit status is the command's own. When cove stops the command (time,
memory or output limit) it says why on stderr and exits non-zero.`,
		Example: `  cove exec 3f9a1c2b7d4e -- python3 -c 'print(1)'
  cove exec --cwd /tmp 3f9a1c2b7d4e -- ls -la
  echo hello | cove exec -i 3f9a1c2b7d4e -- wc -c`,
		RunE: func(cmd *cobra.Command, args []string) error {
			id, argv, err := idAndCommand(cmd, args)
			if err != nil {
				return err
			}
			if len(argv) == 0 {
				return cove.Errorf(cove.CodeInvalid, "nothing to run: give the command after the sandbox id (cove exec ID -- CMD...)")
			}
			req := cove.ExecRequest{Cmd: argv, Cwd: cwd, Timeout: timeout}
			if req.Env, err = pairs("--env", envs); err != nil {
				return err
			}
			if stdin {
				req.StdinReader = e.stdin
			}
			svc, err := e.remoteService(cmd.Context())
			if err != nil {
				return err
			}
			st, err := svc.Exec(cmd.Context(), id, req)
			if err != nil {
				return err
			}
			return printRun(cmd.Context(), e, st, runOutput{asJSON: asJSON, stdin: stdin, terminal: e.stdinTerminal()})
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&cwd, "cwd", "w", "", "working directory (default /workspace)")
	fl.StringArrayVarP(&envs, "env", "e", nil, "environment variable KEY=VALUE (repeatable)")
	fl.BoolVarP(&stdin, "stdin", "i", false, "pass standard input through to the command")
	durationVar(fl, &timeout, "timeout", "wall-clock limit (default: the sandbox's)")
	fl.BoolVar(&asJSON, "json", false, "print one JSON object with the outputs and the verdict instead of streaming")
	return takesCommandAfterID(cmd)
}
