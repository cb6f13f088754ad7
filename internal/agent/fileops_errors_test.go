package agent

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/cove-sandbox/cove"
)

// TestReplaceIsAllOrNothing: a bad path anywhere in a replace request
// leaves every file as it was.
func TestReplaceIsAllOrNothing(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	w := tw.fs
	tw.write(t, "ra.txt", "alpha one\n")
	tw.write(t, "rb.txt", "alpha two\n")
	mustMkdir(t, tw.path("dir"))
	tw.symlink(t, "ra.txt", "lnk")
	mustWrite(t, tw.path("big"), strings.Repeat("alpha", maxTextBytes/5+1), 0o644)
	os.Lchown(tw.path("big"), w.uid, w.gid)
	before := snapshot(t, tw.dir)
	for _, c := range []struct {
		last string
		code cove.Code
	}{
		{"nope.txt", cove.CodeNotFound},
		{"dir", cove.CodeInvalid},
		{"lnk", cove.CodeInvalid},
		{"big", cove.CodeInvalid},
		{"../out", cove.CodeInvalid},
	} {
		_, err := w.replace(cove.ReplaceRequest{Paths: []string{"ra.txt", "rb.txt", c.last}, Old: "alpha", New: "OMEGA"}, nil)
		wantCode(t, err, c.code)
		if !strings.Contains(err.Error(), strings.TrimPrefix(c.last, "../")) {
			t.Errorf("%s: message %q does not name it", c.last, err)
		}
		if after := snapshot(t, tw.dir); after != before {
			t.Fatalf("a refused replace (last path %s) changed the workspace:\nbefore:\n%s\nafter:\n%s", c.last, before, after)
		}
	}
	if tw.asOther {
		mustWrite(t, tw.path("locked.txt"), "alpha", 0o000)
		os.Lchown(tw.path("locked.txt"), w.uid, w.gid)
		_, err := w.replace(cove.ReplaceRequest{Paths: []string{"ra.txt", "locked.txt"}, Old: "alpha", New: "OMEGA"}, nil)
		wantCode(t, err, cove.CodeConflict)
		if got := tw.read(t, "ra.txt"); got != "alpha one\n" {
			t.Errorf("ra.txt = %q after a refused replace", got)
		}
	}
	checkNoTempFiles(t, tw.dir)
	// A path given twice is edited once.
	res, err := w.replace(cove.ReplaceRequest{Paths: []string{"ra.txt", "rb.txt", "ra.txt"}, Old: "alpha", New: "alpha alpha"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[2].Replacements != 1 {
		t.Errorf("results = %+v", res)
	}
	for p, want := range map[string]string{"ra.txt": "alpha alpha one\n", "rb.txt": "alpha alpha two\n"} {
		if got := tw.read(t, p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	checkNoTempFiles(t, tw.dir)
}

// TestChmodRefusesTheWorkspaceRoot: the workspace's own mode is not the
// user's to change (every file operation needs it), and the refusal
// changes nothing.
func TestChmodRefusesTheWorkspaceRoot(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	w := tw.fs
	tw.symlink(t, ".", "self")
	before, _ := os.Stat(tw.dir)
	for _, p := range []string{".", "/workspace", "/workspace/", "self"} {
		_, err := w.chmod(p, 0)
		wantCode(t, err, cove.CodeInvalid)
		if !strings.Contains(err.Error(), "the workspace root's mode cannot be changed; chmod a file or directory inside it") {
			t.Errorf("chmod %s: message %q", p, err)
		}
	}
	if after, _ := os.Stat(tw.dir); after.Mode() != before.Mode() {
		t.Errorf("the workspace's mode changed from %v to %v", before.Mode(), after.Mode())
	}
	// A directory made unreadable is described, not refused after the
	// change.
	mustMkdir(t, tw.path("d/e"))
	os.Lchown(tw.path("d"), w.uid, w.gid)
	fi, err := w.chmod("d", 0)
	if err != nil {
		t.Fatalf("chmod d 0: %v", err)
	}
	if fi.Mode != 0 || !fi.IsDir {
		t.Errorf("info = %+v", fi)
	}
}

// TestArchiveOutRefusesUnreadableFilesFirst: a tree with a file or
// directory the user cannot read is refused before anything is sent,
// with a message that names it, its mode and what to do.
func TestArchiveOutRefusesUnreadableFilesFirst(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	if !tw.asOther {
		t.Skip("needs root to act as another user")
	}
	w := tw.fs
	tw.write(t, "cpd/a.txt", "a")
	tw.write(t, "cpd/x", "x")
	tw.write(t, "dd/sub/f", "f")
	os.Chmod(tw.path("cpd/x"), 0)
	os.Chmod(tw.path("dd/sub"), 0)
	for _, c := range []struct{ path, msg string }{
		{"cpd", "cannot read cpd/x: permission denied (its mode is 000: chmod it inside the sandbox, or leave it out)"},
		{"cpd/x", "cannot read cpd/x: permission denied (its mode is 000: chmod it inside the sandbox, or leave it out)"},
		{"dd", "cannot read dd/sub: permission denied (its mode is 000"},
		{"", "cannot read cpd/x"},
	} {
		for _, format := range []string{"tar", "zip"} {
			var frames bytes.Buffer
			err := w.archiveOut(&ArchiveSpec{Path: c.path, Format: format}, &frames, nil)
			wantCode(t, err, cove.CodeConflict)
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("%s as %s: message %q, want %q", c.path, format, err, c.msg)
			}
			if frames.Len() != 0 {
				t.Errorf("%s as %s: %d bytes were sent before the error", c.path, format, frames.Len())
			}
		}
	}
}

// TestErrorsSpeakOfTheWorkspace: os.Root's own words do not reach the
// user.
func TestErrorsSpeakOfTheWorkspace(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	w := tw.fs
	tw.symlink(t, "/etc", "lpw")
	tw.symlink(t, tw.outside, "evil")
	for _, c := range []struct {
		run func() error
		msg string
	}{
		{func() error { _, err := w.readFile("lpw"); return err }, "lpw is a symbolic link that leads outside /workspace"},
		{func() error { return w.readStream(&ReadSpec{Path: "lpw"}, io.Discard, nil) }, "lpw is a symbolic link that leads outside /workspace"},
		{func() error { _, err := w.stat("evil/secret"); return err }, "evil/secret leads through a symbolic link outside /workspace"},
		{func() error { _, err := w.list("evil", false, 10, nil); return err }, "evil is a symbolic link that leads outside /workspace"},
		{func() error { _, err := w.mkdir("evil/new"); return err }, "evil/new leads through a symbolic link outside /workspace"},
	} {
		err := c.run()
		wantCode(t, err, cove.CodeInvalid)
		if !strings.Contains(err.Error(), c.msg) || strings.Contains(err.Error(), "escapes") {
			t.Errorf("message %q, want %q", err, c.msg)
		}
	}
	if !tw.asOther {
		return
	}
	tw.write(t, "bar.txt", "bar")
	os.Chmod(tw.path("bar.txt"), 0)
	_, err := w.readFile("bar.txt")
	wantCode(t, err, cove.CodeConflict)
	if want := "cannot read bar.txt: permission denied (its mode is 000: chmod it inside the sandbox)"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
}
