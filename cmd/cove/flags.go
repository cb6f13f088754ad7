package main

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

// durationValue is a duration flag that takes what the API and the
// configuration take: a duration such as 30s or 1m30s, or a number of
// seconds.
type durationValue time.Duration

func (d *durationValue) Set(s string) error {
	v, err := wire.ParseDuration(s)
	if err != nil {
		return errors.New("not a duration: use e.g. 30s, 2m or 1h30m, or a number of seconds")
	}
	*d = durationValue(v)
	return nil
}

// String is empty for zero, which the help then leaves out as a default.
func (d *durationValue) String() string {
	if *d == 0 {
		return ""
	}
	return time.Duration(*d).String()
}
func (d *durationValue) Type() string { return "duration" }

// durationVar defines a duration flag (see durationValue).
func durationVar(fl *pflag.FlagSet, p *time.Duration, name, usage string) {
	fl.Var((*durationValue)(p), name, usage)
}

// flagProblem turns cobra's and pflag's complaints about flags into cove's
// words: an invalid value is named with what the flag takes.
func flagProblem(cmd *cobra.Command, err error) error {
	var bad *pflag.InvalidValueError
	if errors.As(err, &bad) {
		why := bad.Unwrap().Error()
		var ne *strconv.NumError
		if errors.As(err, &ne) {
			switch {
			case errors.Is(ne.Err, strconv.ErrRange):
				why = "out of range"
			case ne.Func == "ParseFloat":
				why = "not a number"
			case ne.Func == "ParseBool":
				why = "not true or false"
			default:
				why = "not a whole number"
			}
		}
		if takes, ok := numericFlags[bad.GetFlag().Name]; ok {
			return cove.Errorf(cove.CodeInvalid, "--%s %q: %s: use %s", bad.GetFlag().Name, bad.GetValue(), why, takes)
		}
		return cove.Errorf(cove.CodeInvalid, "--%s %q: %s (see %s --help)", bad.GetFlag().Name, bad.GetValue(), why, cmd.CommandPath())
	}
	var unknown *pflag.NotExistError
	if cmd.Name() == "exec" && errors.As(err, &unknown) && (unknown.GetSpecifiedName() == "t" || unknown.GetSpecifiedName() == "tty") {
		// docker exec -it: the user wants a terminal, which is cove shell.
		return cove.Errorf(cove.CodeInvalid, "%v: cove exec runs a command without a terminal; for an interactive terminal use cove shell ID [-- CMD...]", err)
	}
	if takesCommand[cmd.Name()] && strings.HasPrefix(err.Error(), "unknown ") {
		// Most likely the program's own flag, given without --.
		return cove.Errorf(cove.CodeInvalid, "%v: if it is the program's, put the command after --: cove %s ID -- CMD ARGS...", err, cmd.Name())
	}
	return cove.Errorf(cove.CodeInvalid, "%v (see %s --help)", err, cmd.CommandPath())
}

// numericFlags says what the numeric limit flags take, for a value that
// is not a number at all.
var numericFlags = map[string]string{
	"cpus":       fmt.Sprintf("a number of cores from 0.01 to %d, such as 0.5", cove.MaxCPUs),
	"pids":       fmt.Sprintf("a whole number from %d to %d", cove.MinPids, cove.MaxPids),
	"open-files": fmt.Sprintf("a whole number from %d to %d", cove.MinOpenFiles, cove.MaxOpenFiles),
}

// takesCommand are the commands that run a command given after --.
var takesCommand = map[string]bool{"exec": true, "spawn": true, "shell": true}

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

// takesCommandAfterID makes cmd, of the form `[flags] ID [--] CMD...`,
// stop reading its own flags at the sandbox id, as docker exec does, so
// that the command's flags stay the command's even without --:
// `cove exec ID sed -i s/a/b/ f` passes -i to sed. Flags between the id
// and a -- are still cove's (idAndCommand reads them).
func takesCommandAfterID(cmd *cobra.Command) *cobra.Command {
	cmd.Flags().SetInterspersed(false)
	return cmd
}

// idAndCommand splits the arguments of a command made by
// takesCommandAfterID, `ID [--] CMD...` or `ID FLAGS... -- CMD...`, into
// the sandbox id and the command, reading cove's flags given between the
// id and --.
func idAndCommand(cmd *cobra.Command, args []string) (string, []string, error) {
	if len(args) == 0 || args[0] == "--" {
		return "", nil, cove.Errorf(cove.CodeInvalid, "give a sandbox id: cove %s ID -- CMD...", cmd.Name())
	}
	id, rest := args[0], args[1:]
	if len(rest) == 0 || !strings.HasPrefix(rest[0], "-") {
		// The command, with all its arguments, flags or not.
		return id, rest, nil
	}
	if rest[0] == "--" {
		return id, rest[1:], nil
	}
	dash := slices.Index(rest, "--")
	if dash < 0 {
		flag := rest[0]
		if f := lookupFlag(cmd, flag); f != nil && f.NoOptDefVal == "" && !strings.Contains(flag, "=") && len(rest) > 1 {
			flag += " " + rest[1] // with its value
		}
		return "", nil, cove.Errorf(cove.CodeInvalid, "%s after the sandbox id: cove's flags go before the id (cove %s %s ID CMD...), or between the id and -- (cove %s ID %s -- CMD...); a command's own flags go after it", rest[0], cmd.Name(), flag, cmd.Name(), flag)
	}
	if err := cmd.Flags().Parse(rest[:dash]); err != nil {
		return "", nil, flagProblem(cmd, err)
	}
	if extra := cmd.Flags().Args(); len(extra) > 0 {
		return "", nil, cove.Errorf(cove.CodeInvalid, "too many arguments before --: %q is no flag of cove %s; give one sandbox id, then the command after --", extra[0], cmd.Name())
	}
	return id, rest[dash+1:], nil
}

// lookupFlag is the flag of cmd that arg (-x, --name, --name=value)
// names, or nil.
func lookupFlag(cmd *cobra.Command, arg string) *pflag.Flag {
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	if strings.HasPrefix(arg, "--") {
		return cmd.Flags().Lookup(name)
	}
	if len(name) == 1 {
		return cmd.Flags().ShorthandLookup(name)
	}
	return nil
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

// noArgs is cobra.NoArgs with an error in cove's words.
func noArgs(usage string) cobra.PositionalArgs { return exactArgs(0, usage) }

// commandGroup makes cmd, which only holds subcommands, refuse an unknown
// one instead of showing its help and exiting 0 as if it had run; alone,
// it shows its help.
func commandGroup(cmd *cobra.Command) *cobra.Command {
	cmd.SuggestionsMinimumDistance = 2
	cmd.Args = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			if s := c.SuggestionsFor(args[0]); len(s) > 0 {
				return cove.Errorf(cove.CodeInvalid, "unknown command %q for %s: did you mean %s? (see %s --help)", args[0], c.CommandPath(), strings.Join(s, " or "), c.CommandPath())
			}
			return cove.Errorf(cove.CodeInvalid, "unknown command %q for %s: see %s --help", args[0], c.CommandPath(), c.CommandPath())
		}
		return nil
	}
	cmd.RunE = func(c *cobra.Command, args []string) error { return c.Help() }
	return cmd
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
