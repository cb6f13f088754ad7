// Command cove-agent is the agent that runs as PID 1 of every sandbox, built
// on its own so that it starts fast: it links only what the agent needs.
// The cove binary embeds it (package agentbin, built with `make agent`);
// cove never installs it separately.
package main

import (
	"fmt"
	"os"

	"github.com/cove-sandbox/cove/internal/agent"
)

func main() {
	if !agent.IsAgentInvocation() {
		fmt.Fprintln(os.Stderr, "cove-agent runs inside cove's sandboxes and is started by cove; run cove instead")
		os.Exit(2)
	}
	agent.Main()
}
