package agent

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/cove-sandbox/cove"
)

// newTestClient serves the test workspace over a yamux session on an
// in-memory connection, as the agent serves its host, and returns the
// host's client.
func newTestClient(t *testing.T, tw *testWorkspace) *Client {
	t.Helper()
	s := newServer(&BootConfig{UID: tw.fs.uid, GID: tw.fs.gid}, nil)
	s.workspace = tw.dir
	agentSide, hostSide := net.Pipe()
	sess, err := yamux.Server(agentSide, yamuxConfig())
	if err != nil {
		t.Fatal(err)
	}
	// serve's loop without its reaper, which would reap the children of
	// other tests in this process.
	go func() {
		for {
			st, err := sess.AcceptStream()
			if err != nil {
				return
			}
			go s.handle(st)
		}
	}()
	cs, err := yamux.Client(hostSide, yamuxConfig())
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{sess: cs}
	t.Cleanup(func() {
		c.Close()
		sess.Close()
	})
	return c
}

// wantCoveCode checks that err is a *cove.Error with code.
func wantCoveCode(t *testing.T, err error, code cove.Code) {
	t.Helper()
	var ce *cove.Error
	if !errors.As(err, &ce) {
		t.Fatalf("got %v (%T), want a cove error %s", err, err, code)
	}
	if ce.Code != code {
		t.Fatalf("got %s error %q, want %s", ce.Code, ce.Message, code)
	}
}

func TestClientFileOperations(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	c := newTestClient(t, tw)
	ctx := context.Background()

	// The calls RunCode makes keep working.
	if err := c.WriteFiles(ctx, []File{{Path: "main.py", Data: []byte("print('needle')\n")}}); err != nil {
		t.Fatal(err)
	}
	if b, err := c.ReadFile(ctx, "/workspace/main.py"); err != nil || string(b) != "print('needle')\n" {
		t.Fatalf("ReadFile = %q, %v", b, err)
	}
	_, err := c.ReadFile(ctx, "missing.py")
	wantCoveCode(t, err, cove.CodeNotFound)

	fi, err := c.Mkdir(ctx, "pkg/sub")
	if err != nil || !fi.IsDir {
		t.Fatalf("Mkdir = %+v, %v", fi, err)
	}
	fi, err = c.Move(ctx, "main.py", "pkg/sub/main.py")
	if err != nil || fi.Path != "pkg/sub/main.py" {
		t.Fatalf("Move = %+v, %v", fi, err)
	}
	fi, err = c.Chmod(ctx, "pkg/sub/main.py", 0o700)
	if err != nil || fi.Mode != 0o700 {
		t.Fatalf("Chmod = %+v, %v", fi, err)
	}
	fi, err = c.Stat(ctx, "pkg/sub/main.py")
	if err != nil || fi.Size != 16 || fi.Name != "main.py" {
		t.Fatalf("Stat = %+v, %v", fi, err)
	}
	list, err := c.List(ctx, "", true)
	if err != nil {
		t.Fatal(err)
	}
	if got := listPaths(list); got != "pkg pkg/sub pkg/sub/main.py" {
		t.Errorf("List = %s", got)
	}
	res, err := c.Search(ctx, cove.SearchRequest{Content: "needle"})
	if err != nil || len(res.Matches) != 1 || res.Matches[0].Line != 1 || res.Matches[0].Text != "print('needle')" {
		t.Fatalf("Search = %+v, %v", res, err)
	}
	rr, err := c.Replace(ctx, cove.ReplaceRequest{Paths: []string{"pkg/sub/main.py"}, Old: "needle", New: "pin"})
	if err != nil || len(rr) != 1 || rr[0].Replacements != 1 {
		t.Fatalf("Replace = %+v, %v", rr, err)
	}
	if got := tw.read(t, "pkg/sub/main.py"); got != "print('pin')\n" {
		t.Errorf("replaced content = %q", got)
	}
	if err := c.Remove(ctx, "pkg", true); err != nil {
		t.Fatal(err)
	}
	err = c.Remove(ctx, "pkg", false)
	wantCoveCode(t, err, cove.CodeNotFound)
	if !strings.Contains(err.Error(), "no such file or directory: pkg") {
		t.Errorf("removing what is gone: %v", err)
	}

	// Every error reaches the host with its code.
	tw.write(t, "d/f", "x")
	_, err = c.Stat(ctx, "nope")
	wantCoveCode(t, err, cove.CodeNotFound)
	_, err = c.Stat(ctx, "../etc/passwd")
	wantCoveCode(t, err, cove.CodeInvalid)
	_, err = c.Mkdir(ctx, "d/f")
	wantCoveCode(t, err, cove.CodeConflict)
	_, err = c.Move(ctx, "d/f", "d")
	wantCoveCode(t, err, cove.CodeConflict)
	wantCoveCode(t, c.Remove(ctx, "d", false), cove.CodeConflict)
	wantCoveCode(t, c.Remove(ctx, "/workspace", true), cove.CodeInvalid)
	_, err = c.Chmod(ctx, "d/f", 0o6755)
	wantCoveCode(t, err, cove.CodeInvalid)
	_, err = c.Search(ctx, cove.SearchRequest{})
	wantCoveCode(t, err, cove.CodeInvalid)
	_, err = c.Replace(ctx, cove.ReplaceRequest{Paths: []string{"nope"}, Old: "a", New: "b"})
	wantCoveCode(t, err, cove.CodeNotFound)
	_, err = c.List(ctx, "d/f", false)
	wantCoveCode(t, err, cove.CodeInvalid)
}

func TestClientListAndSearchSpanManyFrames(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	c := newTestClient(t, tw)
	ctx := context.Background()
	var files []File
	long := strings.Repeat("n", 200)
	for i := range 3000 {
		files = append(files, File{Path: long + "/" + strings.Repeat("f", i%200+1) + string(rune('a'+i/200)), Data: []byte("needle\n")})
	}
	if err := c.WriteFiles(ctx, files); err != nil {
		t.Fatal(err)
	}
	list, err := c.List(ctx, long, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3000 {
		t.Errorf("listed %d entries, want 3000", len(list))
	}
	res, err := c.Search(ctx, cove.SearchRequest{Content: "needle"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Matches) != maxSearchResults || !res.Truncated {
		t.Errorf("search found %d (truncated %v), want %d and truncated", len(res.Matches), res.Truncated, maxSearchResults)
	}
}

func TestClientStreams(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	c := newTestClient(t, tw)
	ctx := context.Background()
	body := make([]byte, 5<<20+123)
	rand.Read(body)

	fi, err := c.WriteStream(ctx, "data/blob.bin", 0, bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size != int64(len(body)) || fi.Mode != 0o644 {
		t.Errorf("info = %+v", fi)
	}
	tw.checkOwned(t, "data/blob.bin")
	rc, fi, err := c.ReadStream(ctx, "data/blob.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, body) || fi.Size != int64(len(body)) {
		t.Fatalf("read back %d bytes (%v), info %+v", len(got), err, fi)
	}

	// Over the cap: refused, nothing left behind.
	_, err = c.WriteStream(ctx, "data/big.bin", 0o600, bytes.NewReader(body), 1<<20)
	wantCoveCode(t, err, cove.CodeQuotaExceeded)
	if !strings.Contains(err.Error(), "no space left in the workspace: data/big.bin is larger than its disk limit of 1 MiB (") {
		t.Errorf("message %q", err)
	}
	if _, err := os.Lstat(tw.path("data/big.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused upload left a file: %v", err)
	}
	// The body fails midway: its error comes back, nothing is left.
	bodyErr := errors.New("the client went away")
	_, err = c.WriteStream(ctx, "data/cut.bin", 0, &failingReader{data: body[:200<<10], err: bodyErr}, 0)
	if !errors.Is(err, bodyErr) {
		t.Errorf("got %v, want the body's error", err)
	}
	// An early error (a directory in the way) does not wait for the body.
	_, err = c.WriteStream(ctx, "data", 0, io.MultiReader(bytes.NewReader(body), bytes.NewReader(body)), 0)
	wantCoveCode(t, err, cove.CodeConflict)
	waitNoTempFiles(t, tw)
	if _, err := os.Lstat(tw.path("data/cut.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an interrupted upload left a file: %v", err)
	}

	_, _, err = c.ReadStream(ctx, "data")
	wantCoveCode(t, err, cove.CodeInvalid)
	_, _, err = c.ReadStream(ctx, "missing")
	wantCoveCode(t, err, cove.CodeNotFound)

	// Parts: from an offset, of a length; past the end, nothing.
	size := int64(len(body))
	for _, r := range []struct{ off, n, wantFrom, wantTo int64 }{
		{0, 0, 0, size}, {1 << 20, 0, 1 << 20, size}, {3, 4, 3, 7}, {size - 5, 100, size - 5, size}, {size, 0, size, size}, {size + 10, 5, size, size},
	} {
		rc, fi, err := c.ReadRange(ctx, "data/blob.bin", r.off, r.n)
		if err != nil {
			t.Fatalf("part %d+%d: %v", r.off, r.n, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, body[r.wantFrom:r.wantTo]) || fi.Size != size {
			t.Errorf("part %d+%d: %d bytes (%v), want bytes %d to %d; info %+v", r.off, r.n, len(got), err, r.wantFrom, r.wantTo, fi)
		}
	}
	_, _, err = c.ReadRange(ctx, "data/blob.bin", -1, 0)
	wantCoveCode(t, err, cove.CodeInvalid)

	// Closing a download early, or cancelling it, frees the session.
	rc, _, err = c.ReadStream(ctx, "data/blob.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	cctx, cancel := context.WithCancel(ctx)
	rc, _, err = c.ReadStream(cctx, "data/blob.bin")
	if err != nil {
		t.Fatal(err)
	}
	io.ReadFull(rc, make([]byte, 1000))
	cancel()
	if _, err := io.Copy(io.Discard, rc); !errors.Is(err, context.Canceled) {
		t.Errorf("after cancel, Read = %v", err)
	}
	rc.Close()
	if _, err := c.Stat(ctx, "data/blob.bin"); err != nil {
		t.Errorf("the session is unusable after a cancelled download: %v", err)
	}
}

// waitNoTempFiles waits for the agent to finish with uploads it refused
// (it answers before it cleans up), then checks that nothing is left.
func waitNoTempFiles(t *testing.T, tw *testWorkspace) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && strings.Contains(snapshot(t, tw.dir), "/.cove-") {
		time.Sleep(10 * time.Millisecond)
	}
	checkNoTempFiles(t, tw.dir)
}

func TestClientArchives(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	c := newTestClient(t, tw)
	ctx := context.Background()
	big := make([]byte, 300<<10)
	rand.Read(big)
	if err := c.WriteFiles(ctx, []File{{Path: "src/a.txt", Data: []byte("A")}, {Path: "src/deep/big.bin", Data: big}}); err != nil {
		t.Fatal(err)
	}
	tw.symlink(t, "deep/big.bin", "src/lnk")
	tw.symlink(t, tw.outside, "src/out")

	for _, format := range []string{"tar", "zip"} {
		rc, err := c.ArchiveOut(ctx, "src", format, 0)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		read := readTarEntries
		if format == "zip" {
			read = readZipEntries
		}
		entries := read(t, b)
		if entries["deep/big.bin"].data != string(big) || entries["lnk"].data != "deep/big.bin" || entries["out"] != (archived{"link", 0, tw.outside}) {
			t.Errorf("%s archive: %s", format, entryNames(entries))
		}
	}
	_, err := c.ArchiveOut(ctx, "missing", "tar", 0)
	wantCoveCode(t, err, cove.CodeNotFound)
	_, err = c.ArchiveOut(ctx, "src", "7z", 0)
	wantCoveCode(t, err, cove.CodeInvalid)

	// Upload a compressed archive through a pipe, as a request body comes.
	pr, pw := io.Pipe()
	go func() {
		var entries []tarEntry
		for i := range 50 {
			entries = append(entries, tarEntry{name: "many/" + strings.Repeat("x", i+1), body: string(big[:i*1000])})
		}
		pw.Write(makeTarGz(t, entries...))
		pw.Close()
	}()
	if err := c.ArchiveIn(ctx, "up", pr, ArchiveLimits{}); err != nil {
		t.Fatal(err)
	}
	if got := tw.read(t, "up/many/"+strings.Repeat("x", 50)); got != string(big[:49000]) {
		t.Errorf("extracted %d bytes", len(got))
	}
	tw.checkOwned(t, "up/many")

	err = c.ArchiveIn(ctx, "bomb", bytes.NewReader(makeTar(t, tarEntry{name: "f", body: string(big)})), ArchiveLimits{MaxBytes: 1000})
	wantCoveCode(t, err, cove.CodeQuotaExceeded)
	err = c.ArchiveIn(ctx, "esc", bytes.NewReader(makeTar(t, tarEntry{name: "l", typ: tar.TypeSymlink, link: "/etc"})), ArchiveLimits{})
	wantCoveCode(t, err, cove.CodeInvalid)
}

func TestClientConcurrentOperations(t *testing.T) {
	t.Parallel()
	tw := newTestWorkspace(t)
	c := newTestClient(t, tw)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := "c/" + strings.Repeat("x", i+1)
			data := bytes.Repeat([]byte{byte(i)}, 100<<10+i)
			if _, err := c.WriteStream(ctx, p, 0, bytes.NewReader(data), 0); err != nil {
				errs <- err
				return
			}
			rc, _, err := c.ReadStream(ctx, p)
			if err != nil {
				errs <- err
				return
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, data) {
				errs <- errors.New("read back different content from " + p)
			}
			if _, err := c.Stat(ctx, p); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
