package agent

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
)

// downloadSpec runs archiveOut for spec and returns the archive.
func downloadSpec(t *testing.T, w workspaceFS, spec *ArchiveSpec) []byte {
	t.Helper()
	var frames bytes.Buffer
	if err := w.archiveOut(spec, &frames, nil); err != nil {
		t.Fatalf("archiving %s as %s: %v", spec.Path, spec.Format, err)
	}
	var body []byte
	for {
		typ, payload, err := readFrame(&frames)
		if err == io.EOF {
			return body
		}
		if err != nil {
			t.Fatal(err)
		}
		switch typ {
		case frameInfo:
			var info cove.FileInfo
			if err := json.Unmarshal(payload, &info); err != nil {
				t.Fatal(err)
			}
		case frameDownload:
			body = append(body, payload...)
		default:
			t.Fatalf("frame %q", typ)
		}
	}
}

// tarListing lists a tar archive's entries in order: "name" for a file
// (with its size), "name -> target" for a hard link, "name/" for a
// directory.
func tarListing(t *testing.T, b []byte) (list []string, content map[string]string) {
	t.Helper()
	content = map[string]string{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return list, content
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeLink:
			list = append(list, h.Name+" => "+h.Linkname)
			if h.Size != 0 || len(data) != 0 {
				t.Errorf("the hard link %s carries %d bytes", h.Name, len(data))
			}
		case tar.TypeReg:
			list = append(list, h.Name)
			content[h.Name] = string(data)
		default:
			list = append(list, h.Name)
		}
	}
}

func (tw *testWorkspace) link(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Link(tw.path(from), tw.path(to)); err != nil {
		t.Fatal(err)
	}
}

// sparse makes rel a file of size bytes that holds none.
func (tw *testWorkspace) sparse(t *testing.T, rel string, size int64) {
	t.Helper()
	tw.write(t, rel, "")
	if err := os.Truncate(tw.path(rel), size); err != nil {
		t.Fatal(err)
	}
}

// TestArchiveOutWritesHardLinksOnce: in a tar archive a file met again
// under another name is a hard link to the name it was archived as,
// relative as every name is, and carries its content once; uploaded, the
// archive gives linked files back. A zip archive, which has no hard
// links, carries it under every name.
func TestArchiveOutWritesHardLinksOnce(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	w := tw.fs
	body := strings.Repeat("h", 3*chunkSize+1)
	tw.write(t, "proj/a.bin", body)
	tw.write(t, "proj/other.txt", "other")
	mustMkdir(t, tw.path("proj/sub"))
	tw.link(t, "proj/a.bin", "proj/sub/b.bin")
	tw.link(t, "proj/a.bin", "proj/z.bin")
	// Linked to a file outside what is archived: archived in full.
	tw.write(t, "elsewhere.txt", "out")
	tw.link(t, "elsewhere.txt", "proj/sub/in.txt")

	b := downloadSpec(t, w, &ArchiveSpec{Path: "proj", Format: "tar"})
	list, content := tarListing(t, b)
	want := "a.bin other.txt sub/ sub/b.bin => a.bin sub/in.txt z.bin => a.bin"
	if got := strings.Join(list, " "); got != want {
		t.Errorf("tar entries:\n%s\nwant:\n%s", got, want)
	}
	if content["a.bin"] != body || content["sub/in.txt"] != "out" {
		t.Errorf("a.bin holds %d bytes, sub/in.txt %q", len(content["a.bin"]), content["sub/in.txt"])
	}
	if len(b) > len(body)+16<<10 {
		t.Errorf("the archive is %d bytes, for %d of content", len(b), len(body))
	}

	// Names are relative to what is archived, link targets too.
	list, _ = tarListing(t, downloadSpec(t, w, &ArchiveSpec{Path: "", Format: "tar"}))
	want = "elsewhere.txt proj/ proj/a.bin proj/other.txt proj/sub/ proj/sub/b.bin => proj/a.bin proj/sub/in.txt => elsewhere.txt proj/z.bin => proj/a.bin"
	if got := strings.Join(list, " "); got != want {
		t.Errorf("tar entries of the workspace:\n%s\nwant:\n%s", got, want)
	}

	// Back in, the names are one file again.
	if err := w.archiveIn(&ArchiveSpec{Path: "copy"}, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	a, err := os.Stat(tw.path("copy/a.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"copy/sub/b.bin", "copy/z.bin"} {
		fi, err := os.Stat(tw.path(name))
		if err != nil || !os.SameFile(a, fi) {
			t.Errorf("%s is not a link to copy/a.bin: %v", name, err)
		}
	}
	if got := tw.read(t, "copy/z.bin"); got != body {
		t.Errorf("copy/z.bin holds %d bytes, want %d", len(got), len(body))
	}

	entries := readZipEntries(t, downloadSpec(t, w, &ArchiveSpec{Path: "proj", Format: "zip"}))
	for _, name := range []string{"a.bin", "sub/b.bin", "z.bin"} {
		if entries[name].data != body {
			t.Errorf("zip entry %s holds %d bytes, want %d", name, len(entries[name].data), len(body))
		}
	}
}

// TestArchiveOutBound: an archive that would carry more file content than
// twice the workspace's disk limit and a little (sparse files, hard links
// in a zip archive) is refused before a byte is sent, saying why.
func TestArchiveOutBound(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	w := tw.fs
	const disk = 1 << 20
	bound := archiveBound(&ArchiveSpec{MaxBytes: disk})
	if bound != 2*disk+archiveSlack {
		t.Fatalf("the bound for a disk of %d is %d", disk, bound)
	}
	tw.sparse(t, "bomb/f1", bound/2+1)
	tw.sparse(t, "bomb/f2", bound/2+1)
	tw.sparse(t, "one.img", bound+1)
	tw.sparse(t, "links/f", bound/2+1)
	tw.link(t, "links/f", "links/g")
	tw.write(t, "fine/a.txt", "a")

	refused := func(p, format string) string {
		t.Helper()
		var frames bytes.Buffer
		err := w.archiveOut(&ArchiveSpec{Path: p, Format: format, MaxBytes: disk}, &frames, nil)
		if err == nil {
			t.Fatalf("%q as %s: archived, want a refusal", p, format)
		}
		code, msg := fileErrorCode(err)
		if code != cove.CodeConflict || !strings.Contains(msg, "the archive would hold more than 66 MiB") || !strings.Contains(msg, "download them one by one") {
			t.Errorf("%q as %s: %s error %q", p, format, code, msg)
		}
		if frames.Len() != 0 {
			t.Errorf("%q as %s: %d bytes sent before the refusal", p, format, frames.Len())
		}
		return msg
	}
	for _, format := range []string{"tar", "zip"} {
		if msg := refused("bomb", format); !strings.Contains(msg, ": bomb holds sparse or hard-linked files") {
			t.Errorf("the refusal does not name the directory: %q", msg)
		}
		if msg := refused("", format); !strings.Contains(msg, ": the workspace holds") {
			t.Errorf("the refusal does not name the workspace: %q", msg)
		}
		refused("one.img", format)
		downloadSpec(t, w, &ArchiveSpec{Path: "fine", Format: format, MaxBytes: disk})
	}
	// The links fit in a tar archive, which holds them once; a zip
	// archive would hold them twice, and the refusal says to use tar.
	list, _ := tarListing(t, downloadSpec(t, w, &ArchiveSpec{Path: "links", Format: "tar", MaxBytes: disk}))
	if got := strings.Join(list, " "); got != "f g => f" {
		t.Errorf("tar entries %s", got)
	}
	if msg := refused("links", "zip"); !strings.HasSuffix(msg, "download them one by one, or as a tar archive, which holds each hard-linked file once") {
		t.Errorf("the refusal of a zip archive does not suggest tar: %q", msg)
	}
	if msg := refused("bomb", "zip"); strings.Contains(msg, "tar") {
		t.Errorf("the refusal suggests tar, which would not do: %q", msg)
	}
}

// TestArchiveOutStopsAtTheBound: content that grew past the bound after
// the tree was checked ends the archive with the error, rather than a
// shorter archive passing as whole.
func TestArchiveOutStopsAtTheBound(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	tw.write(t, "d/a", "aaaa")
	tw.write(t, "d/b", "bbbb")
	var written []string
	err := tw.fs.run(func(root *os.Root) error {
		var out bytes.Buffer
		aw := &tarWriter{tw: tar.NewWriter(&out)}
		content := newArchiveContent("d", "tar", 6)
		return walk(root, "d", nil, func(child string, fi fs.FileInfo, link string) error {
			err := addToArchive(aw, content, root, child, entryIn("d", child), fi, link)
			if err == nil {
				written = append(written, child)
			}
			return err
		})
	})
	wantCode(t, err, cove.CodeConflict)
	if strings.Join(written, " ") != "d/a" {
		t.Errorf("archived %v before the error, want d/a", written)
	}
}

// TestArchiveBound: twice the disk limit and a little, when the host gives
// it; else from the agent's file size limit, at least minArchiveBound;
// else maxArchiveBound.
func TestArchiveBound(t *testing.T) {
	t.Parallel()
	for disk, want := range map[int64]int64{
		10 << 20: 84 << 20,
		1 << 30:  2<<30 + 64<<20,
		1 << 62:  maxArchiveBound,
	} {
		if got := archiveBound(&ArchiveSpec{MaxBytes: disk}); got != want {
			t.Errorf("disk limit %d: bound %d, want %d", disk, got, want)
		}
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &rl); err != nil || rl.Cur != unix.RLIM_INFINITY {
		t.Skipf("this test runs with a file size limit (%v)", err)
	}
	if got := archiveBound(&ArchiveSpec{}); got != maxArchiveBound {
		t.Errorf("no limit known: bound %d, want %d", got, maxArchiveBound)
	}
}
