package agent

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
)

// tarEntry is one entry of a test archive. typ is the tar type flag
// (regular file by default); for links, link is the target.
type tarEntry struct {
	name string
	body string
	link string
	typ  byte
	mode int64
}

func makeTar(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	writeTar(t, &buf, entries...)
	return buf.Bytes()
}

func makeTarGz(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	writeTar(t, gz, entries...)
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeTar(t testing.TB, w io.Writer, entries ...tarEntry) {
	t.Helper()
	tw := tar.NewWriter(w)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.body)), ModTime: time.Unix(1700000000, 0)}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// download runs archiveOut and decodes its frames: the info, then the
// archive.
func download(t *testing.T, w workspaceFS, p, format string) (*cove.FileInfo, []byte) {
	t.Helper()
	var frames bytes.Buffer
	if err := w.archiveOut(&ArchiveSpec{Path: p, Format: format}, &frames, nil); err != nil {
		t.Fatalf("archiving %s as %s: %v", p, format, err)
	}
	typ, payload, err := readFrame(&frames)
	if err != nil || typ != frameInfo {
		t.Fatalf("first frame %q, %v; want the info", typ, err)
	}
	var info cove.FileInfo
	if err := json.Unmarshal(payload, &info); err != nil {
		t.Fatal(err)
	}
	var body []byte
	for {
		typ, payload, err := readFrame(&frames)
		if err == io.EOF {
			return &info, body
		}
		if err != nil || typ != frameDownload {
			t.Fatalf("frame %q, %v; want archive bytes", typ, err)
		}
		if len(payload) > chunkSize {
			t.Fatalf("a frame of %d bytes, more than %d", len(payload), chunkSize)
		}
		body = append(body, payload...)
	}
}

// archived is an archive entry as the tests compare them.
type archived struct {
	kind string // "dir", "file" or "link"
	mode fs.FileMode
	data string // content, or link target
}

func readTarEntries(t *testing.T, b []byte) map[string]archived {
	t.Helper()
	out := map[string]archived{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		switch h.Typeflag {
		case tar.TypeDir:
			out[h.Name] = archived{"dir", fs.FileMode(h.Mode), ""}
		case tar.TypeSymlink:
			out[h.Name] = archived{"link", 0, h.Linkname}
		case tar.TypeReg:
			out[h.Name] = archived{"file", fs.FileMode(h.Mode), string(data)}
		default:
			t.Errorf("unexpected entry %s of type %q", h.Name, h.Typeflag)
		}
	}
}

func readZipEntries(t *testing.T, b []byte) map[string]archived {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]archived{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		m := f.Mode()
		switch {
		case m.IsDir():
			out[f.Name] = archived{"dir", m.Perm(), ""}
		case m&fs.ModeSymlink != 0:
			out[f.Name] = archived{"link", 0, string(data)}
		default:
			out[f.Name] = archived{"file", m.Perm(), string(data)}
		}
	}
	return out
}

func entryNames(m map[string]archived) string {
	var names []string
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

func TestArchiveOutStoresLinksAsLinks(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	w := tw.fs
	tw.write(t, "proj/main.py", "print(1)\n")
	tw.write(t, "proj/lib/util.py", strings.Repeat("u", 3*chunkSize+7))
	if err := os.Chmod(tw.path("proj/lib/util.py"), 0o700); err != nil {
		t.Fatal(err)
	}
	mustMkdir(t, tw.path("proj/empty"))
	tw.symlink(t, "lib/util.py", "proj/inner")
	tw.symlink(t, tw.outside, "proj/out")
	tw.symlink(t, "/etc/passwd", "proj/passwd")
	if err := syscall.Mkfifo(tw.path("proj/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := map[string]archived{
		"empty/":      {"dir", 0o755, ""},
		"lib/":        {"dir", 0o755, ""},
		"lib/util.py": {"file", 0o700, strings.Repeat("u", 3*chunkSize+7)},
		"main.py":     {"file", 0o644, "print(1)\n"},
		"inner":       {"link", 0, "lib/util.py"},
		"out":         {"link", 0, tw.outside},
		"passwd":      {"link", 0, "/etc/passwd"},
	}
	for _, format := range []string{"tar", "zip"} {
		t.Run(format, func(t *testing.T) {
			info, b := download(t, w, "/workspace/proj", format)
			if !info.IsDir || info.Path != "proj" {
				t.Errorf("info = %+v", info)
			}
			got := readTarEntries
			if format == "zip" {
				got = readZipEntries
			}
			entries := got(t, b)
			if entryNames(entries) != entryNames(want) {
				t.Fatalf("entries %s, want %s", entryNames(entries), entryNames(want))
			}
			for name, e := range want {
				if entries[name] != e {
					t.Errorf("%s = %+v, want %+v", name, entries[name], e)
				}
			}
		})
	}

	// A single file is archived under its name.
	info, b := download(t, w, "proj/main.py", "tar")
	if info.IsDir || info.Size != 9 {
		t.Errorf("info = %+v", info)
	}
	if got := entryNames(readTarEntries(t, b)); got != "main.py" {
		t.Errorf("entries = %s", got)
	}
	// The whole workspace.
	_, b = download(t, w, "", "zip")
	if got := readZipEntries(t, b); got["proj/main.py"].data != "print(1)\n" {
		t.Errorf("workspace archive: %s", entryNames(got))
	}

	err := w.archiveOut(&ArchiveSpec{Path: "proj", Format: "rar"}, io.Discard, nil)
	wantCode(t, err, cove.CodeInvalid)
	err = w.archiveOut(&ArchiveSpec{Path: "nope", Format: "tar"}, io.Discard, nil)
	wantCode(t, err, cove.CodeNotFound)
	err = w.archiveOut(&ArchiveSpec{Path: "proj/fifo", Format: "tar"}, io.Discard, nil)
	wantCode(t, err, cove.CodeInvalid)
}

func TestArchiveRoundTrip(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	w := tw.fs
	tw.write(t, "src/a.txt", "A")
	tw.write(t, "src/d/b.bin", string(bytes.Repeat([]byte{0, 1, 2, 255}, 50000)))
	tw.symlink(t, "d/b.bin", "src/lnk")
	tw.symlink(t, "../a.txt", "src/d/up")
	if err := os.Chmod(tw.path("src/d/b.bin"), 0o750); err != nil {
		t.Fatal(err)
	}
	_, b := download(t, w, "src", "tar")
	if err := w.archiveIn(&ArchiveSpec{Path: "copy"}, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	orig, copied := snapshot(t, tw.path("src")), snapshot(t, tw.path("copy"))
	// Directory modification times aside, the trees are the same.
	if orig != copied {
		t.Errorf("round trip differs:\n%s\nvs\n%s", orig, copied)
	}
	if got := tw.read(t, "copy/d/up"); got != "A" {
		t.Errorf("link through the copy = %q", got)
	}
}

func TestArchiveInExtracts(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	w := tw.fs
	tw.write(t, "dest/old.txt", "old")
	tw.write(t, "sibling.txt", "keep")
	tw.symlink(t, "../../outside/secret", "dest/was-a-link")
	entries := []tarEntry{
		{name: "./"},
		{name: "./bin/", typ: tar.TypeDir, mode: 0o750},
		{name: "./bin/tool", body: "#!/bin/sh\n", mode: 0o4755},
		{name: "ro/", typ: tar.TypeDir, mode: 0o555},
		{name: "ro/inside.txt", body: "written before the directory became read-only", mode: 0o444},
		{name: "implicit/parent/file.txt", body: "parents created"},
		{name: "old.txt", body: "new"},
		{name: "was-a-link", body: "replaced the link, not its target"},
		{name: "link", typ: tar.TypeSymlink, link: "bin/tool"},
		{name: "bin/up", typ: tar.TypeSymlink, link: "../old.txt"},
		{name: "hard", typ: tar.TypeLink, link: "./bin/tool"},
		{name: "fifo", typ: tar.TypeFifo},
		{name: "dev", typ: tar.TypeChar},
	}
	entries[0].typ = tar.TypeDir
	for name, body := range map[string][]byte{"plain": makeTar(t, entries...), "gzip": makeTarGz(t, entries...)} {
		t.Run(name, func(t *testing.T) {
			if err := w.archiveIn(&ArchiveSpec{Path: "dest"}, bytes.NewReader(body)); err != nil {
				t.Fatal(err)
			}
			checks := map[string]string{
				"dest/bin/tool":                 "#!/bin/sh\n",
				"dest/ro/inside.txt":            "written before the directory became read-only",
				"dest/implicit/parent/file.txt": "parents created",
				"dest/old.txt":                  "new",
				"dest/was-a-link":               "replaced the link, not its target",
				"dest/link":                     "#!/bin/sh\n",
				"dest/bin/up":                   "new",
				"dest/hard":                     "#!/bin/sh\n",
				"sibling.txt":                   "keep",
			}
			for p, want := range checks {
				if got := tw.read(t, p); got != want {
					t.Errorf("%s = %q, want %q", p, got, want)
				}
			}
			modes := map[string]fs.FileMode{
				"dest/bin":           fs.ModeDir | 0o750,
				"dest/bin/tool":      0o755,
				"dest/ro":            fs.ModeDir | 0o555,
				"dest/ro/inside.txt": 0o444,
				"dest/was-a-link":    0o644,
			}
			for p, want := range modes {
				fi, err := os.Lstat(tw.path(p))
				if err != nil || fi.Mode() != want {
					t.Errorf("%s mode = %v, %v; want %v", p, fi.Mode(), err, want)
				}
				tw.checkOwned(t, p)
			}
			if fi, _ := os.Stat(tw.path("dest/bin/tool")); !fi.ModTime().Equal(time.Unix(1700000000, 0)) {
				t.Errorf("mtime = %v", fi.ModTime())
			}
			for _, p := range []string{"dest/fifo", "dest/dev"} {
				if _, err := os.Lstat(tw.path(p)); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s was created: %v", p, err)
				}
			}
			a, _ := os.Stat(tw.path("dest/hard"))
			b, _ := os.Stat(tw.path("dest/bin/tool"))
			if !os.SameFile(a, b) {
				t.Error("the hard link is a copy")
			}
			// Let the next run replace the read-only directory's files.
			os.Chmod(tw.path("dest/ro"), 0o755)
		})
	}

	for name, body := range map[string][]byte{
		"zip":     zipBytes(t),
		"garbage": bytes.Repeat([]byte("not a tar archive "), 100),
		"cut":     makeTar(t, tarEntry{name: "f", body: strings.Repeat("x", 5000)})[:2048],
	} {
		err := w.archiveIn(&ArchiveSpec{Path: "other"}, bytes.NewReader(body))
		if code, msg := fileErrorCode(err); code != cove.CodeInvalid {
			t.Errorf("%s archive: got %s %q, want invalid", name, code, msg)
		}
	}
	err := w.archiveIn(&ArchiveSpec{Path: "sibling.txt"}, bytes.NewReader(makeTar(t, tarEntry{name: "f"})))
	wantCode(t, err, cove.CodeConflict)
	err = w.archiveIn(&ArchiveSpec{Path: "dest"}, bytes.NewReader(makeTar(t, tarEntry{name: "bin", body: "a file over a directory"})))
	wantCode(t, err, cove.CodeConflict)
	// An empty upload is an empty archive.
	if err := w.archiveIn(&ArchiveSpec{Path: "empty"}, bytes.NewReader(nil)); err != nil {
		t.Errorf("empty archive: %v", err)
	}
	// Padding after the archive is fine; much more is not.
	padded := append(makeTar(t, tarEntry{name: "p", body: "p"}), make([]byte, 10240)...)
	if err := w.archiveIn(&ArchiveSpec{Path: "padded"}, bytes.NewReader(padded)); err != nil {
		t.Errorf("padded archive: %v", err)
	}
	trailing := append(makeTar(t, tarEntry{name: "p", body: "p"}), make([]byte, maxArchiveTrailer+10240)...)
	err = w.archiveIn(&ArchiveSpec{Path: "padded"}, bytes.NewReader(trailing))
	wantCode(t, err, cove.CodeInvalid)
}

func zipBytes(t *testing.T) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	f, _ := zw.Create("a.txt")
	io.WriteString(f, "a")
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// hostileArchives are archives that try to write or link out of the
// directory they are extracted into.
func hostileArchives(t testing.TB, outside string) map[string][]byte {
	return map[string][]byte{
		"absolute name":          makeTar(t, tarEntry{name: outside + "/secret", body: "owned"}),
		"dot-dot name":           makeTar(t, tarEntry{name: "../../outside/secret", body: "owned"}),
		"dot-dot inside":         makeTar(t, tarEntry{name: "a/../../../outside/secret", body: "owned"}),
		"absolute symlink":       makeTar(t, tarEntry{name: "l", typ: tar.TypeSymlink, link: outside}, tarEntry{name: "l/secret", body: "owned"}),
		"climbing symlink":       makeTar(t, tarEntry{name: "l", typ: tar.TypeSymlink, link: "../../outside"}, tarEntry{name: "l/secret", body: "owned"}),
		"absolute symlink alone": makeTar(t, tarEntry{name: "l", typ: tar.TypeSymlink, link: outside}),
		"climbing symlink alone": makeTar(t, tarEntry{name: "l", typ: tar.TypeSymlink, link: "../x"}),
		"deep climbing symlink":  makeTar(t, tarEntry{name: "a/b/l", typ: tar.TypeSymlink, link: "../../../x"}),
		"symlink inside symlink": makeTar(t, tarEntry{name: "d", typ: tar.TypeSymlink, link: "."}, tarEntry{name: "d/l", typ: tar.TypeSymlink, link: "../x"}),
		"hard link out":          makeTar(t, tarEntry{name: "h", typ: tar.TypeLink, link: "../../outside/secret"}),
		"absolute hard link":     makeTar(t, tarEntry{name: "h", typ: tar.TypeLink, link: outside + "/secret"}),
		"through existing link":  makeTar(t, tarEntry{name: "evil/secret", body: "owned"}),
		"new file through link":  makeTar(t, tarEntry{name: "evil/new", body: "owned"}),
		"dir through link":       makeTar(t, tarEntry{name: "evil/newdir/", typ: tar.TypeDir}),
		"hard link through link": makeTar(t, tarEntry{name: "h", typ: tar.TypeLink, link: "evil/secret"}),
		"symlink over link dir":  makeTar(t, tarEntry{name: "evil/l", typ: tar.TypeSymlink, link: "secret"}),
	}
}

func TestArchiveInRefusesEscapes(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	w := tw.fs
	tw.write(t, "sibling.txt", "keep")
	mustMkdir(t, tw.path("dest"))
	os.Lchown(tw.path("dest"), w.uid, w.gid)
	tw.symlink(t, tw.outside, "dest/evil")
	for name, body := range hostileArchives(t, tw.outside) {
		t.Run(name, func(t *testing.T) {
			err := w.archiveIn(&ArchiveSpec{Path: "dest"}, bytes.NewReader(body))
			wantCode(t, err, cove.CodeInvalid)
		})
	}
	if got := tw.read(t, "sibling.txt"); got != "keep" {
		t.Errorf("sibling.txt = %q", got)
	}
	for _, p := range []string{"x", "dest/x", "dest/l", "dest/d/l", "dest/a/b/l", "dest/h"} {
		if _, err := os.Lstat(tw.path(p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists: %v", p, err)
		}
	}
}

func TestArchiveInLimits(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	w := tw.fs
	var many []tarEntry
	for i := range 11 {
		many = append(many, tarEntry{name: strings.Repeat("f", i+1), body: strings.Repeat("x", 100<<10)})
	}
	err := w.archiveIn(&ArchiveSpec{Path: "files", MaxFiles: 10}, bytes.NewReader(makeTar(t, many...)))
	wantCode(t, err, cove.CodeInvalid)
	if !strings.Contains(err.Error(), "more than 10 entries") {
		t.Errorf("message %q", err)
	}
	err = w.archiveIn(&ArchiveSpec{Path: "bytes", MaxBytes: 1 << 20}, bytes.NewReader(makeTarGz(t, many...)))
	wantCode(t, err, cove.CodeQuotaExceeded)
	if used := treeBytes(t, tw.path("bytes")); used > 1<<20 {
		t.Errorf("%d bytes extracted past a limit of %d", used, 1<<20)
	}

	// A decompression bomb: a small gzip stream that declares, and would
	// inflate to, a terabyte. It is refused at its header.
	pr, pw := io.Pipe()
	go func() {
		gz := gzip.NewWriter(pw)
		tw := tar.NewWriter(gz)
		tw.WriteHeader(&tar.Header{Name: "bomb", Typeflag: tar.TypeReg, Size: 1 << 40, Mode: 0o644})
		zeros := make([]byte, 1<<20)
		for {
			if _, err := tw.Write(zeros); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
	}()
	done := make(chan error, 1)
	go func() { done <- w.archiveIn(&ArchiveSpec{Path: "bomb"}, pr) }()
	select {
	case err := <-done:
		wantCode(t, err, cove.CodeInvalid)
	case <-time.After(20 * time.Second):
		t.Fatal("the bomb is still being extracted")
	}
	pr.Close()
	if used := treeBytes(t, tw.path("bomb")); used != 0 {
		t.Errorf("the bomb wrote %d bytes", used)
	}
	// Content beyond what a header declares is not extracted: the count is
	// of declared sizes, which the reader enforces.
	small := makeTar(t, tarEntry{name: "small", body: strings.Repeat("y", 10)})
	lying := append(append(small[:1024:1024], bytes.Repeat([]byte("y"), 4096)...), small[1024:]...)
	if err := w.archiveIn(&ArchiveSpec{Path: "lying", MaxBytes: 100}, bytes.NewReader(lying)); err == nil {
		t.Error("an archive whose content exceeds its header was accepted")
	}
	if used := treeBytes(t, tw.path("lying")); used > 10 {
		t.Errorf("%d bytes extracted from an entry that declared 10", used)
	}
}

func treeBytes(t *testing.T, dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			fi, _ := d.Info()
			n += fi.Size()
		}
		return nil
	})
	return n
}

// FuzzArchiveIn extracts arbitrary bytes and checks that nothing outside
// the destination changed, whatever the archive holds.
func FuzzArchiveIn(f *testing.F) {
	tw := newTestWorkspace(f)
	mustWrite(f, tw.path("sibling.txt"), "keep", 0o644)
	for _, b := range hostileArchives(f, tw.outside) {
		f.Add(b)
	}
	f.Add(makeTarGz(f, tarEntry{name: "a/b", body: "x"}, tarEntry{name: "l", typ: tar.TypeSymlink, link: "a"}))
	outside := snapshot(f, tw.outside)
	f.Fuzz(func(t *testing.T, b []byte) {
		dest := tw.path("dest")
		if err := os.RemoveAll(dest); err != nil {
			t.Fatal(err)
		}
		mustMkdir(t, dest)
		os.Lchown(dest, tw.fs.uid, tw.fs.gid)
		if err := os.Symlink(tw.outside, filepath.Join(dest, "evil")); err != nil {
			t.Fatal(err)
		}
		tw.fs.archiveIn(&ArchiveSpec{Path: "dest", MaxBytes: 1 << 20, MaxFiles: 100}, bytes.NewReader(b))
		if got := snapshot(t, tw.outside); got != outside {
			t.Fatalf("the archive changed the outside:\n%s", got)
		}
		if got, _ := os.ReadFile(tw.path("sibling.txt")); string(got) != "keep" {
			t.Fatalf("the archive changed a file beside the destination")
		}
		entries, _ := os.ReadDir(tw.dir)
		if len(entries) != 2 {
			t.Fatalf("the workspace holds %d entries, want dest and sibling.txt", len(entries))
		}
	})
}
