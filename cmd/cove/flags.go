package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/cove-sandbox/cove"
)

// pairs decodes repeated K=V flag values into a map (nil when none).
func pairs(flag string, vals []string) (map[string]string, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(vals))
	for _, v := range vals {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return nil, cove.Errorf(cove.CodeInvalid, "%s %q: use KEY=VALUE", flag, v)
		}
		m[k] = val
	}
	return m, nil
}

// idAndCommand splits `ID [--] CMD...` into the sandbox id and the command.
func idAndCommand(cmd *cobra.Command, args []string) (string, []string, error) {
	dash := cmd.ArgsLenAtDash()
	if len(args) == 0 || dash == 0 {
		return "", nil, cove.Errorf(cove.CodeInvalid, "give a sandbox id: cove %s ID -- CMD...", cmd.Name())
	}
	if dash > 1 {
		return "", nil, cove.Errorf(cove.CodeInvalid, "too many arguments before --: give one sandbox id, then the command after --")
	}
	return args[0], args[1:], nil
}

// exactArgs is cobra.ExactArgs with an error in cove's words.
func exactArgs(n int, usage string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return cove.Errorf(cove.CodeInvalid, "usage: cove %s", usage)
		}
		return nil
	}
}

// minArgs is cobra.MinimumNArgs with an error in cove's words.
func minArgs(n int, usage string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return cove.Errorf(cove.CodeInvalid, "usage: cove %s", usage)
		}
		return nil
	}
}

// rangeArgs is cobra.RangeArgs with an error in cove's words.
func rangeArgs(lo, hi int, usage string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return cove.Errorf(cove.CodeInvalid, "usage: cove %s", usage)
		}
		return nil
	}
}
