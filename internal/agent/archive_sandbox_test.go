package agent_test

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/cove-sandbox/cove"
)

// TestArchiveBombsInASandbox: in a sandbox with a disk of 10 MiB, hard
// links and sparse files make trees whose content is gigabytes. A tar
// download holds a hard-linked file once; a download that would still
// carry more than the bound (1 GiB here, the least bound) is refused
// before it begins, saying why.
func TestArchiveBombsInASandbox(t *testing.T) {
	limits := cove.DefaultLimits()
	limits.DiskBytes = 10 << 20
	c, ctx := newSandbox(t, "archivebomb", limits)
	sh(t, ctx, c, "mkdir d && head -c 9M /dev/urandom > d/f && i=0 && while [ $i -lt 1000 ]; do i=$((i+1)); ln d/f d/h$i; done")
	// The file size limit is the disk limit: no file is larger, but as
	// many as the sandbox likes cost nothing.
	sh(t, ctx, c, "mkdir bomb && i=0 && while [ $i -lt 120 ]; do i=$((i+1)); truncate -s 10M bomb/f$i; done")

	// What the test reads of an archive before it calls it a bomb.
	const most = 64 << 20
	rc, err := c.ArchiveOut(ctx, "d", "tar", limits.DiskBytes)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(io.LimitReader(rc, most))
	var files, links int
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the tar archive of d, after %d files and %d hard links: %v (more than %d bytes?)", files, links, err, most)
		}
		switch {
		case h.Typeflag == tar.TypeReg && h.Name == "f" && h.Size == 9<<20:
			files++
		case h.Typeflag == tar.TypeLink && h.Linkname == "f":
			links++
		default:
			t.Errorf("entry %s of type %q, size %d, link %q", h.Name, h.Typeflag, h.Size, h.Linkname)
		}
	}
	rc.Close()
	if files != 1 || links != 1000 {
		t.Errorf("the tar archive of d holds %d copies of f and %d hard links to it, want 1 and 1000", files, links)
	}

	// The bound is twice the disk limit and 64 MiB when the host gives
	// the limit, as cove does; else what the agent can tell (its file
	// size limit), and never less than 1 GiB.
	for _, tc := range []struct {
		path, format string
		disk         int64
		says         string
	}{
		{"d", "zip", limits.DiskBytes, "84 MiB: d holds sparse or hard-linked files"},
		{"bomb", "tar", limits.DiskBytes, "84 MiB: bomb holds sparse or hard-linked files"},
		{"bomb", "zip", limits.DiskBytes, "84 MiB: bomb holds sparse or hard-linked files"},
		{"", "tar", limits.DiskBytes, "84 MiB: the workspace holds sparse or hard-linked files"},
		{"bomb", "tar", 0, "1 GiB: bomb holds sparse or hard-linked files"},
	} {
		rc, err := c.ArchiveOut(ctx, tc.path, tc.format, tc.disk)
		if err == nil {
			n, err := io.Copy(io.Discard, io.LimitReader(rc, most))
			rc.Close()
			t.Errorf("%q as %s: an archive of at least %d bytes (%v), want a refusal", tc.path, tc.format, n, err)
			continue
		}
		wantError(t, fmt.Sprintf("%q as %s", tc.path, tc.format), err, cove.CodeConflict)
		if msg := cove.ErrorMessage(err); !strings.Contains(msg, "the archive would hold more than "+tc.says) || !strings.Contains(msg, "download them one by one") {
			t.Errorf("%q as %s: %q", tc.path, tc.format, msg)
		}
	}
}
