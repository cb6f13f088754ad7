package agent

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/cove-sandbox/cove"
)

// testUID is the sandbox user of the tests that run as root: an id no
// file of the host belongs to, so that ownership and permission checks
// show that operations run as the user.
const testUID = 424242

// testWorkspace is a workspace directory for the operations under test,
// with a directory beside it that no operation may touch: it belongs to
// the test user, so an operation that escaped would succeed there.
type testWorkspace struct {
	fs      workspaceFS
	dir     string // the workspace
	outside string
	// asOther is set when the operations run with ids other than the
	// test's (the test runs as root), so ownership can be checked.
	asOther bool
}

func newTestWorkspace(t testing.TB) *testWorkspace {
	t.Helper()
	base := t.TempDir()
	uid, gid := os.Getuid(), os.Getgid()
	tw := &testWorkspace{dir: filepath.Join(base, "ws"), outside: filepath.Join(base, "outside")}
	if uid == 0 {
		uid, gid = testUID, testUID
		tw.asOther = true
		// The user must reach the workspace, as it reaches /workspace.
		for _, d := range []string{base, filepath.Dir(base)} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	tw.fs = workspaceFS{dir: tw.dir, uid: uid, gid: gid}
	mustMkdir(t, tw.dir)
	mustMkdir(t, filepath.Join(tw.outside, "sub"))
	mustWrite(t, filepath.Join(tw.outside, "secret"), "secret\n", 0o666)
	mustWrite(t, filepath.Join(tw.outside, "sub", "deep"), "deep secret\n", 0o666)
	for _, p := range []string{tw.dir, tw.outside, filepath.Join(tw.outside, "sub"), filepath.Join(tw.outside, "secret"), filepath.Join(tw.outside, "sub", "deep")} {
		if err := os.Lchown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshot(t, tw.outside)
	t.Cleanup(func() {
		if after := snapshot(t, tw.outside); after != before {
			t.Errorf("the directory outside the workspace changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
	return tw
}

// path returns the host path of a workspace path.
func (tw *testWorkspace) path(rel string) string { return filepath.Join(tw.dir, rel) }

func (tw *testWorkspace) write(t *testing.T, rel, data string) {
	t.Helper()
	if err := tw.fs.writeFiles([]File{{Path: rel, Data: []byte(data)}}); err != nil {
		t.Fatalf("writing %s: %v", rel, err)
	}
}

func (tw *testWorkspace) symlink(t *testing.T, target, rel string) {
	t.Helper()
	if err := os.Symlink(target, tw.path(rel)); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(tw.path(rel), tw.fs.uid, tw.fs.gid); err != nil {
		t.Fatal(err)
	}
}

func (tw *testWorkspace) read(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(tw.path(rel))
	if err != nil {
		t.Fatalf("reading %s: %v", rel, err)
	}
	return string(b)
}

// checkOwned checks that the workspace path rel belongs to the test user.
func (tw *testWorkspace) checkOwned(t *testing.T, rel string) {
	t.Helper()
	if !tw.asOther {
		return
	}
	fi, err := os.Lstat(tw.path(rel))
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != testUID || st.Gid != testUID {
		t.Errorf("%s belongs to %d:%d, want %d:%d", rel, st.Uid, st.Gid, testUID, testUID)
	}
}

func mustMkdir(t testing.TB, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t testing.TB, p, data string, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// snapshot describes a tree: every entry's path, type, mode, owner, size,
// content and link target.
func snapshot(t testing.TB, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		fmt.Fprintf(&b, "%s %v %d:%d %d", strings.TrimPrefix(p, dir), fi.Mode(), st.Uid, st.Gid, fi.Size())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", l)
		case fi.Mode().IsRegular():
			c, _ := os.ReadFile(p)
			if len(c) > 64 {
				fmt.Fprintf(&b, " sha256:%x", sha256.Sum256(c))
			} else {
				fmt.Fprintf(&b, " %q", c)
			}
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// wantCode checks that err is an operation error with code.
func wantCode(t *testing.T, err error, code cove.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	if got, msg := fileErrorCode(err); got != code {
		t.Fatalf("got %s error %q, want %s", got, msg, code)
	}
}

func TestCleanRelPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
	}{
		{"a.py", "a.py"},
		{"src//main.py", "src/main.py"},
		{"./a/./b/", "a/b"},
		{"a/../b", "b"},
		{".", "."},
		{"/workspace", "."},
		{"/workspace/", "."},
		{"/workspace/src/x", "src/x"},
		{"/workspace/../workspace/x", "x"},
		{"", ""},
		{"..", ""},
		{"../x", ""},
		{"a/../../x", ""},
		{"/etc/passwd", ""},
		{"/workspacefoo/x", ""},
		{"/workspace/../etc", ""},
		{"/", ""},
		{"a\x00b", ""},
	} {
		got, err := cleanRelPath(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("cleanRelPath(%q) = %q, want an error", tc.in, got)
			} else if !errors.Is(err, errBadPath) {
				t.Errorf("cleanRelPath(%q): %v is not errBadPath", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("cleanRelPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	// A path that climbs out is told where it leads.
	if _, err := cleanRelPath("/workspace/../etc/x"); err == nil || !strings.Contains(err.Error(), "it is /etc/x, outside /workspace") {
		t.Errorf("/workspace/../etc/x: %v", err)
	}
}

func FuzzCleanRelPath(f *testing.F) {
	for _, s := range []string{"a", "/workspace/x", "../x", "a/../../b", "/workspace/../x", "//workspace//a", "./.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rel, err := cleanRelPath(p)
		if err != nil {
			return
		}
		if rel == "" || strings.HasPrefix(rel, "/") || rel == ".." || strings.HasPrefix(rel, "../") || path.Clean(rel) != rel || strings.ContainsRune(rel, 0) {
			t.Fatalf("cleanRelPath(%q) = %q, which is not a clean path inside the workspace", p, rel)
		}
		if strings.HasPrefix(p, "/") && path.Join(workspaceDir, rel) != path.Clean(p) {
			t.Fatalf("cleanRelPath(%q) = %q, which names another file", p, rel)
		}
	})
}

// TestOperationsStayInsideTheWorkspace points every operation at links
// that lead out of the workspace, directly or as a parent directory, and
// checks that each fails and that nothing outside changed (the check runs
// at cleanup).
func TestOperationsStayInsideTheWorkspace(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	w := tw.fs
	tw.write(t, "inside.txt", "inside secret\n")
	tw.write(t, "inner/file", "x")
	tw.symlink(t, tw.outside, "evil")           // absolute
	tw.symlink(t, "../outside", "evilrel")      // relative, climbing
	tw.symlink(t, "../../outside", "inner/lnk") // a parent of the path
	tw.symlink(t, "../..", "up")                // a parent far up
	tw.symlink(t, "/etc", "etc")                // the sandbox's own files
	tw.symlink(t, "/proc/1/root", "proc")       // the host, from a container
	upSecret := "up/" + filepath.Base(filepath.Dir(tw.dir)) + "/outside/secret"

	for _, target := range []string{"evil/secret", "evilrel/secret", "inner/lnk/secret", upSecret} {
		dir := path.Dir(target)
		t.Run(strings.ReplaceAll(target, "/", "_"), func(t *testing.T) {
			ops := []struct {
				name string
				run  func() error
			}{
				{"stat", func() error { _, err := w.stat(target); return err }},
				{"list", func() error { _, err := w.list(dir, false, maxListEntries, nil); return err }},
				{"list recursive", func() error { _, err := w.list(dir, true, maxListEntries, nil); return err }},
				{"read", func() error { _, err := w.readFile(target); return err }},
				{"read stream", func() error { return w.readStream(&ReadSpec{Path: target}, io.Discard, nil) }},
				{"write files", func() error { return w.writeFiles([]File{{Path: target, Data: []byte("owned")}}) }},
				{"write files new", func() error { return w.writeFiles([]File{{Path: dir + "/new", Data: []byte("owned")}}) }},
				{"write stream", func() error {
					_, err := w.writeStream(&WriteSpec{Path: target}, strings.NewReader("owned"))
					return err
				}},
				{"write stream new", func() error {
					_, err := w.writeStream(&WriteSpec{Path: dir + "/new/file"}, strings.NewReader("owned"))
					return err
				}},
				{"mkdir", func() error { _, err := w.mkdir(dir + "/newdir/sub"); return err }},
				{"move in", func() error { _, err := w.move("inside.txt", dir+"/stolen"); return err }},
				{"move out", func() error { _, err := w.move(target, "taken"); return err }},
				{"move dir out", func() error { _, err := w.move(dir+"/sub", "taken"); return err }},
				{"remove", func() error { return w.remove(target, false) }},
				{"remove recursive", func() error { return w.remove(dir+"/sub", true) }},
				{"chmod", func() error { _, err := w.chmod(target, 0o777); return err }},
				{"chmod dir", func() error { _, err := w.chmod(dir, 0o777); return err }},
				{"search", func() error {
					_, err := w.search(cove.SearchRequest{Path: dir, Content: "secret"}, nil)
					return err
				}},
				{"replace", func() error {
					_, err := w.replace(cove.ReplaceRequest{Paths: []string{target}, Old: "secret", New: "owned"}, nil)
					return err
				}},
				{"archive out", func() error { return w.archiveOut(&ArchiveSpec{Path: dir, Format: "tar"}, io.Discard, nil) }},
				{"archive out file", func() error { return w.archiveOut(&ArchiveSpec{Path: target, Format: "zip"}, io.Discard, nil) }},
				{"archive in", func() error {
					return w.archiveIn(&ArchiveSpec{Path: dir}, bytes.NewReader(makeTar(t, tarEntry{name: "secret", body: "owned"})))
				}},
				{"archive in through link", func() error {
					return w.archiveIn(&ArchiveSpec{Path: "."}, bytes.NewReader(makeTar(t, tarEntry{name: target, body: "owned"})))
				}},
			}
			for _, op := range ops {
				err := op.run()
				if err == nil {
					t.Errorf("%s of %s succeeded", op.name, target)
					continue
				}
				if code, msg := fileErrorCode(err); code != cove.CodeInvalid {
					t.Errorf("%s of %s: got %s error %q, want invalid", op.name, target, code, msg)
				}
			}
		})
	}

	t.Run("system files", func(t *testing.T) {
		for _, p := range []string{"etc/passwd", "proc/etc/passwd", "etc", "proc"} {
			if _, err := w.stat(p); err == nil && strings.Contains(p, "/") {
				t.Errorf("stat %s succeeded", p)
			}
			if _, err := w.readFile(p); err == nil {
				t.Errorf("reading %s succeeded", p)
			}
			if err := w.readStream(&ReadSpec{Path: p}, io.Discard, nil); err == nil {
				t.Errorf("streaming %s succeeded", p)
			}
			if _, err := w.list(p, false, 10, nil); err == nil {
				t.Errorf("listing %s succeeded", p)
			}
			if err := w.archiveOut(&ArchiveSpec{Path: p, Format: "tar"}, io.Discard, nil); err == nil {
				t.Errorf("archiving %s succeeded", p)
			}
		}
	})

	t.Run("walks do not follow links", func(t *testing.T) {
		res, err := w.search(cove.SearchRequest{Content: "secret"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Matches) != 1 || res.Matches[0].Path != "inside.txt" {
			t.Errorf("search found %+v, want only inside.txt", res.Matches)
		}
		list, err := w.list(".", true, maxListEntries, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, fi := range list {
			if strings.Contains(fi.Path, "secret") || strings.Contains(fi.Path, "passwd") {
				t.Errorf("the listing went through a link: %s", fi.Path)
			}
		}
	})

	t.Run("removing a link removes the link", func(t *testing.T) {
		if err := w.remove("evil", true); err != nil {
			t.Fatal(err)
		}
		if err := w.remove("evilrel", false); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(tw.path("evil")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the link is still there: %v", err)
		}
	})
	if got := tw.read(t, "inside.txt"); got != "inside secret\n" {
		t.Errorf("inside.txt = %q", got)
	}
}

func TestStatAndListReportLinksAsLinks(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	w := tw.fs
	tw.write(t, "b.txt", "hello")
	tw.write(t, "a/z.py", "print(1)")
	tw.write(t, "a/sub/deep.txt", "deep")
	tw.write(t, "a.txt", "x")
	tw.symlink(t, "a", "alias")
	tw.symlink(t, tw.outside, "out")
	tw.symlink(t, "missing", "dangling")

	fi, err := w.stat("alias")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Symlink != "a" || fi.IsDir || fi.Path != "alias" || fi.Name != "alias" {
		t.Errorf("stat alias = %+v, want a link to a", fi)
	}
	fi, err = w.stat("/workspace/b.txt")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size != 5 || fi.Mode != 0o644 || fi.IsDir || fi.Path != "b.txt" || fi.ModTime.IsZero() {
		t.Errorf("stat b.txt = %+v", fi)
	}
	if fi, err := w.stat("out"); err != nil || fi.Symlink != tw.outside {
		t.Errorf("stat out = %+v, %v; want a link to %s", fi, err, tw.outside)
	}
	if fi, err := w.stat("."); err != nil || !fi.IsDir || fi.Path != "." {
		t.Errorf("stat . = %+v, %v", fi, err)
	}
	_, err = w.stat("nope/x.py")
	wantCode(t, err, cove.CodeNotFound)
	if !strings.Contains(err.Error(), "no such file or directory: nope/x.py") {
		t.Errorf("message %q does not say what is missing", err)
	}

	list, err := w.list("", false, maxListEntries, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := listPaths(list), "a a.txt alias b.txt dangling out"; got != want {
		t.Errorf("list = %s, want %s", got, want)
	}
	links := map[string]string{}
	for _, fi := range list {
		links[fi.Path] = fi.Symlink
	}
	if links["alias"] != "a" || links["dangling"] != "missing" || links["out"] != tw.outside {
		t.Errorf("links = %v", links)
	}

	list, err = w.list(".", true, maxListEntries, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := listPaths(list), "a a.txt a/sub a/sub/deep.txt a/z.py alias b.txt dangling out"; got != want {
		t.Errorf("recursive list = %s, want %s", got, want)
	}
	// A link inside the workspace may name the directory to list.
	list, err = w.list("alias", false, maxListEntries, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := listPaths(list), "alias/sub alias/z.py"; got != want {
		t.Errorf("list alias = %s, want %s", got, want)
	}

	_, err = w.list("b.txt", false, 10, nil)
	wantCode(t, err, cove.CodeInvalid)
	_, err = w.list("nope", false, 10, nil)
	wantCode(t, err, cove.CodeNotFound)
	_, err = w.list(".", true, 8, nil)
	wantCode(t, err, cove.CodeInvalid)
	if _, err := w.list(".", true, 9, nil); err != nil {
		t.Errorf("a listing of exactly the limit failed: %v", err)
	}
}

func listPaths(list []*cove.FileInfo) string {
	var p []string
	for _, fi := range list {
		p = append(p, fi.Path)
	}
	return strings.Join(p, " ")
}

// TestListBoundsItsNames checks that a listing whose names come to more
// than maxListNameBytes is refused, however few entries it has: long
// names nested deep would otherwise make an answer of gigabytes.
func TestListBoundsItsNames(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	deep := strings.Repeat(strings.Repeat("d", 250)+"/", 15)
	name := strings.Repeat("f", 240)
	// About 4 KiB a path: 4200 of them pass 16 MiB.
	n := maxListNameBytes/(len(deep)+len(name)+6) + 10
	tw.write(t, deep+"x", "")
	for i := range n {
		if err := os.WriteFile(filepath.Join(tw.dir, deep, fmt.Sprintf("%s%05d", name, i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := tw.fs.list(".", true, maxListEntries, nil)
	wantCode(t, err, cove.CodeInvalid)
	if msg := cove.ErrorMessage(err); !strings.Contains(msg, "come to more than 16 MiB: list a subdirectory") {
		t.Errorf("message %q", msg)
	}
	// A listing of the directory alone is small.
	if _, err := tw.fs.list(".", false, maxListEntries, nil); err != nil {
		t.Errorf("the top directory alone: %v", err)
	}
}

func TestListIsSortedByPath(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	for _, p := range []string{"a/b", "a-b", "a.b", "a/c/d", "A"} {
		tw.write(t, p, "")
	}
	list, err := tw.fs.list(".", true, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	paths := strings.Fields(listPaths(list))
	if !sort.StringsAreSorted(paths) || len(paths) != 7 {
		t.Errorf("list = %v, want 7 paths sorted", paths)
	}
}

func TestMkdir(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	w := tw.fs
	fi, err := w.mkdir("a/b/c")
	if err != nil {
		t.Fatal(err)
	}
	if !fi.IsDir || fi.Path != "a/b/c" {
		t.Errorf("mkdir = %+v", fi)
	}
	tw.checkOwned(t, "a")
	tw.checkOwned(t, "a/b/c")
	if _, err := w.mkdir("a/b"); err != nil {
		t.Errorf("mkdir of an existing directory: %v", err)
	}
	tw.write(t, "file", "x")
	_, err = w.mkdir("file")
	wantCode(t, err, cove.CodeConflict)
	_, err = w.mkdir("file/sub")
	wantCode(t, err, cove.CodeConflict)
	_, err = w.mkdir("../x")
	wantCode(t, err, cove.CodeInvalid)
}

func TestMove(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	w := tw.fs
	tw.write(t, "a.txt", "A")
	tw.write(t, "b.txt", "B")
	tw.write(t, "dir/x", "X")

	fi, err := w.move("a.txt", "new/parents/a.txt")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Path != "new/parents/a.txt" || fi.Size != 1 {
		t.Errorf("move = %+v", fi)
	}
	if got := tw.read(t, "new/parents/a.txt"); got != "A" {
		t.Errorf("moved content = %q", got)
	}
	tw.checkOwned(t, "new/parents")

	_, err = w.move("b.txt", "new/parents/a.txt")
	wantCode(t, err, cove.CodeConflict)
	if tw.read(t, "new/parents/a.txt") != "A" || tw.read(t, "b.txt") != "B" {
		t.Error("a refused move changed a file")
	}
	_, err = w.move("b.txt", "dir")
	wantCode(t, err, cove.CodeConflict)
	_, err = w.move("b.txt", "b.txt")
	wantCode(t, err, cove.CodeConflict)
	_, err = w.move("missing", "c")
	wantCode(t, err, cove.CodeNotFound)
	_, err = w.move("dir", "dir/inside")
	wantCode(t, err, cove.CodeInvalid)
	_, err = w.move(".", "elsewhere")
	wantCode(t, err, cove.CodeInvalid)
	_, err = w.move("b.txt", "b.txt/x")
	wantCode(t, err, cove.CodeInvalid)

	if _, err := w.move("dir", "/workspace/moved/dir"); err != nil {
		t.Fatal(err)
	}
	if got := tw.read(t, "moved/dir/x"); got != "X" {
		t.Errorf("moved directory content = %q", got)
	}
	// A link is moved as a link.
	tw.symlink(t, "moved", "lnk")
	fi, err = w.move("lnk", "lnk2")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Symlink != "moved" {
		t.Errorf("moved link = %+v", fi)
	}
}

func TestRemove(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	w := tw.fs
	tw.write(t, "f", "x")
	tw.write(t, "d/e/f", "x")
	mustMkdir(t, tw.path("empty"))

	// What is not there is not found, and the error names it.
	for _, p := range []string{"missing", "f/under/a/file"} {
		err := w.remove(p, true)
		wantCode(t, err, cove.CodeNotFound)
		if !strings.Contains(err.Error(), "no such file or directory: "+p) {
			t.Errorf("removing %s: %q does not name it", p, err)
		}
	}
	wantCode(t, w.remove("d", false), cove.CodeConflict)
	wantCode(t, w.remove(".", true), cove.CodeInvalid)
	wantCode(t, w.remove("/workspace", true), cove.CodeInvalid)
	wantCode(t, w.remove("/workspace/", true), cove.CodeInvalid)
	for _, p := range []string{"f", "empty"} {
		if err := w.remove(p, false); err != nil {
			t.Errorf("removing %s: %v", p, err)
		}
	}
	if err := w.remove("d", true); err != nil {
		t.Fatal(err)
	}
	if left := snapshot(t, tw.dir); left != snapshotOfEmptyWorkspace(t, tw) {
		t.Errorf("left behind:\n%s", left)
	}
}

func snapshotOfEmptyWorkspace(t *testing.T, tw *testWorkspace) string {
	t.Helper()
	fi, err := os.Lstat(tw.dir)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fmt.Sprintf(" %v %d:%d %d\n", fi.Mode(), st.Uid, st.Gid, fi.Size())
}

func TestChmod(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	w := tw.fs
	tw.write(t, "run.sh", "#!/bin/sh\n")
	tw.symlink(t, "run.sh", "lnk")
	fi, err := w.chmod("run.sh", 0o750)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode != 0o750 {
		t.Errorf("mode = %o", fi.Mode)
	}
	if fi, _ := os.Stat(tw.path("run.sh")); fi.Mode().Perm() != 0o750 {
		t.Errorf("file mode = %v", fi.Mode())
	}
	// Through a link inside the workspace: the target changes.
	if _, err := w.chmod("lnk", 0o700); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(tw.path("run.sh")); fi.Mode().Perm() != 0o700 {
		t.Errorf("file mode through the link = %v", fi.Mode())
	}
	for _, mode := range []uint32{0o4755, 0o2755, 0o1777, 0o10644} {
		_, err := w.chmod("run.sh", mode)
		wantCode(t, err, cove.CodeInvalid)
	}
	if fi, _ := os.Stat(tw.path("run.sh")); fi.Mode() != 0o700 {
		t.Errorf("a refused chmod changed the mode to %v", fi.Mode())
	}
	_, err = w.chmod("missing", 0o644)
	wantCode(t, err, cove.CodeNotFound)
}

// TestOperationsRunAsTheUser checks that what the operations create
// belongs to the sandbox user and that the user's permissions apply.
func TestOperationsRunAsTheUser(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	if !tw.asOther {
		t.Skip("needs root to act as another user")
	}
	w := tw.fs
	if _, err := w.writeStream(&WriteSpec{Path: "up/loaded.bin"}, strings.NewReader("data")); err != nil {
		t.Fatal(err)
	}
	tw.write(t, "small/w.txt", "hello")
	if _, err := w.replace(cove.ReplaceRequest{Paths: []string{"small/w.txt"}, Old: "hello", New: "bye"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.archiveIn(&ArchiveSpec{Path: "x"}, bytes.NewReader(makeTar(t,
		tarEntry{name: "d/", typ: '5'}, tarEntry{name: "d/f", body: "f"}, tarEntry{name: "l", link: "d/f", typ: '2'}))); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"up", "up/loaded.bin", "small", "small/w.txt", "x", "x/d", "x/d/f", "x/l"} {
		tw.checkOwned(t, p)
	}

	// Files of another user: the user's permissions, not root's, apply.
	mustWrite(t, tw.path("root-only"), "private", 0o600)
	mustMkdir(t, tw.path("root-dir"))
	// A mode that forbids the user is a conflict with the file's state,
	// which the user can change, and the message says so.
	_, err := w.readFile("root-only")
	wantCode(t, err, cove.CodeConflict)
	if !strings.Contains(err.Error(), "cannot read root-only: permission denied (its mode is 600") {
		t.Errorf("message %q", err)
	}
	wantCode(t, w.readStream(&ReadSpec{Path: "root-only"}, io.Discard, nil), cove.CodeConflict)
	_, err = w.chmod("root-only", 0o666)
	wantCode(t, err, cove.CodeConflict)
	_, err = w.writeStream(&WriteSpec{Path: "root-dir/f"}, strings.NewReader("x"))
	wantCode(t, err, cove.CodeConflict)
	_, err = w.mkdir("root-dir/sub")
	wantCode(t, err, cove.CodeConflict)
	if !strings.Contains(err.Error(), "permission denied: root-dir/sub (the permission bits") {
		t.Errorf("message %q", err)
	}
	_, err = w.replace(cove.ReplaceRequest{Paths: []string{"root-only"}, Old: "p", New: "q"}, nil)
	wantCode(t, err, cove.CodeConflict)
	if fi, _ := os.Stat(tw.path("root-only")); fi.Mode().Perm() != 0o600 {
		t.Errorf("root-only mode = %v", fi.Mode())
	}
}

func TestSetFSIDsRefusesWhatDidNotTake(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root may switch to any id")
	}
	w := workspaceFS{dir: t.TempDir(), uid: testUID, gid: testUID}
	err := w.run(func(*os.Root) error { return nil })
	if err == nil {
		t.Fatal("running as another user without the privilege to succeeded")
	}
}

func TestSearch(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	w := tw.fs
	tw.write(t, "src/main.py", "import os\nprint('needle')\n\nx = 1 # needle again\n")
	tw.write(t, "src/util.py", "def f():\n    return 'hay'\n")
	tw.write(t, "notes.txt", "a needle\r\nno\nneedle at the end without newline needle")
	tw.write(t, "bin.dat", "needle\x00binary")
	tw.write(t, "long.txt", strings.Repeat("é", 600)+"needle"+"\n")
	// A needle across the reader's 64 KiB buffer, on a 200 KiB line.
	tw.write(t, "wide.txt", "start\n"+strings.Repeat("x", 64<<10-3)+"needle"+strings.Repeat("y", 200<<10)+"\nend needle\n")
	mustWrite(t, tw.path("big.txt"), strings.Repeat("needle\n", maxTextBytes/7+1), 0o644)
	tw.symlink(t, "src/main.py", "link.py")
	tw.symlink(t, tw.outside, "out")

	res, err := w.search(cove.SearchRequest{Name: "*.py"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := matchString(res); got != "link.py src/main.py src/util.py" {
		t.Errorf("name search = %s", got)
	}
	res, err = w.search(cove.SearchRequest{Content: "needle"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "long.txt:1 notes.txt:1 notes.txt:3 src/main.py:2 src/main.py:4 wide.txt:2 wide.txt:3"
	if got := matchString(res); got != want || res.Truncated {
		t.Errorf("content search = %s (truncated %v), want %s", got, res.Truncated, want)
	}
	for _, m := range res.Matches {
		switch m.Path + ":" + fmt.Sprint(m.Line) {
		case "notes.txt:1":
			if m.Text != "a needle" {
				t.Errorf("text = %q", m.Text)
			}
		case "long.txt:1":
			if m.Text != strings.Repeat("é", 500) {
				t.Errorf("a long line came back as %d characters", len([]rune(m.Text)))
			}
		case "wide.txt:2":
			if len(m.Text) != maxLineChars {
				t.Errorf("a wide line came back as %d bytes", len(m.Text))
			}
		}
	}
	res, err = w.search(cove.SearchRequest{Path: "src", Name: "*.py", Content: "needle"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := matchString(res); got != "src/main.py:2 src/main.py:4" {
		t.Errorf("name and content search = %s", got)
	}
	res, err = w.search(cove.SearchRequest{Content: "needle", MaxResults: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Matches) != 3 || !res.Truncated {
		t.Errorf("limited search = %s (truncated %v)", matchString(res), res.Truncated)
	}
	for _, req := range []cove.SearchRequest{
		{},
		{Name: "[", Content: "x"},
		{Content: "two\nlines"},
		{Content: strings.Repeat("x", maxNeedleBytes+1)},
		{Path: "../", Name: "*"},
	} {
		_, err := w.search(req, nil)
		wantCode(t, err, cove.CodeInvalid)
	}
	_, err = w.search(cove.SearchRequest{Path: "nope", Name: "*"}, nil)
	wantCode(t, err, cove.CodeNotFound)
}

func matchString(res *cove.SearchResult) string {
	var s []string
	for _, m := range res.Matches {
		if m.Line > 0 {
			s = append(s, fmt.Sprintf("%s:%d", m.Path, m.Line))
		} else {
			s = append(s, m.Path)
		}
	}
	return strings.Join(s, " ")
}

func TestScanLinesFindsEveryMatchingLine(t *testing.T) {
	t.Parallel()
	needle := []byte("abcabd")
	// Lines of every length around the buffer size, with the needle at
	// every offset near a buffer boundary, against a plain line split.
	var doc strings.Builder
	for _, n := range []int{0, 1, 5, 64<<10 - 7, 64<<10 - 6, 64<<10 - 3, 64 << 10, 64<<10 + 1, 130 << 10} {
		doc.WriteString(strings.Repeat("ab", n/2))
		doc.WriteString("abcabd\n")
		doc.WriteString(strings.Repeat("c", n) + "\n")
		doc.WriteString(strings.Repeat("abcab", n/5) + "abcabdx\n")
	}
	text := doc.String()
	var want []int
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, string(needle)) {
			want = append(want, i+1)
		}
	}
	var got []int
	if err := scanLines(strings.NewReader(text), needle, func(line int, _ string) error {
		got = append(got, line)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("lines %v, want %v", got, want)
	}
}

func TestReplace(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	w := tw.fs
	tw.write(t, "a.py", "foo = 1\nprint(foo, foo)\n")
	tw.write(t, "b.py", "nothing here\n")
	if err := os.Chmod(tw.path("a.py"), 0o751); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(tw.path("a.py"))
	untouched, _ := os.Stat(tw.path("b.py"))

	res, err := w.replace(cove.ReplaceRequest{Paths: []string{"a.py", "/workspace/b.py"}, Old: "foo", New: "bar_baz"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Path != "a.py" || res[0].Replacements != 3 || res[1].Path != "b.py" || res[1].Replacements != 0 {
		t.Errorf("results = %+v %+v", res[0], res[1])
	}
	if got := tw.read(t, "a.py"); got != "bar_baz = 1\nprint(bar_baz, bar_baz)\n" {
		t.Errorf("a.py = %q", got)
	}
	after, _ := os.Stat(tw.path("a.py"))
	if os.SameFile(before, after) {
		t.Error("a.py was rewritten in place, not replaced")
	}
	if after.Mode().Perm() != 0o751 {
		t.Errorf("a.py mode = %v, want it kept", after.Mode())
	}
	if now, _ := os.Stat(tw.path("b.py")); !os.SameFile(untouched, now) || !now.ModTime().Equal(untouched.ModTime()) {
		t.Error("b.py was rewritten without a replacement")
	}

	mustWrite(t, tw.path("big"), strings.Repeat("x", maxTextBytes+1), 0o644)
	tw.symlink(t, "a.py", "lnk")
	mustMkdir(t, tw.path("dir"))
	for _, req := range []cove.ReplaceRequest{
		{Paths: []string{"big"}, Old: "x", New: "y"},
		{Paths: []string{"lnk"}, Old: "bar", New: "y"},
		{Paths: []string{"dir"}, Old: "bar", New: "y"},
		{Paths: []string{"a.py"}, Old: "", New: "y"},
		{Paths: nil, Old: "x", New: "y"},
		{Paths: []string{"../a.py"}, Old: "x", New: "y"},
	} {
		_, err := w.replace(req, nil)
		wantCode(t, err, cove.CodeInvalid)
	}
	_, err = w.replace(cove.ReplaceRequest{Paths: []string{"missing"}, Old: "x", New: "y"}, nil)
	wantCode(t, err, cove.CodeNotFound)
	checkNoTempFiles(t, tw.dir)
}

// checkNoTempFiles checks that no temporary file of an atomic write is
// left in the tree.
func checkNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".cove-") {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
}

// failingReader returns data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestWriteStream(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	w := tw.fs
	body := bytes.Repeat([]byte("0123456789abcdef"), 10000) // several chunks
	fi, err := w.writeStream(&WriteSpec{Path: "/workspace/a/b/c.bin", MaxBytes: int64(len(body))}, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size != int64(len(body)) || fi.Mode != 0o644 || fi.Path != "a/b/c.bin" {
		t.Errorf("info = %+v", fi)
	}
	if got := tw.read(t, "a/b/c.bin"); got != string(body) {
		t.Error("content differs")
	}
	tw.checkOwned(t, "a/b/c.bin")

	fi, err = w.writeStream(&WriteSpec{Path: "a/b/c.bin", Mode: 0o700}, strings.NewReader("short"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode != 0o700 || tw.read(t, "a/b/c.bin") != "short" {
		t.Errorf("overwrite: %+v %q", fi, tw.read(t, "a/b/c.bin"))
	}

	// Too large: an error, and nothing left behind, not even the old file
	// touched.
	_, err = w.writeStream(&WriteSpec{Path: "a/b/c.bin", MaxBytes: 100}, bytes.NewReader(body))
	wantCode(t, err, cove.CodeQuotaExceeded)
	if !strings.Contains(err.Error(), "larger than its disk limit of 100 bytes") {
		t.Errorf("message %q", err)
	}
	if tw.read(t, "a/b/c.bin") != "short" {
		t.Error("a refused upload changed the file")
	}
	_, err = w.writeStream(&WriteSpec{Path: "new.bin", MaxBytes: 100}, bytes.NewReader(body))
	wantCode(t, err, cove.CodeQuotaExceeded)
	// Nor are the parents it would have made.
	_, err = w.writeStream(&WriteSpec{Path: "newdir/sub/new.bin", MaxBytes: 100}, bytes.NewReader(body))
	wantCode(t, err, cove.CodeQuotaExceeded)
	if _, err := os.Lstat(tw.path("newdir")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused upload left its parent directory: %v", err)
	}
	if _, err := os.Lstat(tw.path("new.bin")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused upload left a file: %v", err)
	}
	// An interrupted upload leaves nothing either.
	_, err = w.writeStream(&WriteSpec{Path: "cut.bin"}, &uploadReader{r: bytes.NewReader(nil)})
	wantCode(t, err, cove.CodeUnavailable)
	_, err = w.writeStream(&WriteSpec{Path: "cut.bin"}, &failingReader{data: body, err: io.ErrUnexpectedEOF})
	if err == nil {
		t.Fatal("a failed upload succeeded")
	}
	if _, err := os.Lstat(tw.path("cut.bin")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an interrupted upload left a file: %v", err)
	}
	checkNoTempFiles(t, tw.dir)

	_, err = w.writeStream(&WriteSpec{Path: "a"}, strings.NewReader("x"))
	wantCode(t, err, cove.CodeConflict)
	_, err = w.writeStream(&WriteSpec{Path: "a/b/c.bin/x"}, strings.NewReader("x"))
	wantCode(t, err, cove.CodeConflict)
	_, err = w.writeStream(&WriteSpec{Path: "s", Mode: 0o4755}, strings.NewReader("x"))
	wantCode(t, err, cove.CodeInvalid)
	_, err = w.writeStream(&WriteSpec{Path: "."}, strings.NewReader("x"))
	wantCode(t, err, cove.CodeConflict)
}

func TestReadsRefuseSpecialFiles(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	w := tw.fs
	// A FIFO with no writer: opening it without O_NONBLOCK would hang.
	if err := syscall.Mkfifo(tw.path("fifo"), 0o666); err != nil {
		t.Fatal(err)
	}
	os.Lchown(tw.path("fifo"), w.uid, w.gid)
	mustMkdir(t, tw.path("dir"))
	for _, p := range []string{"fifo", "dir"} {
		_, err := w.readFile(p)
		wantCode(t, err, cove.CodeInvalid)
		wantCode(t, w.readStream(&ReadSpec{Path: p}, io.Discard, nil), cove.CodeInvalid)
	}
	wantCode(t, w.writeFiles([]File{{Path: "fifo", Data: []byte("x")}}), cove.CodeInvalid)
	wantCode(t, w.writeFiles([]File{{Path: "dir", Data: []byte("x")}}), cove.CodeInvalid)
	res, err := w.search(cove.SearchRequest{Content: "x"}, nil)
	if err != nil || len(res.Matches) != 0 {
		t.Errorf("search = %+v, %v", res, err)
	}
	_, err = w.replace(cove.ReplaceRequest{Paths: []string{"fifo"}, Old: "x", New: "y"}, nil)
	wantCode(t, err, cove.CodeInvalid)
}

func TestWriteFilesAndReadFile(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	w := tw.fs
	if err := w.writeFiles([]File{{Path: "p/main.py", Data: []byte("print(1)"), Mode: 0o4755}, {Path: "/workspace/q.txt", Data: []byte("q")}}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(tw.path("p/main.py")); fi.Mode() != 0o755 {
		t.Errorf("mode = %v, want permission bits only", fi.Mode())
	}
	b, err := w.readFile("p/main.py")
	if err != nil || string(b) != "print(1)" {
		t.Errorf("read = %q, %v", b, err)
	}
	tw.checkOwned(t, "p/main.py")
	_, err = w.readFile("missing.py")
	wantCode(t, err, cove.CodeNotFound)
	wantCode(t, w.writeFiles([]File{{Path: "../x", Data: nil}}), cove.CodeInvalid)
}
