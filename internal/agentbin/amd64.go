//go:build amd64

package agentbin

import _ "embed"

//go:embed cove-agent-amd64
var binary []byte
