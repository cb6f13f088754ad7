package native

import (
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove/internal/lang"
)

// TestPreparedEtcKeepsTimes checks that files copied from the host's /etc
// keep their modification times, which Python's compiled caches depend on.
func TestPreparedEtcKeepsTimes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etc")
	if err := prepareEtc(dir); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range etcFromHost {
		filepath.WalkDir(filepath.Join(dir, name), func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			rel, _ := filepath.Rel(dir, p)
			host, err := os.Stat(filepath.Join("/etc", rel))
			if err != nil {
				t.Errorf("%s: %v", rel, err)
				return nil
			}
			copied, _ := d.Info()
			if !copied.ModTime().Equal(host.ModTime()) {
				t.Errorf("%s: copied with time %v, the host's is %v", rel, copied.ModTime(), host.ModTime())
			}
			checked++
			return nil
		})
	}
	if checked == 0 {
		t.Skip("none of the /etc entries cove copies exist on this host")
	}
	// A prepared /etc of an older form is prepared again.
	if err := os.WriteFile(filepath.Join(dir, ".cove-etc"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := prepareEtc(dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ".cove-etc")); string(b) != etcStamp() {
		t.Fatalf("stamp %q after preparing again", b)
	}
	// So is one prepared by a cove that generated other files (a
	// language's module it did not have).
	os.Remove(filepath.Join(dir, lang.NodePreload[len("/etc/"):]))
	if err := os.WriteFile(filepath.Join(dir, ".cove-etc"), []byte(etcFormat+"generated 0123\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := prepareEtc(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, lang.NodePreload[len("/etc/"):])); err != nil {
		t.Fatalf("after preparing again: %v", err)
	}
}

// TestPreparedEtcHasCompiledPython checks that the Python modules cove
// puts in /etc come compiled, since a sandbox cannot cache them itself.
func TestPreparedEtcHasCompiledPython(t *testing.T) {
	if _, err := os.Stat(hostPython); err != nil {
		t.Skipf("no %s on this host: %v", hostPython, err)
	}
	dir := filepath.Join(t.TempDir(), "etc")
	if err := prepareEtc(dir); err != nil {
		t.Fatal(err)
	}
	pycs, _ := filepath.Glob(filepath.Join(dir, "cove/python/__pycache__/sitecustomize.*.pyc"))
	if len(pycs) != 1 {
		t.Fatalf("compiled sitecustomize: %v", pycs)
	}
}

// TestPrepareEtcConcurrently checks that cove processes (or one-shot runs
// in parallel) preparing one /etc at once leave each a copy it can attach:
// a copy another replaced under it made a sandbox's boot fail with
// "attaching /etc: no such file or directory".
func TestPrepareEtcConcurrently(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("open_tree needs root (run the tests as root)")
	}
	dir := filepath.Join(t.TempDir(), "etc")
	const n = 6
	var (
		prepared sync.WaitGroup
		done     sync.WaitGroup
	)
	prepared.Add(n)
	for i := 0; i < n; i++ {
		done.Add(1)
		go func() {
			defer done.Done()
			err := prepareEtc(dir)
			var m *os.File
			if err == nil {
				m, err = etcMount(dir)
			}
			prepared.Done()
			if err != nil {
				t.Error(err)
				return
			}
			defer m.Close()
			// Every other preparation has ended: the copy this one got
			// must still be whole.
			prepared.Wait()
			fd, err := unix.Openat(int(m.Fd()), ".cove-etc", unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Errorf("the prepared /etc after the others prepared theirs: %v", err)
				return
			}
			unix.Close(fd)
		}()
	}
	done.Wait()
}
