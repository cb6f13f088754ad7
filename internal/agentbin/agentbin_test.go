package agentbin

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// TestEmbeddedAgentIsCurrent rebuilds the agent the way `make agent` does
// and compares it with the embedded one: a change to the agent's code
// without `make agent` fails here.
func TestEmbeddedAgentIsCurrent(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("an agent is embedded for amd64 only")
	}
	sum := sha256.Sum256(Binary())
	if got := hex.EncodeToString(sum[:]); got != Hash() {
		t.Fatalf("hash.txt says %s, the embedded binary hashes to %s: run make agent", Hash(), got)
	}
	out := filepath.Join(t.TempDir(), "cove-agent")
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", out, "../../cmd/cove-agent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the agent: %v\n%s", err, b)
	}
	built, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	bs := sha256.Sum256(built)
	if hex.EncodeToString(bs[:]) != Hash() {
		t.Fatalf("the embedded agent is out of date with its source: run make agent and commit internal/agentbin")
	}
}
