package mcpserver

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/google/jsonschema-go/jsonschema"
	"golang.org/x/sys/unix"
)

// signalArgument is the name of kill_process's signal argument. Its
// schema lists signal names ("SIGTERM"); the tool takes them as the
// service does too: without SIG, in any case, or by number.
const signalArgument = "signal"

// signalAlias returns the name in the schema's enum that the value v of
// argument name stands for, when the argument is a signal given another
// way ("TERM", "sigkill", "9" or 9). A signal the enum does not hold is
// left as it is, for the enum's error to name.
func signalAlias(name string, p *jsonschema.Schema, v any) (string, bool) {
	if name != signalArgument || slices.Contains(p.Enum, v) {
		return "", false
	}
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case json.Number:
		s = v.String()
	default:
		return "", false
	}
	n := strings.ToUpper(strings.TrimSpace(s))
	if num, err := strconv.Atoi(n); err == nil && num > 0 && num < 65 {
		n = unix.SignalName(syscall.Signal(num))
	} else if !strings.HasPrefix(n, "SIG") {
		n = "SIG" + n
	}
	if n == "" || !slices.Contains(p.Enum, any(n)) {
		return "", false
	}
	return n, true
}

// signalSpellings maps the names of the given signals, with and without
// SIG, to the names, for suggestions: "TREM" suggests SIGTERM.
func signalSpellings(names []string) map[string]string {
	spellings := map[string]string{}
	for _, n := range names {
		spellings[n] = n
		spellings[strings.TrimPrefix(n, "SIG")] = n
	}
	return spellings
}
