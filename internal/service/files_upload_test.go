package service

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/cove-sandbox/cove"
)

// uploadsOf returns a next function of UploadFiles that gives files, in
// order.
func uploadsOf(files ...*cove.FileUpload) func() (*cove.FileUpload, error) {
	return func() (*cove.FileUpload, error) {
		if len(files) == 0 {
			return nil, io.EOF
		}
		f := files[0]
		files = files[1:]
		return f, nil
	}
}

// TestWriteKeepsTheReplacedMode: a file written without a mode over
// another keeps that one's permission bits, as cp and docker cp do, so an
// executable script that is replaced stays executable; a given mode, or a
// new file, gets its own.
func TestWriteKeepsTheReplacedMode(t *testing.T) {
	svc, _ := newTestService(t)
	ctx := context.Background()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Language: "bash"})
	if err != nil {
		t.Fatal(err)
	}
	mode := func(p string) uint32 {
		t.Helper()
		fi, err := svc.StatFile(ctx, sb.ID, p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode
	}
	write := func(p, content string, m uint32) *cove.FileInfo {
		t.Helper()
		fi, err := svc.WriteFile(ctx, sb.ID, p, strings.NewReader(content), m)
		if err != nil {
			t.Fatal(err)
		}
		return fi
	}
	write("run.sh", "#!/bin/sh\necho one\n", 0o755)
	if fi := write("run.sh", "#!/bin/sh\necho two\n", 0); fi.Mode != 0o755 {
		t.Errorf("the written file is described with mode %#o, want the replaced file's 0755", fi.Mode)
	}
	if m := mode("run.sh"); m != 0o755 {
		t.Fatalf("run.sh has mode %#o after a write without a mode, want 0755", m)
	}
	if res := sh(t, svc, ctx, sb.ID, "./run.sh"); res.Stdout != "two\n" {
		t.Fatalf("the replaced script ran to %q (stderr %q), want two", res.Stdout, res.Stderr)
	}
	write("run.sh", "x", 0o600)
	if m := mode("run.sh"); m != 0o600 {
		t.Errorf("a given mode: %#o, want 0600", m)
	}
	write("new.txt", "x", 0)
	if m := mode("new.txt"); m != 0o644 {
		t.Errorf("a new file without a mode: %#o, want 0644", m)
	}

	// An upload of several files does the same, file by file.
	write("a.sh", "a", 0o750)
	if _, err := svc.UploadFiles(ctx, sb.ID, uploadsOf(
		&cove.FileUpload{Path: "a.sh", Body: strings.NewReader("aa")},
		&cove.FileUpload{Path: "b.txt", Body: strings.NewReader("b")},
		&cove.FileUpload{Path: "new.txt", Mode: 0o700, Body: strings.NewReader("n")},
	)); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]uint32{"a.sh": 0o750, "b.txt": 0o644, "new.txt": 0o700} {
		if m := mode(p); m != want {
			t.Errorf("after an upload of several: %s has mode %#o, want %#o", p, m, want)
		}
	}
}

// TestUploadOverTheDiskLimit: content larger than the sandbox's disk
// limit is quota_exceeded, as a full disk is, with the limit in words and
// the file named; nothing is written.
func TestUploadOverTheDiskLimit(t *testing.T) {
	svc, _ := newTestService(t)
	ctx := context.Background()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Language: "bash", Limits: cove.Limits{DiskBytes: 4 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 5<<20)
	half := strings.Repeat("x", 3<<20)
	for name, c := range map[string]struct {
		upload func() error
		want   string
	}{
		"one file": {
			upload: func() error {
				_, err := svc.WriteFile(ctx, sb.ID, "big.bin", strings.NewReader(big), 0)
				return err
			},
			want: "no space left in the workspace: big.bin is larger than its disk limit of 4 MiB (",
		},
		"several files": {
			upload: func() error {
				_, err := svc.UploadFiles(ctx, sb.ID, uploadsOf(
					&cove.FileUpload{Path: "a.bin", Body: strings.NewReader(half)},
					&cove.FileUpload{Path: "dir/b.bin", Body: strings.NewReader(half)},
				))
				return err
			},
			want: "no space left in the workspace: the upload is larger than its disk limit of 4 MiB (at dir/b.bin; ",
		},
	} {
		err := c.upload()
		if cove.ErrorCode(err) != cove.CodeQuotaExceeded || !strings.HasPrefix(cove.ErrorMessage(err), c.want) {
			t.Errorf("%s: got %v (%s), want quota_exceeded %q...", name, err, cove.ErrorCode(err), c.want)
		}
		list, err := svc.ListFiles(ctx, sb.ID, ".", true)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 0 {
			t.Errorf("%s: the refused upload left %s", name, list[0].Path)
		}
	}
}

// TestFullWorkspace: an upload into a workspace whose disk limit is
// reached is quota_exceeded, names the file, and says why replacing a
// file needs room for both copies; an archive over the limit is worded
// as a file is.
func TestFullWorkspace(t *testing.T) {
	svc, _ := newTestService(t)
	ctx := context.Background()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Language: "bash", Limits: cove.Limits{DiskBytes: 8 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	// A file of 5 MiB: replacing it needs 10.
	five := strings.Repeat("x", 5<<20)
	if _, err := svc.WriteFile(ctx, sb.ID, "five.bin", strings.NewReader(five), 0); err != nil {
		t.Fatal(err)
	}
	_, err = svc.WriteFile(ctx, sb.ID, "five.bin", strings.NewReader(five), 0)
	if cove.ErrorCode(err) != cove.CodeQuotaExceeded || !strings.Contains(err.Error(), "replacing five.bin takes room for both its copies until the new one is complete") {
		t.Errorf("replacing a file over half the disk: %v (%s)", err, cove.ErrorCode(err))
	}
	_, err = svc.WriteFile(ctx, sb.ID, "new.bin", strings.NewReader(five), 0)
	if cove.ErrorCode(err) != cove.CodeQuotaExceeded || !strings.HasPrefix(err.Error(), "no space left in the workspace: its disk limit is reached") {
		t.Errorf("a new file that does not fit: %v (%s)", err, cove.ErrorCode(err))
	}
	big := strings.Repeat("x", 5<<20)
	err = svc.UploadArchive(ctx, sb.ID, "d", bytes.NewReader(tarOf(t, [2]string{"a", big}, [2]string{"b", big})))
	if cove.ErrorCode(err) != cove.CodeQuotaExceeded || !strings.HasPrefix(err.Error(), "no space left in the workspace:") {
		t.Errorf("an archive that does not fit: %v (%s)", err, cove.ErrorCode(err))
	}
	// Full to the last byte: even the staging directory cannot be made,
	// and the error names the file, not ".".
	sh(t, svc, ctx, sb.ID, "cat /dev/zero > fill 2>/dev/null; true")
	_, err = svc.WriteFile(ctx, sb.ID, "small.txt", strings.NewReader("x"), 0)
	if cove.ErrorCode(err) != cove.CodeQuotaExceeded || strings.HasSuffix(err.Error(), ": .") {
		t.Errorf("a write to a full disk: %v (%s)", err, cove.ErrorCode(err))
	}
	t.Logf("a write to a full disk: %v", err)
}
