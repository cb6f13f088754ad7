package mcpserver

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/cove-sandbox/cove"
)

// cliNetwork is the CLI's syntax in the proxy's refusal of a host outside
// a sandbox's network limit ("create the sandbox with it, e.g. --network
// example.com"), which a model reads as the network argument of its tools.
var cliNetwork = regexp.MustCompile(`e\.g\. --network ([A-Za-z0-9_.*:\[\]-]*[A-Za-z0-9_*\]])`)

// toolNetworkSyntax rewrites the proxy's suggestions in a program's
// output in the tools' terms: network: "example.com".
func toolNetworkSyntax(output string) string {
	if !strings.Contains(output, "--network ") {
		return output
	}
	return cliNetwork.ReplaceAllString(output, `e.g. network: "$1"`)
}

// networkTools are commands that fetch from the network, and may wait for
// it until their time limit in a sandbox that has none (npm retries for
// minutes): pip, npm and their kin, curl, wget, and git's commands that
// fetch.
var networkTools = map[string]bool{
	"npm": true, "npx": true, "yarn": true, "pnpm": true, "pip": true, "pip3": true, "uv": true,
	"curl": true, "wget": true,
}

// networkTool returns the network tool a shell command line runs, or "".
func networkTool(command string) string {
	words := strings.FieldsFunc(command, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	})
	for i, w := range words {
		switch {
		case networkTools[w]:
			return w
		case w == "git" && i+1 < len(words) && (words[i+1] == "clone" || words[i+1] == "fetch" || words[i+1] == "pull"):
			return "git " + words[i+1]
		}
	}
	return ""
}

// waitedForNetworkHint is the hint of a program stopped at its time
// limit in a sandbox without network, when it ran a network tool and
// printed nothing that explains the wait: the tool was likely waiting
// for the network. "" otherwise.
func waitedForNetworkHint(res *cove.ExecResult, info runInfo) string {
	tool := networkTool(info.command)
	out := strings.TrimSpace(res.Stdout + res.Stderr)
	if res.Verdict != cove.VerdictTimeout || res.Limits.HasNetwork() || tool == "" || (out != "" && !cove.ReachedNoHost(out)) {
		return ""
	}
	hosts := "the hosts it needs"
	switch tool {
	case "npm", "npx", "yarn", "pnpm":
		hosts = `the registry, such as "registry.npmjs.org"`
	case "pip", "pip3", "uv":
		hosts = `"pypi.org,files.pythonhosted.org"`
	}
	h := fmt.Sprintf("the program was stopped at its time limit, and the sandbox has no network: %s may have been waiting for one; ", tool)
	if info.newSandbox {
		return h + "pass network with " + hosts + ", or a larger timeout_seconds if it needs no network"
	}
	return h + "create a sandbox with network naming " + hosts + " (create_sandbox) and run it there, or pass a larger timeout_seconds if it needs no network"
}
