// Package nativetest sets up native backends for tests: each gets its own
// data and run directories, and everything is unmounted afterwards.
package nativetest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove/internal/runtime/native"
	"github.com/cove-sandbox/cove/internal/volume"
)

// Dirs are a test backend's directories.
type Dirs struct {
	Data, Run string
}

// New returns a native backend for t, or skips t when this host cannot run
// native sandboxes (not root). Test binaries that use it must dispatch to
// agent.Main in TestMain, since the test binary is the agent.
func New(t testing.TB) (*native.Backend, Dirs) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("native sandboxes need root (run the tests as root)")
	}
	dir := t.TempDir()
	d := Dirs{Data: filepath.Join(dir, "data"), Run: filepath.Join(dir, "run")}
	b, err := native.New(context.Background(), native.Options{DataDir: d.Data, RunDir: d.Run})
	if err != nil {
		t.Fatalf("native backend: %v", err)
	}
	t.Cleanup(func() { Cleanup(t, b, d) })
	return b, d
}

// Cleanup closes b and unmounts what it mounted under d.
func Cleanup(t testing.TB, b *native.Backend, d Dirs) {
	// The favordynmods hierarchy stays mounted system-wide otherwise; the
	// kernel keeps its mode after the unmount.
	unix.Unmount(filepath.Join(d.Run, "cgroup-favor"), unix.MNT_DETACH)
	b.Close()
	if err := volume.Unmount(d.Data); err != nil {
		t.Errorf("unmounting workspace volume: %v", err)
	}
}
