package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

func newKeysCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list and revoke API keys (admin only)",
		Long: `Create, list and revoke the server's API keys. Every sandbox belongs to the
key that created it; other keys, except admin keys, cannot see it.`,
	}
	cmd.AddCommand(newKeysCreateCmd(e), newKeysListCmd(e), newKeysRevokeCmd(e))
	return commandGroup(cmd)
}

func newKeysCreateCmd(e *env) *cobra.Command {
	var (
		spec      cove.KeySpec
		maxMemory string
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "create [flags]",
		Short: "Create an API key and print it once",
		Example: `  cove keys create --name ci --max-sandboxes 10 --max-memory 4G
  export COVE_API_KEY=$(cove keys create --name me --json | jq -r .key)`,
		Args: exactArgs(0, "keys create [flags]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if maxMemory != "" {
				n, err := cove.ParseBytes(maxMemory)
				if err != nil {
					return cove.Errorf(cove.CodeInvalid, "--max-memory: %s", cove.ErrorMessage(err))
				}
				spec.Quota.MaxMemoryBytes = n
			}
			svc, err := e.remoteService(cmd.Context())
			if err != nil {
				return err
			}
			k, err := svc.CreateKey(cmd.Context(), spec)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.stdout, &wire.NewKey{Key: *wire.KeyFrom(&k.Key), Secret: k.Secret})
			}
			fmt.Fprintf(e.stdout, "id:   %s\nname: %s\nkey:  %s\n", k.ID, orDash(k.Name), k.Secret)
			fmt.Fprintln(e.stderr, "Keep this key now: it is not shown again.")
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&spec.Name, "name", "", "a name to recognise the key by")
	fl.BoolVar(&spec.Admin, "admin", false, "the key may manage keys and see every sandbox")
	fl.IntVar(&spec.Quota.MaxSandboxes, "max-sandboxes", 0, "most sandboxes the key may have at once (default: unlimited)")
	fl.IntVar(&spec.Quota.MaxConcurrentExecs, "max-execs", 0, "most commands the key may run at once (default: unlimited)")
	fl.StringVar(&maxMemory, "max-memory", "", "most memory the key's sandboxes may have in total, e.g. 4G (default: unlimited)")
	fl.BoolVar(&asJSON, "json", false, "print the key as JSON")
	return cmd
}

func newKeysListCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "ls [flags]",
		Aliases: []string{"list"},
		Short:   "List API keys (never their secrets)",
		Args:    exactArgs(0, "keys ls [flags]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := e.remoteService(cmd.Context())
			if err != nil {
				return err
			}
			keys, err := svc.ListKeys(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				out := wire.KeyList{Keys: []*wire.Key{}}
				for _, k := range keys {
					out.Keys = append(out.Keys, wire.KeyFrom(k))
				}
				return writeJSON(e.stdout, out)
			}
			unlimited := func(n int64, format func(int64) string) string {
				if n == 0 {
					return "-"
				}
				return format(n)
			}
			count := func(n int64) string { return strconv.FormatInt(n, 10) }
			t := newTable(e.stdout, "ID", "NAME", "ADMIN", "SANDBOXES", "EXECS", "MEMORY", "CREATED", "REVOKED")
			for _, k := range keys {
				revoked := "-"
				if k.RevokedAt != nil {
					revoked = timestamp(*k.RevokedAt)
				}
				admin := "no"
				if k.Admin {
					admin = "yes"
				}
				t.row(k.ID, orDash(k.Name), admin,
					unlimited(int64(k.Quota.MaxSandboxes), count), unlimited(int64(k.Quota.MaxConcurrentExecs), count),
					unlimited(k.Quota.MaxMemoryBytes, cove.FormatBytes), timestamp(k.CreatedAt), revoked)
			}
			return t.flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the keys as JSON")
	return cmd
}

func newKeysRevokeCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key; its sandboxes stay until deleted",
		Long: `Revoke an API key: requests with it are refused from now on. Its sandboxes
stay until deleted (an admin key sees them). Revoking a key that is revoked
already changes nothing, and says so.`,
		Args: exactArgs(1, "keys revoke ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			id := args[0]
			svc, err := e.remoteService(ctx)
			if err != nil {
				return err
			}
			// Revoking is idempotent, so the server's answer does not
			// tell a revoked key from one revoked before: the list does.
			if at := revokedAt(ctx, svc, id); at != nil {
				fmt.Fprintf(e.stdout, "key %s was already revoked, on %s\n", id, timestamp(*at))
				return nil
			}
			if err := svc.RevokeKey(ctx, id); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "revoked key %s\n", id)
			return nil
		},
	}
}

// revokedAt returns when the key id was revoked, or nil when it is not,
// or when the list of keys cannot be had (RevokeKey then says why).
func revokedAt(ctx context.Context, svc cove.Service, id string) *time.Time {
	keys, err := svc.ListKeys(ctx)
	if err != nil {
		return nil
	}
	for _, k := range keys {
		if k.ID == id {
			return k.RevokedAt
		}
	}
	return nil
}
