package agent

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
)

// noHang runs fn and fails the test if it has not returned within a few
// seconds, as it would if it opened one of fifos, a FIFO where a
// directory is expected, and waited for a writer; it then releases the
// open by opening the FIFOs for writing.
func noHang(t *testing.T, fifos []string, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Errorf("the operation hangs on a FIFO")
		for _, p := range fifos {
			if fd, err := unix.Open(p, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err == nil {
				unix.Close(fd)
			}
		}
		return <-done
	}
}

// TestDirectoryOpensRefuseFIFOs puts FIFOs where the upload code opens
// directories, as the sandbox's program could swap them in during an
// upload, and checks that each operation fails at once with a conflict
// that names the path, instead of waiting for a writer to the FIFO.
func TestDirectoryOpensRefuseFIFOs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mkfifo := func(rel string) string {
		p := filepath.Join(dir, rel)
		if err := unix.Mkfifo(p, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ws, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	wantNotDir := func(t *testing.T, err error, name string) {
		t.Helper()
		wantCode(t, err, cove.CodeConflict)
		if _, msg := fileErrorCode(err); !strings.Contains(msg, name+" is not a directory") {
			t.Errorf("message %q does not say that %s is not a directory", msg, name)
		}
	}

	t.Run("staging directory", func(t *testing.T) {
		p := mkfifo(".cove-upload-00000000000000ff")
		err := noHang(t, []string{p}, func() error {
			_, _, err := openDirRoot(ws, ".cove-upload-00000000000000ff", ".cove-upload-00000000000000ff", syscall.O_NOFOLLOW)
			return err
		})
		wantNotDir(t, err, ".cove-upload-00000000000000ff")
	})

	t.Run("commit destination", func(t *testing.T) {
		mustMkdir(t, filepath.Join(dir, "dest1"))
		st, err := newStage(ws, "dest1")
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, filepath.Join(dir, st.name, "f"), "x", 0o644)
		// The destination was a directory when the upload began.
		if err := os.Remove(filepath.Join(dir, "dest1")); err != nil {
			t.Fatal(err)
		}
		p := mkfifo("dest1")
		wantNotDir(t, noHang(t, []string{p}, st.commit), "dest1")
		if _, err := os.Lstat(filepath.Join(dir, st.name)); !os.IsNotExist(err) {
			t.Errorf("the staging directory is left: %v", err)
		}
	})

	t.Run("merged directory", func(t *testing.T) {
		mustMkdir(t, filepath.Join(dir, "dest2"))
		st, err := newStage(ws, "dest2")
		if err != nil {
			t.Fatal(err)
		}
		defer st.abort()
		mustMkdir(t, filepath.Join(dir, st.name, "d"))
		mustWrite(t, filepath.Join(dir, st.name, "d", "f"), "x", 0o644)
		p := mkfifo("dest2/d")
		dest, d, err := openDirRoot(ws, "dest2", "dest2", 0)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		defer dest.Close()
		// check refuses the FIFO; move, which runs after it, finds it
		// when it was swapped in between.
		wantCode(t, st.check(dest, ".", 0), cove.CodeConflict)
		wantNotDir(t, noHang(t, []string{p}, func() error { return st.move(dest, "d", 1) }), "dest2/d")
	})

	t.Run("move into a FIFO", func(t *testing.T) {
		mustWrite(t, filepath.Join(dir, "a"), "a", 0o644)
		p := mkfifo("ff")
		wantNotDir(t, noHang(t, []string{p}, func() error { return renameNoReplace(ws, "a", "ff/a") }), "ff")
	})

	t.Run("move out of a FIFO", func(t *testing.T) {
		p := mkfifo("ff2")
		mustMkdir(t, filepath.Join(dir, "to"))
		wantNotDir(t, noHang(t, []string{p}, func() error { return renameNoReplace(ws, "ff2/a", "to/a") }), "ff2")
	})

	t.Run("file put in place", func(t *testing.T) {
		p := mkfifo("ff3")
		st, err := makeStage(ws, "x")
		if err != nil {
			t.Fatal(err)
		}
		defer st.abort()
		err = noHang(t, []string{p}, func() error {
			tmp, err := writeTemp(st, "ff3/x", 0o644, func(w io.Writer) error { _, err := w.Write([]byte("x")); return err })
			if err != nil {
				return err
			}
			return st.place(tmp, "ff3/x")
		})
		wantNotDir(t, err, "ff3")
	})
}

// TestIsStageName checks that only names as makeStage makes them are
// taken for staging directories, which a boot removes.
func TestIsStageName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		".cove-upload-0123456789abcdef":  true,
		".cove-upload-0123456789abcde":   false,
		".cove-upload-0123456789abcdef0": false,
		".cove-upload-0123456789ABCDEF":  false,
		".cove-upload-notes.txt":         false,
		"cove-upload-0123456789abcdef":   false,
	} {
		if got := isStageName(name); got != want {
			t.Errorf("isStageName(%q) = %v, want %v", name, got, want)
		}
	}
	st, err := makeStage(mustRoot(t, t.TempDir()), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer st.abort()
	if !isStageName(st.name) {
		t.Errorf("isStageName(%q) = false for a staging directory", st.name)
	}
}

func mustRoot(t *testing.T, dir string) *os.Root {
	t.Helper()
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}
