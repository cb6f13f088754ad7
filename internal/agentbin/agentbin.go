// Package agentbin holds the sandbox agent as a small separate binary,
// embedded in cove. The agent is the first process of every sandbox, so
// its start-up is on the path of every sandbox creation; the cove binary
// links a database, a web server and a TypeScript compiler whose
// initialisation the agent does not need to pay for.
//
// The embedded binary is built from cmd/cove-agent by `make agent`, which
// also records its SHA-256 in hash.txt; a test rebuilds it and fails when
// the committed one is out of date.
package agentbin

import (
	_ "embed"
	"strings"
)

//go:generate sh -c "cd ../.. && make agent"

//go:embed hash.txt
var hash string

// Hash returns the SHA-256 (hex) of the embedded agent, or "" when this
// build has none.
func Hash() string { return strings.TrimSpace(hash) }

// Binary returns the embedded agent for this architecture, or nil when
// there is none (cove then starts its own binary as the agent).
func Binary() []byte { return binary }
