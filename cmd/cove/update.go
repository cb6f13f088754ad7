package main

import (
	"fmt"
	"maps"
	"time"

	"github.com/spf13/cobra"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

// newUpdateCmd changes what a sandbox's owner may change after its
// creation: its time to live and its labels.
func newUpdateCmd(e *env) *cobra.Command {
	var (
		ttl           time.Duration
		noTTL         bool
		labels, unset []string
		asJSON        bool
	)
	cmd := &cobra.Command{
		Use:   "update ID [flags]",
		Short: "Change a sandbox's time to live or labels",
		Long: `Change a sandbox's time to live or its labels.

--ttl starts the time to live again from now: a sandbox due to be deleted
soon gets another hour with --ttl 1h. --no-ttl keeps it until it is
deleted. --label adds or replaces a label, --remove-label removes one; the
other labels stay. cove ls shows when each sandbox's TTL ends.`,
		Example: `  cove update "$id" --ttl 2h
  cove update "$id" --label stage=done --remove-label wip
  cove update "$id" --no-ttl --json`,
		Args: exactArgs(1, "update ID [flags]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			fl := cmd.Flags()
			if !fl.Changed("ttl") && !noTTL && len(labels) == 0 && len(unset) == 0 {
				return cove.Errorf(cove.CodeInvalid, "nothing to change: give --ttl, --no-ttl, --label or --remove-label")
			}
			if fl.Changed("ttl") && noTTL {
				return cove.Errorf(cove.CodeInvalid, "--ttl and --no-ttl contradict each other: give one")
			}
			if fl.Changed("ttl") && ttl <= 0 {
				return cove.Errorf(cove.CodeInvalid, "--ttl %s: give a positive duration such as 1h, or --no-ttl to keep the sandbox until it is deleted", ttl)
			}
			set, err := pairs("--label", labels)
			if err != nil {
				return err
			}
			for _, k := range unset {
				if _, both := set[k]; both {
					return cove.Errorf(cove.CodeInvalid, "--label %s=%s and --remove-label %s contradict each other: give one", k, set[k], k)
				}
			}
			svc, err := e.remoteService(cmd.Context())
			if err != nil {
				return err
			}
			var u cove.SandboxUpdate
			switch {
			case noTTL:
				u.TTL = new(time.Duration)
			case fl.Changed("ttl"):
				u.TTL = &ttl
			}
			if len(set) > 0 || len(unset) > 0 {
				// Labels are replaced as a whole: start from the current ones.
				sb, err := svc.GetSandbox(cmd.Context(), id)
				if err != nil {
					return err
				}
				u.Labels = maps.Clone(sb.Labels)
				if u.Labels == nil {
					u.Labels = map[string]string{}
				}
				for _, k := range unset {
					if _, ok := u.Labels[k]; !ok {
						return cove.Errorf(cove.CodeInvalid, "--remove-label %s: sandbox %s has no such label (it has: %s)", k, id, orDash(labelText(sb.Labels)))
					}
					delete(u.Labels, k)
				}
				maps.Copy(u.Labels, set)
			}
			sb, err := svc.UpdateSandbox(cmd.Context(), id, u)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.stdout, wire.SandboxFrom(sb))
			}
			_, err = fmt.Fprintf(e.stdout, "%s: expires %s; labels %s\n", sb.ID, expiresText(sb.ExpiresAt), orDash(labelText(sb.Labels)))
			return err
		},
	}
	fl := cmd.Flags()
	durationVar(fl, &ttl, "ttl", "delete the sandbox this long from now")
	fl.BoolVar(&noTTL, "no-ttl", false, "keep the sandbox until it is deleted")
	fl.StringArrayVar(&labels, "label", nil, "add or replace the label KEY=VALUE (repeatable)")
	fl.StringArrayVar(&unset, "remove-label", nil, "remove the label KEY (repeatable)")
	fl.BoolVar(&asJSON, "json", false, "print the sandbox as JSON")
	return cmd
}

// expiresText says when a TTL ends, for a sentence: "in 59m (at
// 2026-12-05 22:10)" or "never".
func expiresText(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return expiresIn(t) + " (at " + timestamp(t) + ")"
}
