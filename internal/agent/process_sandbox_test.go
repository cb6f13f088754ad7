package agent_test

import (
	"testing"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/agent"
)

// TestSpawnNamesAMissingWorkingDirectory: a background process whose
// working directory is missing or a file is refused the way an execution
// is, naming the directory rather than the program.
func TestSpawnNamesAMissingWorkingDirectory(t *testing.T) {
	c, ctx := newSandbox(t, "spawncwd", cove.DefaultLimits())
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	if err := c.WriteFiles(ctx, []agent.File{{Path: "afile", Data: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string]string{
		"/nope":            "working directory /nope: no such directory",
		"/workspace/afile": "working directory /workspace/afile: not a directory",
	} {
		_, err := c.Spawn(ctx, &agent.ExecSpec{Argv: []string{"sleep", "1"}, Env: env, Dir: dir}, "")
		wantError(t, "spawning in "+dir, err, cove.CodeInvalid)
		if got := cove.ErrorMessage(err); got != want {
			t.Errorf("spawning in %s: %q, want %q", dir, got, want)
		}
	}
	info, err := c.Spawn(ctx, &agent.ExecSpec{Argv: []string{"true"}, Env: env, Dir: "/workspace"}, "")
	if err != nil || info.PID == 0 {
		t.Fatalf("spawning in /workspace: %+v, %v", info, err)
	}
}
