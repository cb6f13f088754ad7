package native

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
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
	if b, _ := os.ReadFile(filepath.Join(dir, ".cove-etc")); string(b) != etcFormat {
		t.Fatalf("stamp %q after preparing again", b)
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
