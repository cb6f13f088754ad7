//go:build !amd64

package agentbin

// No agent is embedded for this architecture.
var binary []byte
