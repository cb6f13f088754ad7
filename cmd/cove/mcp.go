package main

import (
	"context"
	"errors"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/mcpserver"
	"github.com/cove-sandbox/cove/internal/runtime"
	"github.com/cove-sandbox/cove/internal/runtime/native"
)

func newMCPCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "mcp",
		Short: "Serve MCP over standard input and output, for AI agents",
		Long: `Serve the Model Context Protocol over standard input and output, so that an
AI agent (Claude Desktop, Claude Code, Cursor, or any MCP client) runs code in
cove's sandboxes: run_code, create_sandbox, run_in_context, exec_command,
processes and files. The agent's client starts cove mcp; standard output is
the protocol's, and logs go to standard error.

Sandboxes run in-process by default (as root, like cove run), and last as
long as the session: their TTLs and idle timeouts are enforced, and keep is
refused. With --server or COVE_URL (and COVE_API_KEY) set, they run on that
cove server instead, and those a session created are deleted when it ends,
unless the agent asked to keep them. cove serve also serves MCP over HTTP at
/mcp.`,
		Example: `  claude mcp add cove -- cove mcp
  COVE_URL=http://127.0.0.1:7070 COVE_API_KEY=... cove mcp`,
		Args: noArgs("mcp [flags]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			log := newLogger(e.stderr, e.cfg)
			var svc cove.Service
			_, remote := e.serverURL()
			if remote {
				c, err := e.remoteService(ctx)
				if err != nil {
					return err
				}
				svc = c
			} else {
				l, err := e.mcpLocalService(ctx)
				if err != nil {
					return err
				}
				defer l.close(ctx)
				l.startInBackground(ctx)
				svc = l
			}
			srv := mcpserver.New(svc, mcpserver.Options{Logger: log, InProcess: !remote})
			stdio := newAnsweredStdio(ctx, e.stdin, e.stdout)
			err := srv.Run(ctx, &mcp.IOTransport{Reader: stdio.Reader(), Writer: stdio.Writer()})
			var notJSON *mcpserver.NotJSONError
			if errors.As(err, &notJSON) {
				// The client gets the JSON-RPC answer; the person who
				// started cove mcp, the message on stderr.
				e.stdout.Write(notJSON.Parse())
			}
			return err
		},
	}
}

// mcpLocalService is localService for cove mcp, whose service runs its
// background loops (Start), so that the TTLs and idle timeouts of its
// sandboxes are enforced while the session lasts.
func (e *env) mcpLocalService(ctx context.Context) (*local, error) {
	return e.newLocal(ctx, func(b *native.Backend) runtime.Backend { return inProcessBackend{b} })
}

// inProcessBackend is the native backend of a service whose records are
// in memory. Its sweep leaves the data directory's workspaces alone, as
// a one-shot cove's does: the service's records say nothing of them, and
// they may be a cove server's stopped sandboxes.
type inProcessBackend struct{ *native.Backend }

// Sweep implements runtime.Sweeper.
func (b inProcessBackend) Sweep(ctx context.Context, _ func(id string) bool) error {
	return b.Backend.Sweep(ctx, nil)
}

// startInBackground starts the service (its reaper, after a sweep of what
// crashed runs of cove left behind) on the other core while the session
// begins; close waits for it.
func (l *local) startInBackground(ctx context.Context) {
	l.swept = make(chan struct{})
	go func() {
		defer close(l.swept)
		if err := l.Start(ctx); err != nil {
			l.log.Warn("starting the service: sandboxes' TTLs and idle timeouts are not enforced", "err", err)
		}
	}()
}
