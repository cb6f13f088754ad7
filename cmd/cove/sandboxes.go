package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/store"
	"github.com/cove-sandbox/cove/internal/wire"
)

func newCreateCmd(e *env) *cobra.Command {
	var (
		language     string
		envs, labels []string
		idle, ttl    time.Duration
		asJSON       bool
		lf           limitFlags
	)
	cmd := &cobra.Command{
		Use:   "create [flags]",
		Short: "Create a sandbox and print its id",
		Long: `Create a long-lived sandbox on the server and print its id.

The sandbox keeps its workspace between commands: run commands in it with
cove exec, open a shell with cove shell, copy files with cove cp. It stops
after --idle-timeout without activity and is deleted at --ttl.`,
		Example: `  id=$(cove create --lang python --memory 256M --label team=ml)
  cove exec "$id" -- python3 -c 'print(1)'
  cove create --ttl 1h --idle-timeout 10m --env DEBUG=1 --json`,
		Args: exactArgs(0, "create [flags]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec := cove.SandboxSpec{Language: language, IdleTimeout: idle, TTL: ttl}
			var err error
			if spec.Limits, err = lf.limits(); err != nil {
				return err
			}
			if spec.Env, err = pairs("--env", envs); err != nil {
				return err
			}
			if spec.Labels, err = pairs("--label", labels); err != nil {
				return err
			}
			svc, err := e.remoteService(cmd.Context())
			if err != nil {
				return err
			}
			stop := e.spin("creating sandbox", asJSON)
			sb, err := svc.CreateSandbox(cmd.Context(), spec)
			stop()
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.stdout, wire.SandboxFrom(sb))
			}
			_, err = fmt.Fprintln(e.stdout, sb.ID)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&language, "lang", "l", "", "default language of code run in the sandbox: python, javascript, typescript or bash")
	fl.StringArrayVarP(&envs, "env", "e", nil, "environment variable KEY=VALUE of every command in the sandbox (repeatable)")
	fl.StringArrayVar(&labels, "label", nil, "label KEY=VALUE to find the sandbox by (repeatable)")
	durationVar(fl, &idle, "idle-timeout", "stop the sandbox after this long without activity (default: the server's)")
	durationVar(fl, &ttl, "ttl", "delete the sandbox this long after its creation (default: the server's)")
	fl.BoolVar(&asJSON, "json", false, "print the sandbox as JSON")
	lf.register(cmd)
	return cmd
}

func newListCmd(e *env) *cobra.Command {
	var (
		labels []string
		state  string
		owner  string
		all    bool
		limit  int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:     "ls [flags]",
		Aliases: []string{"list"},
		Short:   "List sandboxes, newest first",
		Example: `  cove ls
  cove ls --label team=ml --state running
  cove ls --owner ci-7f3a2b1c9d0e      # an admin key: the sandboxes of one key
  cove ls --all --json`,
		Args: exactArgs(0, "ls [flags]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			want, err := pairs("--label", labels)
			if err != nil {
				return err
			}
			if limit < 0 || limit > store.MaxPageSize {
				return cove.Errorf(cove.CodeInvalid, "--limit %d: a page holds 1 to %d sandboxes; --all lists them all", limit, store.MaxPageSize)
			}
			svc, err := e.remoteService(cmd.Context())
			if err != nil {
				return err
			}
			opts := cove.ListOptions{Labels: want, State: cove.SandboxState(state), Owner: owner, Limit: limit}
			list := &cove.SandboxList{Sandboxes: []*cove.Sandbox{}}
			for {
				page, err := svc.ListSandboxes(cmd.Context(), opts)
				if err != nil {
					return err
				}
				list.Sandboxes = append(list.Sandboxes, page.Sandboxes...)
				list.NextPageToken = page.NextPageToken
				if !all || page.NextPageToken == "" {
					break
				}
				opts.PageToken = page.NextPageToken
			}
			if asJSON {
				out := &wire.SandboxList{Sandboxes: []*wire.Sandbox{}, NextPageToken: list.NextPageToken}
				for _, sb := range list.Sandboxes {
					out.Sandboxes = append(out.Sandboxes, wire.SandboxFrom(sb))
				}
				return writeJSON(e.stdout, out)
			}
			// An admin key sees every key's sandboxes: when the list holds
			// several keys', it says whose each is.
			owners := map[string]bool{}
			for _, sb := range list.Sandboxes {
				owners[sb.Owner] = true
			}
			head := []string{"ID", "STATE", "LANGUAGE", "LABELS", "AGE", "EXPIRES", "MEMORY", "CPUS"}
			if len(owners) > 1 {
				head = append(head, "OWNER")
			}
			t := newTable(e.stdout, head...)
			for _, sb := range list.Sandboxes {
				cells := []string{sb.ID, string(sb.State), orDash(sb.Language), orDash(labelText(sb.Labels)), age(sb.CreatedAt), expiresIn(sb.ExpiresAt),
					cove.FormatBytes(sb.Limits.MemoryBytes), strconv.FormatFloat(sb.Limits.CPUs, 'g', -1, 64)}
				if len(owners) > 1 {
					cells = append(cells, orDash(sb.Owner))
				}
				t.row(cells...)
			}
			if err := t.flush(); err != nil {
				return err
			}
			if list.NextPageToken != "" {
				fmt.Fprintln(e.stderr, "cove: more sandboxes than shown: add --all to list them all")
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&labels, "label", nil, "only sandboxes with label KEY=VALUE (repeatable: all must match)")
	fl.StringVar(&state, "state", "", "only sandboxes in this state: running, starting, stopping, stopped or error")
	fl.StringVar(&owner, "owner", "", "only the sandboxes of the key with this id (an admin key sees every key's; the OWNER column shows whose)")
	fl.BoolVarP(&all, "all", "a", false, "follow the pages to list every sandbox")
	fl.IntVar(&limit, "limit", 0, "sandboxes per page (default and maximum 100)")
	fl.BoolVar(&asJSON, "json", false, "print the list as JSON")
	return cmd
}

// batchResult is what happened to one sandbox of stop, start or rm.
type batchResult struct {
	ID      string        `json:"id"`
	OK      bool          `json:"ok"`
	Sandbox *wire.Sandbox `json:"sandbox,omitempty"`
	Error   *cove.Error   `json:"error,omitempty"`
}

// newBatchCmd builds a command that does one call on each of several
// sandboxes, reports each result, and fails if any failed.
func newBatchCmd(e *env, use, short, doing string, call func(ctx context.Context, svc cove.Service, id string) (*cove.Sandbox, error)) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   use + " ID...",
		Short: short,
		Args:  minArgs(1, use+" ID..."),
		RunE: func(cmd *cobra.Command, ids []string) error {
			svc, err := e.remoteService(cmd.Context())
			if err != nil {
				return err
			}
			results := make([]batchResult, 0, len(ids))
			exit := 0
			for _, id := range ids {
				stop := e.spin(doing+" "+id, asJSON)
				sb, err := call(cmd.Context(), svc, id)
				stop()
				if errors.Is(err, context.Canceled) {
					return err
				}
				if err = e.explain(err); err != nil {
					fmt.Fprintf(e.stderr, "cove: %s\n", printable(cove.ErrorMessage(err)))
					code := cove.ErrorCode(err)
					if exit == 0 {
						exit = cove.Codes[code].ExitCode
					}
					results = append(results, batchResult{ID: id, Error: &cove.Error{Code: code, Message: cove.ErrorMessage(err)}})
					continue
				}
				results = append(results, batchResult{ID: id, OK: true, Sandbox: wireSandbox(sb)})
				if !asJSON {
					fmt.Fprintln(e.stdout, id)
				}
			}
			if asJSON {
				if err := writeJSON(e.stdout, results); err != nil {
					return err
				}
			}
			if exit != 0 {
				return &exitError{code: exit}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each sandbox's result as JSON")
	return cmd
}

func newStopCmd(e *env) *cobra.Command {
	return newBatchCmd(e, "stop", "Stop sandboxes, keeping their workspaces", "stopping",
		func(ctx context.Context, svc cove.Service, id string) (*cove.Sandbox, error) {
			return svc.StopSandbox(ctx, id)
		})
}

func newStartCmd(e *env) *cobra.Command {
	return newBatchCmd(e, "start", "Start stopped sandboxes with their workspaces as they were", "starting",
		func(ctx context.Context, svc cove.Service, id string) (*cove.Sandbox, error) {
			return svc.StartSandbox(ctx, id)
		})
}

func newRemoveCmd(e *env) *cobra.Command {
	cmd := newBatchCmd(e, "rm", "Delete sandboxes and their workspaces", "deleting",
		func(ctx context.Context, svc cove.Service, id string) (*cove.Sandbox, error) {
			return nil, svc.DeleteSandbox(ctx, id)
		})
	cmd.Aliases = []string{"delete"}
	return cmd
}

// wireSandbox is sb as the API shows it, or nil.
func wireSandbox(sb *cove.Sandbox) *wire.Sandbox {
	if sb == nil {
		return nil
	}
	return wire.SandboxFrom(sb)
}
