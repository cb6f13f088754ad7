package main

import (
	"errors"
	"log/slog"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/mcpserver"
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

Sandboxes run in-process by default (as root, like cove run); with --server
or COVE_URL (and COVE_API_KEY) set, on that cove server instead. Sandboxes a
session created are deleted when it ends, unless the agent asked to keep
them. cove serve also serves MCP over HTTP at /mcp.`,
		Example: `  claude mcp add cove -- cove mcp
  COVE_URL=http://127.0.0.1:7070 COVE_API_KEY=... cove mcp`,
		Args: noArgs("mcp [flags]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var level slog.Level
			level.UnmarshalText([]byte(e.cfg.LogLevel))
			log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
			var svc cove.Service
			if _, remote := e.serverURL(); remote {
				c, err := e.remoteService(ctx)
				if err != nil {
					return err
				}
				svc = c
			} else {
				l, err := e.localService(ctx)
				if err != nil {
					return err
				}
				defer l.close(ctx)
				l.sweepInBackground(ctx)
				svc = l
			}
			srv := mcpserver.New(svc, mcpserver.Options{Logger: log})
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
