package service

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/cove-sandbox/cove"
)

// tarOf makes a tar archive of regular files, in order.
func tarOf(t *testing.T, files ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f[0], Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f[1]))}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, f[1])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestUploadArchiveIsAllOrNothing: a refused archive, bad or too large
// for the disk limit, leaves the workspace as it was and its space free.
func TestUploadArchiveIsAllOrNothing(t *testing.T) {
	svc, _ := newTestService(t)
	ctx := context.Background()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Language: "python", Limits: cove.Limits{DiskBytes: 4 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.WriteFile(ctx, sb.ID, "keep.txt", strings.NewReader("original"), 0o644); err != nil {
		t.Fatal(err)
	}
	listing := func() string {
		t.Helper()
		list, err := svc.ListFiles(ctx, sb.ID, ".", true)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, fi := range list {
			b.WriteString(fi.Path + " ")
		}
		return b.String()
	}
	read := func(name string) string {
		t.Helper()
		rc, _, err := svc.ReadFile(ctx, sb.ID, name)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return string(b)
	}
	before := listing()
	big := strings.Repeat("x", 3<<20)
	for name, c := range map[string]struct {
		body []byte
		code cove.Code
	}{
		"escape":    {tarOf(t, [2]string{"keep.txt", "overwritten"}, [2]string{"new.txt", "new"}, [2]string{"../evil", "x"}), cove.CodeInvalid},
		"conflict":  {tarOf(t, [2]string{"new.txt", "new"}, [2]string{"keep.txt/x", "x"}), cove.CodeConflict},
		"too large": {tarOf(t, [2]string{"keep.txt", "overwritten"}, [2]string{"a", big}, [2]string{"b", big}), cove.CodeQuotaExceeded},
	} {
		err := svc.UploadArchive(ctx, sb.ID, ".", bytes.NewReader(c.body))
		if cove.ErrorCode(err) != c.code {
			t.Errorf("%s: got %v, want %s", name, err, c.code)
		}
		if got := read("keep.txt"); got != "original" {
			t.Errorf("%s: keep.txt = %q after a refused upload", name, got)
		}
		if after := listing(); after != before {
			t.Errorf("%s: the workspace holds %q, want %q", name, after, before)
		}
	}
	// The refused uploads' space is free again: most of the limit fits.
	if err := svc.UploadArchive(ctx, sb.ID, "d", bytes.NewReader(tarOf(t, [2]string{"a", big}))); err != nil {
		t.Fatalf("an upload that fits after refused ones: %v", err)
	}
	if got := read("d/a"); len(got) != len(big) {
		t.Errorf("d/a has %d bytes", len(got))
	}
}

// TestUploadFilesNamesTheFileThatFails: a file of an upload that cannot be
// read is named in the error, and the upload writes nothing.
func TestUploadFilesNamesTheFileThatFails(t *testing.T) {
	svc, _ := newTestService(t)
	ctx := context.Background()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Language: "bash"})
	if err != nil {
		t.Fatal(err)
	}
	files := []*cove.FileUpload{
		{Path: "a.txt", Body: strings.NewReader("a")},
		{Path: "dir/b.txt", Body: io.MultiReader(strings.NewReader("half"), iotest.ErrReader(errors.New("the disk broke")))},
		{Path: "c.txt", Body: strings.NewReader("c")},
	}
	_, err = svc.UploadFiles(ctx, sb.ID, func() (*cove.FileUpload, error) {
		if len(files) == 0 {
			return nil, io.EOF
		}
		f := files[0]
		files = files[1:]
		return f, nil
	})
	if cove.ErrorCode(err) != cove.CodeInvalid || !strings.Contains(err.Error(), "reading dir/b.txt: the disk broke") {
		t.Fatalf("error %v, want invalid naming dir/b.txt and why", err)
	}
	fis, err := svc.ListFiles(ctx, sb.ID, ".", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(fis) != 0 {
		t.Fatalf("the failed upload left %d files, such as %s", len(fis), fis[0].Path)
	}
}
