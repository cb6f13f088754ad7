package service

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
)

// TestHealthReadOnlyVolume: once the workspaces' file system has gone
// read-only (btrfs does so after a failed write, as on a full disk), the
// service's health says so and what to do, for monitoring to tell the
// operator; it is healthy again once the volume is writable.
func TestHealthReadOnlyVolume(t *testing.T) {
	svc, dirs := newTestService(t)
	ctx := context.Background()
	if err := svc.Health(ctx); err != nil {
		t.Fatalf("health of a new service: %v", err)
	}
	root := filepath.Join(dirs.Data, "volume")
	if err := unix.Mount("", root, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remounting the volume read-only: %v", err)
	}
	err := svc.Health(ctx)
	if err := unix.Mount("", root, "", unix.MS_REMOUNT, ""); err != nil {
		t.Fatalf("remounting the volume writable: %v", err)
	}
	if cove.ErrorCode(err) != cove.CodeUnavailable || !strings.Contains(cove.ErrorMessage(err), "read-only") {
		t.Errorf("health with a read-only volume: %v, want unavailable saying read-only", err)
	}
	if err := svc.Health(ctx); err != nil {
		t.Errorf("health once the volume is writable again: %v", err)
	}
}

// TestWriteReadOnlyVolume: a write to a workspace whose file system has
// gone read-only is unavailable (the host's trouble, not the request's),
// saying so.
func TestWriteReadOnlyVolume(t *testing.T) {
	svc, dirs := newTestService(t)
	ctx := context.Background()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{})
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dirs.Data, "volume")
	if err := unix.Mount("", root, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remounting the volume read-only: %v", err)
	}
	_, err = svc.WriteFile(ctx, sb.ID, "f.txt", strings.NewReader("x"), 0o644)
	if err := unix.Mount("", root, "", unix.MS_REMOUNT, ""); err != nil {
		t.Fatalf("remounting the volume writable: %v", err)
	}
	if cove.ErrorCode(err) != cove.CodeUnavailable || !strings.Contains(cove.ErrorMessage(err), "read-only") {
		t.Errorf("write to a read-only workspace: %v (code %s), want unavailable saying read-only", err, cove.ErrorCode(err))
	}
	if _, err := svc.WriteFile(ctx, sb.ID, "f.txt", strings.NewReader("x"), 0o644); err != nil {
		t.Errorf("write once the volume is writable again: %v", err)
	}
}
