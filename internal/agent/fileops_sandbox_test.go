package agent_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/agent"
	"github.com/cove-sandbox/cove/internal/runtime"
	"github.com/cove-sandbox/cove/internal/runtime/native/nativetest"
)

func TestMain(m *testing.M) {
	// The test binary doubles as the agent of the sandboxes that tests
	// start, as the cove binary does.
	if agent.IsAgentInvocation() {
		agent.Main()
		return
	}
	os.Exit(m.Run())
}

// sh runs a shell command in the sandbox as its user and returns its
// standard output.
func sh(t *testing.T, ctx context.Context, c *agent.Client, cmd string) string {
	t.Helper()
	ex, err := c.Start(ctx, &agent.ExecSpec{Argv: []string{"/bin/sh", "-c", cmd}, Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/workspace", TimeoutMS: 10000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	var out, errOut bytes.Buffer
	for {
		o, err := ex.Next()
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		switch {
		case o.Result != nil:
			if o.Result.ExitCode != 0 {
				t.Fatalf("%s: exit %d: %s%s", cmd, o.Result.ExitCode, errOut.String(), o.Result.StartError)
			}
			return out.String()
		case o.Stream == 1:
			out.Write(o.Data)
		default:
			errOut.Write(o.Data)
		}
	}
}

func wantError(t *testing.T, what string, err error, code cove.Code) {
	t.Helper()
	var ce *cove.Error
	if !errors.As(err, &ce) || ce.Code != code {
		t.Errorf("%s: got %v, want a %s error", what, err, code)
	}
}

// TestFileOperationsInASandbox runs the file operations against a real
// sandbox: its agent under seccomp and Landlock, its workspace shown
// through an idmapped mount, and its user code planting links.
func TestFileOperationsInASandbox(t *testing.T) {
	b, _ := nativetest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	inst, err := b.Create(ctx, runtime.Spec{ID: fmt.Sprintf("fileops%d", os.Getpid()), Limits: cove.DefaultLimits()})
	if err != nil {
		t.Fatalf("creating a sandbox: %v", err)
	}
	defer inst.Destroy(context.Background())
	c := inst.Agent()

	sh(t, ctx, c, "ln -s /etc etc && ln -s /proc/1/root host && ln -s .. up && mkdir -p d/e && echo hello > d/e/f && mkfifo fifo")

	body := make([]byte, 3<<20+5)
	rand.Read(body)
	if _, err := c.WriteStream(ctx, "in/blob.bin", 0o640, bytes.NewReader(body), 0); err != nil {
		t.Fatal(err)
	}
	// The sandbox user owns what the agent wrote and sees it whole.
	if got := sh(t, ctx, c, "stat -c %u:%g in; stat -c '%u:%g %a %s' in/blob.bin"); got != "1000:1000\n1000:1000 640 3145733\n" {
		t.Errorf("ownership inside the sandbox: %q", got)
	}
	rc, fi, err := c.ReadStream(ctx, "in/blob.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, body) || fi.Mode != 0o640 {
		t.Fatalf("read back %d bytes, %v, %+v", len(got), err, fi)
	}

	if fi, err := c.Stat(ctx, "etc"); err != nil || fi.Symlink != "/etc" {
		t.Errorf("Stat etc = %+v, %v", fi, err)
	}
	list, err := c.List(ctx, "/workspace", true)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, fi := range list {
		paths = append(paths, fi.Path)
	}
	if got := strings.Join(paths, " "); got != "d d/e d/e/f etc fifo host in in/blob.bin up" {
		t.Errorf("List = %s", got)
	}

	if _, err := c.Mkdir(ctx, "x/y"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Move(ctx, "d/e/f", "d/e/g"); err != nil {
		t.Error(err)
	}
	if _, err := c.Move(ctx, "in", "x2"); err != nil {
		t.Error(err)
	}
	if _, err := c.Chmod(ctx, "x2/blob.bin", 0o600); err != nil {
		t.Error(err)
	}
	res, err := c.Search(ctx, cove.SearchRequest{Content: "hello"})
	if err != nil || len(res.Matches) != 1 {
		t.Errorf("Search = %+v, %v", res, err)
	}
	if _, err := c.Replace(ctx, cove.ReplaceRequest{Paths: []string{"d/e/g"}, Old: "hello", New: "bye"}); err != nil {
		t.Error(err)
	}
	if got := sh(t, ctx, c, "cat d/e/g; echo more >> d/e/g; stat -c %u d/e/g"); got != "bye\n1000\n" {
		t.Errorf("the replaced file, seen by user code: %q", got)
	}
	// Renames and hard links from one directory to another need
	// Landlock's refer right on the workspace.
	t.Run("across directories", func(t *testing.T) {
		if _, err := c.Move(ctx, "d/e/g", "x/y/g"); err != nil {
			t.Errorf("moving a file across directories: %v", err)
		}
		if _, err := c.Move(ctx, "x2", "x/y/x2"); err != nil {
			t.Errorf("moving a directory across directories: %v", err)
		}
		var arc bytes.Buffer
		tw := tar.NewWriter(&arc)
		tw.WriteHeader(&tar.Header{Name: "a/f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 2})
		tw.Write([]byte("f\n"))
		tw.WriteHeader(&tar.Header{Name: "b/hard", Typeflag: tar.TypeLink, Linkname: "a/f"})
		tw.Close()
		if err := c.ArchiveIn(ctx, "x/links", &arc, agent.ArchiveLimits{}); err != nil {
			t.Errorf("a hard link across directories: %v", err)
		}
	})

	for _, format := range []string{"tar", "zip"} {
		rc, err := c.ArchiveOut(ctx, "", format, 0)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil || n < int64(len(body)) {
			t.Errorf("%s archive: %d bytes, %v", format, n, err)
		}
	}
	var arc bytes.Buffer
	tw := tar.NewWriter(&arc)
	tw.WriteHeader(&tar.Header{Name: "u/run.sh", Typeflag: tar.TypeReg, Mode: 0o4755, Size: 3})
	tw.Write([]byte("ok\n"))
	tw.WriteHeader(&tar.Header{Name: "u/link", Typeflag: tar.TypeSymlink, Linkname: "run.sh"})
	tw.Close()
	if err := c.ArchiveIn(ctx, "up-target", &arc, agent.ArchiveLimits{}); err != nil {
		t.Fatal(err)
	}
	if got := sh(t, ctx, c, "stat -c '%u %a' up-target/u/run.sh; cat up-target/u/link"); got != "1000 755\nok\n" {
		t.Errorf("extracted, seen by user code: %q", got)
	}

	// Links that user code planted lead nowhere outside.
	_, err = c.Stat(ctx, "etc/passwd")
	wantError(t, "Stat through a link to /etc", err, cove.CodeInvalid)
	_, _, err = c.ReadStream(ctx, "host/etc/shadow")
	wantError(t, "reading through a link to the host", err, cove.CodeInvalid)
	_, err = c.WriteStream(ctx, "up/escaped", 0, strings.NewReader("x"), 0)
	wantError(t, "writing through a link out", err, cove.CodeInvalid)
	_, err = c.List(ctx, "host", false)
	wantError(t, "listing through a link to the host", err, cove.CodeInvalid)
	_, _, err = c.ReadStream(ctx, "fifo")
	wantError(t, "reading a FIFO", err, cove.CodeInvalid)
	if err := c.Remove(ctx, "x", true); err != nil {
		t.Error(err)
	}
	wantError(t, "removing what was moved away", c.Remove(ctx, "in", true), cove.CodeNotFound)
	if got := sh(t, ctx, c, "ls"); got != "d\netc\nfifo\nhost\nup\nup-target\n" {
		t.Errorf("left in the workspace: %q", got)
	}
}
