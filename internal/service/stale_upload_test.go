package service

import (
	"context"
	"testing"

	"github.com/cove-sandbox/cove"
)

// TestStartRemovesStaleUploads stops a sandbox while uploads are staged
// (their staging directories, made by name, stand for uploads the stop cut
// short) and checks that the next start removes them, whatever their
// modes, and nothing else: a user's file that merely begins like one
// stays.
func TestStartRemovesStaleUploads(t *testing.T) {
	svc, _ := newStoredService(t, Options{})
	ctx := context.Background()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Language: "python"})
	if err != nil {
		t.Fatal(err)
	}
	stage := ".cove-upload-0123456789abcdef"
	if r := sh(t, svc, ctx, sb.ID, "mkdir -p "+stage+"/d/e && echo x > "+stage+"/d/e/f && echo y > "+stage+"/f1 && chmod 500 "+stage+"/d "+stage+
		" && mkdir .cove-upload-mine && echo mine > .cove-upload-0123456789abcdef0 && echo kept > kept"); r.Verdict != cove.VerdictOK {
		t.Fatalf("%+v", r)
	}
	if _, err := svc.StopSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.StartSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	r := sh(t, svc, ctx, sb.ID, "ls -A")
	if want := ".cove-upload-0123456789abcdef0\n.cove-upload-mine\nkept\n"; r.Stdout != want {
		t.Fatalf("workspace after the start: %q, want %q (stderr %q)", r.Stdout, want, r.Stderr)
	}
}
