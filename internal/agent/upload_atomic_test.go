package agent

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/cove-sandbox/cove"
)

// checkNoStaging checks that no staging directory is left in the
// workspace.
func checkNoStaging(t *testing.T, tw *testWorkspace) {
	t.Helper()
	entries, err := os.ReadDir(tw.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), stagePrefix) {
			t.Errorf("a staging directory is left: %s", e.Name())
		}
	}
}

// TestArchiveInIsAllOrNothing uploads archives whose later entries are
// bad and checks that the earlier ones changed nothing.
func TestArchiveInIsAllOrNothing(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	w := tw.fs
	tw.write(t, "keep.txt", "original")
	tw.write(t, "dest/keep.txt", "original")
	tw.write(t, "dest/file", "a file")
	mustMkdir(t, tw.path("dest/dir"))
	os.Lchown(tw.path("dest/dir"), w.uid, w.gid)
	tw.symlink(t, "dir", "dest/lnk")
	cases := []struct {
		name string
		dest string
		tar  []byte
		code cove.Code
		msg  string
	}{
		{"dot-dot after a good entry", ".", makeTar(t,
			tarEntry{name: "keep.txt", body: "overwritten"},
			tarEntry{name: "new.txt", body: "new"},
			tarEntry{name: "../evil", body: "evil"}),
			cove.CodeInvalid, `archive entry "../evil" leads out of the directory`},
		{"file in the way of a directory", "dest", makeTar(t,
			tarEntry{name: "keep.txt", body: "overwritten"},
			tarEntry{name: "new.txt", body: "new"},
			tarEntry{name: "file/x", body: "x"}),
			cove.CodeConflict, "a file is in the way of directory dest/file"},
		{"directory in the way of a file", "dest", makeTar(t,
			tarEntry{name: "keep.txt", body: "overwritten"},
			tarEntry{name: "new.txt", body: "new"},
			tarEntry{name: "dir", body: "x"}),
			cove.CodeConflict, "a directory is in the way of dest/dir"},
		{"directory through a link", "dest", makeTar(t,
			tarEntry{name: "keep.txt", body: "overwritten"},
			tarEntry{name: "new.txt", body: "new"},
			tarEntry{name: "lnk/x", body: "x"}),
			cove.CodeInvalid, "dest/lnk is a symbolic link"},
		{"too many bytes", "dest", makeTar(t,
			tarEntry{name: "keep.txt", body: "overwritten"},
			tarEntry{name: "new.txt", body: "new"},
			tarEntry{name: "big", body: strings.Repeat("x", 4096)}),
			cove.CodeQuotaExceeded, "larger than its disk limit of 1000 bytes"},
		{"cut short", "dest", makeTar(t,
			tarEntry{name: "keep.txt", body: "overwritten"},
			tarEntry{name: "new.txt", body: "new"},
			tarEntry{name: "big", body: strings.Repeat("x", 900)})[:5*512+300],
			cove.CodeInvalid, "not a valid tar archive"},
		{"new destination", "fresh/sub", makeTar(t,
			tarEntry{name: "new.txt", body: "new"},
			tarEntry{name: "/abs", body: "x"}),
			cove.CodeInvalid, "absolute name"},
	}
	before := snapshot(t, tw.dir)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := w.archiveIn(&ArchiveSpec{Path: c.dest, MaxBytes: 1000}, bytes.NewReader(c.tar))
			wantCode(t, err, c.code)
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("message %q, want it to say %q", err, c.msg)
			}
			if after := snapshot(t, tw.dir); after != before {
				t.Errorf("the failed upload changed the workspace:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
	checkNoStaging(t, tw)

	// A good archive merges: a file replaces a file or link, a directory
	// fills the directory there, and a read-only directory gets its mode
	// once its content is in.
	good := makeTar(t,
		tarEntry{name: "keep.txt", body: "replaced"},
		tarEntry{name: "dir/", typ: tar.TypeDir, mode: 0o555},
		tarEntry{name: "dir/in.txt", body: "in a read-only directory"},
		tarEntry{name: "lnk", body: "a file where a link was"},
		tarEntry{name: "brand/new/deep.txt", body: "deep"})
	if err := w.archiveIn(&ArchiveSpec{Path: "dest"}, bytes.NewReader(good)); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		"dest/keep.txt":           "replaced",
		"dest/file":               "a file",
		"dest/dir/in.txt":         "in a read-only directory",
		"dest/lnk":                "a file where a link was",
		"dest/brand/new/deep.txt": "deep",
		"keep.txt":                "original",
	} {
		if got := tw.read(t, p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
		tw.checkOwned(t, p)
	}
	if fi, err := os.Lstat(tw.path("dest/dir")); err != nil || fi.Mode() != fs.ModeDir|0o555 {
		t.Errorf("dest/dir: %v, %v; want a directory with mode 0555", fi.Mode(), err)
	}
	os.Chmod(tw.path("dest/dir"), 0o755)
	// Into a directory that does not exist yet: the staged tree becomes it.
	if err := w.archiveIn(&ArchiveSpec{Path: "a/b"}, bytes.NewReader(makeTar(t, tarEntry{name: "x/y", body: "y"}))); err != nil {
		t.Fatal(err)
	}
	if got := tw.read(t, "a/b/x/y"); got != "y" {
		t.Errorf("a/b/x/y = %q", got)
	}
	for _, p := range []string{"a", "a/b", "a/b/x"} {
		tw.checkOwned(t, p)
		if fi, err := os.Stat(tw.path(p)); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v, %v; want mode 0755", p, fi.Mode(), err)
		}
	}
	checkNoStaging(t, tw)
}

// framedUpload is the body of an UploadSpec upload of files, as the
// client sends it.
func framedUpload(t *testing.T, files ...File) *filesReader {
	t.Helper()
	var buf bytes.Buffer
	if err := sendFiles(&buf, uploadList(files)); err != nil {
		t.Fatal(err)
	}
	return &filesReader{r: &buf}
}

// uploadList returns a next function for UploadFiles that yields files.
func uploadList(files []File) func() (*UploadFile, error) {
	return func() (*UploadFile, error) {
		if len(files) == 0 {
			return nil, io.EOF
		}
		f := files[0]
		files = files[1:]
		return &UploadFile{Path: f.Path, Mode: f.Mode, Body: bytes.NewReader(f.Data)}, nil
	}
}

// TestUploadFilesIsAllOrNothing uploads several files whose later ones
// are bad and checks that the earlier ones changed nothing.
func TestUploadFilesIsAllOrNothing(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	w := tw.fs
	tw.write(t, "keep.txt", "original")
	tw.write(t, "m1.txt", "original")
	cases := []struct {
		name  string
		files []File
		max   int64
		code  cove.Code
		msg   string
	}{
		{"dot-dot after a good file", []File{
			{Path: "m1.txt", Data: []byte("overwritten")},
			{Path: "new.txt", Data: []byte("new")},
			{Path: "../evil2.txt", Data: []byte("evil")},
		}, 0, cove.CodeInvalid, `"../evil2.txt": it leaves the workspace`},
		{"file in the way", []File{
			{Path: "m1.txt", Data: []byte("overwritten")},
			{Path: "new.txt", Data: []byte("new")},
			{Path: "keep.txt/x", Data: []byte("x")},
		}, 0, cove.CodeConflict, "a file is in the way of directory keep.txt"},
		{"too large", []File{
			{Path: "m1.txt", Data: []byte("overwritten")},
			{Path: "big", Data: bytes.Repeat([]byte("x"), 5000)},
		}, 1000, cove.CodeQuotaExceeded, "larger than"},
		{"bad mode", []File{
			{Path: "new.txt", Data: []byte("new")},
			{Path: "setuid", Mode: 0o4755},
		}, 0, cove.CodeInvalid, "not allowed"},
	}
	before := snapshot(t, tw.dir)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := w.uploadFiles(&UploadSpec{MaxBytes: c.max}, framedUpload(t, c.files...))
			wantCode(t, err, c.code)
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("message %q, want it to say %q", err, c.msg)
			}
			if after := snapshot(t, tw.dir); after != before {
				t.Errorf("the failed upload changed the workspace:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}

	infos, err := w.uploadFiles(&UploadSpec{}, framedUpload(t,
		File{Path: "m1.txt", Data: []byte("replaced")},
		File{Path: "/workspace/sub/dir/f.sh", Data: []byte("#!/bin/sh\n"), Mode: 0o755},
		File{Path: "m1.txt", Data: []byte("sent twice: the last wins")}))
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 || infos[0].Path != "m1.txt" || infos[1].Path != "sub/dir/f.sh" || infos[1].Mode != 0o755 || infos[0].Size != 25 {
		t.Errorf("infos = %+v %+v", infos[0], infos[len(infos)-1])
	}
	for p, want := range map[string]string{"m1.txt": "sent twice: the last wins", "sub/dir/f.sh": "#!/bin/sh\n", "keep.txt": "original"} {
		if got := tw.read(t, p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
		tw.checkOwned(t, p)
	}
	checkNoStaging(t, tw)
}

// TestClientUploadFiles drives UploadFiles through the protocol: a bad
// file refuses the whole upload, and a failing reader writes nothing.
func TestClientUploadFiles(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	c := newTestClient(t, tw)
	ctx := context.Background()
	tw.write(t, "keep.txt", "original")
	before := snapshot(t, tw.dir)
	_, err := c.UploadFiles(ctx, uploadList([]File{
		{Path: "m1.txt", Data: []byte("m1")},
		{Path: "../evil2.txt", Data: []byte("evil")},
	}), ArchiveLimits{})
	wantCoveCode(t, err, cove.CodeInvalid)
	n := 0
	_, err = c.UploadFiles(ctx, func() (*UploadFile, error) {
		n++
		if n == 2 {
			return nil, errors.New("the request body broke")
		}
		return &UploadFile{Path: "m2.txt", Body: strings.NewReader("m2")}, nil
	}, ArchiveLimits{})
	wantCoveCode(t, err, cove.CodeInvalid)
	if !strings.Contains(err.Error(), "the request body broke") {
		t.Errorf("error %q does not say why the upload failed", err)
	}
	waitNoTempFiles(t, tw)
	if after := snapshot(t, tw.dir); after != before {
		t.Errorf("the failed uploads changed the workspace:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	infos, err := c.UploadFiles(ctx, uploadList([]File{
		{Path: "m1.txt", Data: []byte("m1")},
		{Path: "d/m2.txt", Data: []byte("m2")},
	}), ArchiveLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 || infos[1].Path != "d/m2.txt" || infos[1].Size != 2 {
		t.Errorf("infos = %+v", infos)
	}
	if got := tw.read(t, "d/m2.txt"); got != "m2" {
		t.Errorf("d/m2.txt = %q", got)
	}
	checkNoStaging(t, tw)
}

// TestWriteFilesChecksEveryPathFirst: a bad path among a program's files
// writes none of them.
func TestWriteFilesChecksEveryPathFirst(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	tw.write(t, "main.py", "original")
	err := tw.fs.writeFiles([]File{{Path: "main.py", Data: []byte("overwritten")}, {Path: "../evil.py", Data: []byte("x")}})
	if !errors.Is(err, errBadPath) {
		t.Fatalf("got %v, want a bad path error", err)
	}
	if got := tw.read(t, "main.py"); got != "original" {
		t.Errorf("main.py = %q after a refused write", got)
	}
}
