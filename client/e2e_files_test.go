package client_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/client"
	"github.com/cove-sandbox/cove/internal/httpapi"
)

func TestFiles(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	sb := e.sandbox(e.admin, cove.SandboxSpec{})
	id := sb.ID

	// Write and read back, through paths that need escaping.
	paths := []string{"a.txt", "dir/sub/b.py", "with space/ü ñ.txt", "/workspace/abs.txt", "pct%25/q?#.txt"}
	for i, p := range paths {
		content := strings.Repeat(p, i+1)
		fi, err := e.admin.WriteFile(ctx, id, p, strings.NewReader(content), 0)
		if err != nil {
			t.Fatalf("write %q: %v", p, err)
		}
		if fi.Size != int64(len(content)) || fi.IsDir || fi.Mode != 0o644 {
			t.Fatalf("write %q: %+v", p, fi)
		}
		rc, rfi, err := e.admin.ReadFile(ctx, id, p)
		if err != nil {
			t.Fatalf("read %q: %v", p, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(b) != content || rfi.Size != int64(len(content)) || rfi.Name != fi.Name {
			t.Fatalf("read %q: %q %+v %v", p, b, rfi, err)
		}
	}
	// A large file streams both ways (no whole-body buffering needed).
	big := bytes.Repeat([]byte("0123456789abcdef"), 4<<20/16)
	if _, err := e.admin.WriteFile(ctx, id, "big.bin", io.MultiReader(bytes.NewReader(big)), 0o600); err != nil {
		t.Fatal(err)
	}
	rc, fi, err := e.admin.ReadFile(ctx, id, "big.bin")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(b, big) || fi.Mode != 0o600 {
		t.Fatalf("big file: %d bytes, mode %o", len(b), fi.Mode)
	}

	// Stat, list, mkdir, move, chmod.
	st, err := e.admin.StatFile(ctx, id, "dir")
	if err != nil || !st.IsDir || st.Path != "dir" {
		t.Fatalf("stat: %+v, %v", st, err)
	}
	_, err = e.admin.StatFile(ctx, id, "nope")
	wantCode(t, err, cove.CodeNotFound)
	_, _, err = e.admin.ReadFile(ctx, id, "dir")
	wantCode(t, err, cove.CodeInvalid)
	top, err := e.admin.ListFiles(ctx, id, ".", false)
	if err != nil || !hasPath(top, "a.txt") || hasPath(top, "dir/sub/b.py") {
		t.Fatalf("list: %v, %v", names(top), err)
	}
	all, err := e.admin.ListFiles(ctx, id, "", true)
	if err != nil || !hasPath(all, "dir/sub/b.py") {
		t.Fatalf("recursive list: %v, %v", names(all), err)
	}
	_, err = e.admin.ListFiles(ctx, id, "a.txt", false)
	wantCode(t, err, cove.CodeInvalid)
	if fi, err := e.admin.MakeDir(ctx, id, "new/deep"); err != nil || !fi.IsDir {
		t.Fatalf("mkdir: %+v, %v", fi, err)
	}
	if fi, err := e.admin.MoveFile(ctx, id, "a.txt", "a2.txt"); err != nil || fi.Path != "a2.txt" {
		t.Fatalf("move: %+v, %v", fi, err)
	}
	t.Run("move across directories", func(t *testing.T) {
		if fi, err := e.admin.MoveFile(ctx, id, "a2.txt", "new/deep/a2.txt"); err != nil || fi.Path != "new/deep/a2.txt" {
			t.Fatalf("move: %+v, %v", fi, err)
		}
		if _, err := e.admin.MoveFile(ctx, id, "new/deep/a2.txt", "a2.txt"); err != nil {
			t.Fatalf("move back: %v", err)
		}
	})
	_, err = e.admin.MoveFile(ctx, id, "a.txt", "x")
	wantCode(t, err, cove.CodeNotFound)
	if fi, err := e.admin.ChmodFile(ctx, id, "dir/sub/b.py", 0o755); err != nil || fi.Mode != 0o755 {
		t.Fatalf("chmod: %+v, %v", fi, err)
	}
	res := collect(t)(e.admin.Exec(ctx, id, cove.ExecRequest{Shell: "stat -c %a dir/sub/b.py; cat a2.txt"}))
	if res.Stdout != "755\na.txt" {
		t.Fatalf("seen inside: %q", res.Stdout)
	}

	// Search and replace.
	if _, err := e.admin.WriteFile(ctx, id, "src/main.py", strings.NewReader("import os\nprint('hello')\nprint('hello again')\n"), 0); err != nil {
		t.Fatal(err)
	}
	found, err := e.admin.SearchFiles(ctx, id, cove.SearchRequest{Name: "*.py"})
	if err != nil || len(found.Matches) != 2 {
		t.Fatalf("search by name: %+v, %v", found, err)
	}
	found, err = e.admin.SearchFiles(ctx, id, cove.SearchRequest{Path: "src", Content: "hello"})
	if err != nil || len(found.Matches) != 2 || found.Matches[0].Line != 2 || found.Matches[0].Text != "print('hello')" {
		t.Fatalf("search by content: %+v, %v", found, err)
	}
	reps, err := e.admin.ReplaceInFiles(ctx, id, cove.ReplaceRequest{Paths: []string{"src/main.py"}, Old: "hello", New: "bye"})
	if err != nil || len(reps) != 1 || reps[0].Replacements != 2 {
		t.Fatalf("replace: %+v, %v", reps, err)
	}

	// Archives out.
	rc, err = e.admin.DownloadArchive(ctx, id, "src", "tar")
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(rc)
	var entries []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		entries = append(entries, h.Name)
		if strings.HasSuffix(h.Name, "main.py") {
			b, _ := io.ReadAll(tr)
			if !strings.Contains(string(b), "print('bye again')") {
				t.Fatalf("main.py in the tar: %q", b)
			}
		}
	}
	rc.Close()
	if !slices.ContainsFunc(entries, func(s string) bool { return strings.HasSuffix(s, "main.py") }) {
		t.Fatalf("tar entries %v", entries)
	}
	rc, err = e.admin.DownloadArchive(ctx, id, "dir", "zip")
	if err != nil {
		t.Fatal(err)
	}
	zb, _ := io.ReadAll(rc)
	rc.Close()
	zr, err := zip.NewReader(bytes.NewReader(zb), int64(len(zb)))
	if err != nil || !slices.ContainsFunc(zr.File, func(f *zip.File) bool { return strings.HasSuffix(f.Name, "b.py") }) {
		t.Fatalf("zip: %v", err)
	}
	_, err = e.admin.DownloadArchive(ctx, id, "dir", "rar")
	wantCode(t, err, cove.CodeInvalid)
	// No format at all is refused too, as in-process, not taken for a
	// listing.
	_, err = e.admin.DownloadArchive(ctx, id, "dir", "")
	wantCode(t, err, cove.CodeInvalid)

	// Archives in: plain and gzipped.
	if err := e.admin.UploadArchive(ctx, id, "unpacked", bytes.NewReader(makeTar(t, map[string]string{"x/one.txt": "1", "two.txt": "2"}))); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(makeTar(t, map[string]string{"three.txt": "3"}))
	zw.Close()
	resp := e.do("POST", "/v1/sandboxes/"+id+"/files?path=unpacked", e.adminKey, gz.Bytes(), "Content-Type", "application/gzip")
	if resp.StatusCode != 204 {
		t.Fatalf("gzipped tar: %d", resp.StatusCode)
	}
	res = collect(t)(e.admin.Exec(ctx, id, cove.ExecRequest{Shell: "cat unpacked/x/one.txt unpacked/two.txt unpacked/three.txt"}))
	if res.Stdout != "123" {
		t.Fatalf("extracted: %q", res.Stdout)
	}
	err = e.admin.UploadArchive(ctx, id, ".", bytes.NewReader(makeTar(t, map[string]string{"../escape.txt": "x"})))
	wantCode(t, err, cove.CodeInvalid)

	// Delete.
	wantCode(t, e.admin.DeleteFile(ctx, id, "dir", false), cove.CodeConflict)
	if err := e.admin.DeleteFile(ctx, id, "dir", true); err != nil {
		t.Fatal(err)
	}
	// What is gone is not found, through the SDK and REST.
	wantCode(t, e.admin.DeleteFile(ctx, id, "dir", true), cove.CodeNotFound)
	apiError(t, e.do("DELETE", "/v1/sandboxes/"+id+"/files/dir?recursive=true", e.adminKey, nil), 404, cove.CodeNotFound)
	_, err = e.admin.StatFile(ctx, id, "dir/sub/b.py")
	wantCode(t, err, cove.CodeNotFound)
}

// TestFilesHTTP checks the file routes' HTTP details: listings, HEAD,
// content types, modes, multipart uploads.
func TestFilesHTTP(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	id := e.sandbox(e.admin, cove.SandboxSpec{}).ID
	base := "/v1/sandboxes/" + id + "/files/"

	resp := e.do("PUT", base+"site/index.html?mode=0750", e.adminKey, []byte("<script>alert(1)</script>"))
	var fi struct {
		Path, Mode string
		Size       int64
	}
	json.NewDecoder(resp.Body).Decode(&fi)
	if resp.StatusCode != 201 || fi.Path != "site/index.html" || fi.Mode != "0750" || fi.Size != 25 {
		t.Fatalf("PUT: %d %+v", resp.StatusCode, fi)
	}
	resp = e.do("GET", base+"site/index.html", e.adminKey, nil)
	body, _ := io.ReadAll(resp.Body)
	h := resp.Header
	if string(body) != "<script>alert(1)</script>" || !strings.HasPrefix(h.Get("Content-Type"), "text/html") ||
		h.Get("Content-Length") != "25" || h.Get("Content-Security-Policy") != "sandbox" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Last-Modified") == "" {
		t.Fatalf("GET file: %q %v", body, h)
	}
	var info map[string]any
	if err := json.Unmarshal([]byte(h.Get("X-Cove-File-Info")), &info); err != nil || info["mode"] != "0750" {
		t.Fatalf("X-Cove-File-Info %q: %v", h.Get("X-Cove-File-Info"), err)
	}
	resp = e.do("HEAD", base+"site/index.html", e.adminKey, nil)
	if resp.StatusCode != 200 || resp.Header.Get("X-Cove-File-Info") == "" || resp.ContentLength != 25 {
		t.Fatalf("HEAD: %d %v", resp.StatusCode, resp.Header)
	}
	resp = e.do("HEAD", base+"missing", e.adminKey, nil)
	if resp.StatusCode != 404 {
		t.Fatalf("HEAD missing: %d", resp.StatusCode)
	}
	resp = e.do("GET", base+"site/index.html?stat=true", e.adminKey, nil)
	json.NewDecoder(resp.Body).Decode(&fi)
	if resp.StatusCode != 200 || fi.Size != 25 {
		t.Fatalf("stat: %d %+v", resp.StatusCode, fi)
	}
	// Directories list as JSON, the workspace too.
	for _, p := range []string{base + "site", base, "/v1/sandboxes/" + id + "/files"} {
		resp = e.do("GET", p, e.adminKey, nil)
		var list struct{ Entries []struct{ Path string } }
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != 200 || len(list.Entries) == 0 {
			t.Fatalf("GET %s: %d %v %+v", p, resp.StatusCode, err, list)
		}
	}
	resp = e.do("GET", base+"site?raw=true", e.adminKey, nil)
	apiError(t, resp, 400, cove.CodeInvalid)
	resp = e.do("PUT", base+"x?mode=999", e.adminKey, []byte("x"))
	apiError(t, resp, 400, cove.CodeInvalid)
	resp = e.do("GET", base+"x?stat=maybe", e.adminKey, nil)
	apiError(t, resp, 400, cove.CodeInvalid)

	// Multipart: many files; each part's filename (with directories) or
	// field name is its path; ?path= is the directory.
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	w, _ := mw.CreateFormFile("ignored", "lib/util.py")
	io.WriteString(w, "def f(): pass\n")
	w, _ = mw.CreateFormField("notes/readme.md")
	io.WriteString(w, "# notes\n")
	mw.Close()
	resp = e.do("POST", "/v1/sandboxes/"+id+"/files?path=up", e.adminKey, mp.Bytes(), "Content-Type", mw.FormDataContentType())
	var up struct{ Files []struct{ Path string } }
	json.NewDecoder(resp.Body).Decode(&up)
	if resp.StatusCode != 201 || len(up.Files) != 2 || up.Files[0].Path != "up/lib/util.py" || up.Files[1].Path != "up/notes/readme.md" {
		t.Fatalf("multipart: %d %+v", resp.StatusCode, up)
	}
	rc, _, err := e.admin.ReadFile(ctx, id, "up/notes/readme.md")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "# notes\n" {
		t.Fatalf("multipart file %q", b)
	}
	resp = e.do("POST", "/v1/sandboxes/"+id+"/files", e.adminKey, []byte("raw"), "Content-Type", "text/plain")
	apiError(t, resp, 415, cove.CodeInvalid)
	resp = e.do("DELETE", base+"up?recursive=true", e.adminKey, nil)
	if resp.StatusCode != 204 {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	resp = e.do("POST", "/v1/sandboxes/"+id+"/fs/chmod", e.adminKey, []byte(`{"path":"site/index.html","mode":"0600"}`))
	json.NewDecoder(resp.Body).Decode(&fi)
	if resp.StatusCode != 200 || fi.Mode != "0600" {
		t.Fatalf("chmod with a string: %d %+v", resp.StatusCode, fi)
	}
	resp = e.do("POST", "/v1/sandboxes/"+id+"/fs/chmod", e.adminKey, []byte(`{"path":"site/index.html","mode":420}`))
	json.NewDecoder(resp.Body).Decode(&fi)
	if resp.StatusCode != 200 || fi.Mode != "0644" {
		t.Fatalf("chmod with a number: %d %+v", resp.StatusCode, fi)
	}
	resp = e.do("POST", "/v1/sandboxes/"+id+"/fs/chmod", e.adminKey, []byte(`{"path":"site/index.html"}`))
	apiError(t, resp, 400, cove.CodeInvalid)

	// A mode that forbids the sandbox user is a conflict, which chmod
	// resolves, not a bad request.
	resp = e.do("POST", "/v1/sandboxes/"+id+"/fs/chmod", e.adminKey, []byte(`{"path":"site","mode":"0555"}`))
	if resp.StatusCode != 200 {
		t.Fatalf("chmod site: %d", resp.StatusCode)
	}
	resp = e.do("PUT", base+"site/new.txt", e.adminKey, []byte("x"))
	if msg := apiError(t, resp, 409, cove.CodeConflict); !strings.Contains(msg, "chmod") {
		t.Fatalf("a mode in the way: %q does not say what to do", msg)
	}
	resp = e.do("POST", "/v1/sandboxes/"+id+"/fs/chmod", e.adminKey, []byte(`{"path":"site/index.html","mode":"0000"}`))
	if resp.StatusCode != 200 {
		t.Fatalf("chmod index.html: %d", resp.StatusCode)
	}
	resp = e.do("GET", base+"site/index.html", e.adminKey, nil)
	apiError(t, resp, 409, cove.CodeConflict)
}

// TestUploadLimits checks the server-wide upload limit and the sandbox's
// disk limit.
func TestUploadLimits(t *testing.T) {
	e := newEnv(t, func(o *httpapi.Options) { o.MaxUploadBytes = 1 << 20 })
	ctx := ctxT(t)
	id := e.sandbox(e.admin, cove.SandboxSpec{Limits: cove.Limits{DiskBytes: 8 << 20}}).ID
	over := bytes.Repeat([]byte("x"), 1<<20+1)
	// Announced by Content-Length.
	resp := e.do("PUT", "/v1/sandboxes/"+id+"/files/big", e.adminKey, over)
	apiError(t, resp, http.StatusRequestEntityTooLarge, cove.CodeInvalid)
	// Streamed without a length, through the SDK.
	_, err := e.admin.WriteFile(ctx, id, "big", io.MultiReader(bytes.NewReader(over)), 0)
	wantCode(t, err, cove.CodeInvalid)
	if !strings.Contains(err.Error(), "too large") {
		t.Fatalf("error %v", err)
	}
	// A file's size is known: the SDK announces it, and the refusal comes
	// before the body is sent (the file is not read).
	f, err := os.CreateTemp(t.TempDir(), "big")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(64 << 20); err != nil {
		t.Fatal(err)
	}
	_, err = e.admin.WriteFile(ctx, id, "big", f, 0)
	if pos, _ := f.Seek(0, io.SeekCurrent); cove.ErrorCode(err) != cove.CodeInvalid || !strings.Contains(err.Error(), "too large") || pos != 0 {
		t.Fatalf("a file over the limit: %v, with %d bytes of it read", err, pos)
	}
	// What is left of a file is sent, whole.
	small, err := os.CreateTemp(t.TempDir(), "small")
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	small.WriteString("skip:kept")
	small.Seek(5, io.SeekStart)
	if _, err := e.admin.WriteFile(ctx, id, "small", small, 0); err != nil {
		t.Fatal(err)
	}
	rc, _, err := e.admin.ReadFile(ctx, id, "small")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "kept" {
		t.Fatalf("the rest of a file: %q", got)
	}
	// Exactly the limit passes.
	if _, err := e.admin.WriteFile(ctx, id, "fits", io.MultiReader(bytes.NewReader(over[:1<<20])), 0); err != nil {
		t.Fatal(err)
	}
	// A gzip bomb: small compressed, over the limit decompressed.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(makeTar(t, map[string]string{"bomb": strings.Repeat("\x00", 4<<20)}))
	zw.Close()
	resp = e.do("POST", "/v1/sandboxes/"+id+"/files?extract=tar", e.adminKey, gz.Bytes())
	apiError(t, resp, http.StatusRequestEntityTooLarge, cove.CodeInvalid)

	// The sandbox's disk limit applies under the server's limit.
	e2 := newEnv(t)
	id2 := e2.sandbox(e2.admin, cove.SandboxSpec{Limits: cove.Limits{DiskBytes: 2 << 20}}).ID
	_, err = e2.admin.WriteFile(ctx, id2, "big", io.MultiReader(bytes.NewReader(bytes.Repeat([]byte("y"), 3<<20))), 0)
	// A full disk: quota_exceeded, and no Retry-After, as waiting frees
	// no room.
	wantCode(t, err, cove.CodeQuotaExceeded)
	if !strings.Contains(err.Error(), "no space left in the workspace: big is larger than its disk limit of 2 MiB") {
		t.Errorf("over the disk limit: %v", err)
	}
	if d, ok := client.RetryAfter(err); ok {
		t.Errorf("over the disk limit: retry after %s", d)
	}
	// Its reason reaches the SDK, for a program to test.
	if !errors.Is(err, &cove.Error{Code: cove.CodeQuotaExceeded, Reason: cove.ReasonDiskFull}) {
		t.Errorf("over the disk limit: reason %q, want disk_full", cove.ErrorReason(err))
	}
	// A full workspace, reached by a program's writes: an upload says so
	// with the same reason.
	if _, err := e2.admin.Exec(ctx, id2, cove.ExecRequest{Shell: "head -c 3M /dev/urandom > fill; true"}); err != nil {
		t.Fatal(err)
	}
	// (The file system's accounting may let one more write through.)
	err = nil
	for i := 0; i < 8 && err == nil; i++ {
		_, err = e2.admin.WriteFile(ctx, id2, fmt.Sprintf("more%d", i), bytes.NewReader(bytes.Repeat([]byte("z"), 1<<20)), 0)
	}
	if cove.ErrorCode(err) != cove.CodeQuotaExceeded || cove.ErrorReason(err) != cove.ReasonDiskFull {
		t.Errorf("an upload to a full workspace: %v (reason %q)", err, cove.ErrorReason(err))
	}
}

func makeTar(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, content := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
		io.WriteString(tw, content)
	}
	tw.Close()
	return buf.Bytes()
}

func hasPath(fis []*cove.FileInfo, p string) bool {
	return slices.ContainsFunc(fis, func(fi *cove.FileInfo) bool { return fi.Path == p })
}

func names(fis []*cove.FileInfo) []string {
	var out []string
	for _, fi := range fis {
		out = append(out, fi.Path)
	}
	return out
}

// TestUploadFilesAllOrNothing checks that a multipart upload writes all
// its files or none: a bad part after good ones leaves the workspace as
// it was, through REST and through the SDK.
func TestUploadFilesAllOrNothing(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	id := e.sandbox(e.admin, cove.SandboxSpec{Limits: cove.Limits{DiskBytes: 2 << 20}}).ID
	if _, err := e.admin.WriteFile(ctx, id, "keep.txt", strings.NewReader("original"), 0); err != nil {
		t.Fatal(err)
	}
	snapshot := func() string {
		t.Helper()
		fis, err := e.admin.ListFiles(ctx, id, ".", true)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, fi := range fis {
			fmt.Fprintf(&b, "%s %d %o\n", fi.Path, fi.Size, fi.Mode)
		}
		rc, _, err := e.admin.ReadFile(ctx, id, "keep.txt")
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		content, _ := io.ReadAll(rc)
		return b.String() + "keep.txt: " + string(content)
	}
	before := snapshot()
	type part struct{ path, content string }
	multipartBody := func(parts ...part) ([]byte, string) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for _, p := range parts {
			w, _ := mw.CreateFormFile("f", p.path)
			io.WriteString(w, p.content)
		}
		mw.Close()
		return buf.Bytes(), mw.FormDataContentType()
	}
	big := strings.Repeat("x", 3<<19) // 1.5 MiB: two are over the disk limit
	for _, c := range []struct {
		name   string
		query  string
		parts  []part
		status int
		code   cove.Code
	}{
		{"a path out of the workspace", "", []part{{"m1.txt", "m1"}, {"keep.txt", "overwritten"}, {"../evil2.txt", "evil"}}, 400, cove.CodeInvalid},
		{"a file in the way", "", []part{{"m1.txt", "m1"}, {"keep.txt", "overwritten"}, {"keep.txt/x", "x"}}, 409, cove.CodeConflict},
		{"a path out of the directory", "?path=up", []part{{"m1.txt", "m1"}, {"../keep.txt", "overwritten"}}, 400, cove.CodeInvalid},
		{"over the disk limit in all", "", []part{{"b1", big}, {"keep.txt", "overwritten"}, {"b2", big}}, 429, cove.CodeQuotaExceeded},
	} {
		t.Run(c.name, func(t *testing.T) {
			body, ct := multipartBody(c.parts...)
			resp := e.do("POST", "/v1/sandboxes/"+id+"/files"+c.query, e.adminKey, body, "Content-Type", ct)
			apiError(t, resp, c.status, c.code)
			if after := snapshot(); after != before {
				t.Fatalf("the refused upload changed the workspace:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			// The same files through the SDK.
			if c.query != "" {
				return
			}
			var files []*cove.FileUpload
			for _, p := range c.parts {
				files = append(files, &cove.FileUpload{Path: p.path, Body: strings.NewReader(p.content)})
			}
			_, err := e.admin.UploadFiles(ctx, id, uploadList(files))
			wantCode(t, err, c.code)
			if after := snapshot(); after != before {
				t.Fatalf("the refused SDK upload changed the workspace:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
	t.Run("a reader that fails", func(t *testing.T) {
		n := 0
		_, err := e.admin.UploadFiles(ctx, id, func() (*cove.FileUpload, error) {
			n++
			switch n {
			case 1:
				return &cove.FileUpload{Path: "keep.txt", Body: strings.NewReader("overwritten")}, nil
			case 2:
				return &cove.FileUpload{Path: "m2.txt", Body: io.MultiReader(strings.NewReader("half"), iotest.ErrReader(errors.New("the disk broke")))}, nil
			}
			return nil, io.EOF
		})
		wantCode(t, err, cove.CodeInvalid)
		if !strings.Contains(err.Error(), "reading m2.txt: the disk broke") {
			t.Fatalf("error %q does not say which file failed and why", err)
		}
		// The failure is the client's own: it knows before the server,
		// which removes the staged files once it sees the request break.
		after := snapshot()
		for deadline := time.Now().Add(5 * time.Second); after != before && time.Now().Before(deadline); after = snapshot() {
			time.Sleep(20 * time.Millisecond)
		}
		if after != before {
			t.Fatalf("the failed upload changed the workspace:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
	t.Run("a body cut short", func(t *testing.T) {
		body, ct := multipartBody(part{"m1.txt", "m1"}, part{"keep.txt", "overwritten"}, part{"sub/m3.txt", "m3 is longer"})
		cut := body[:bytes.Index(body, []byte("m3 is"))+2]
		resp := e.do("POST", "/v1/sandboxes/"+id+"/files", e.adminKey, cut, "Content-Type", ct)
		msg := apiError(t, resp, 400, cove.CodeInvalid)
		if !strings.HasPrefix(msg, "part 3 of the upload (sub/m3.txt) cannot be read to its end") {
			t.Fatalf("message %q does not name the part that was cut", msg)
		}
		if after := snapshot(); after != before {
			t.Fatalf("the cut upload changed the workspace:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
	t.Run("no file", func(t *testing.T) {
		// Nothing to upload is no error, as in-process.
		if fis, err := e.admin.UploadFiles(ctx, id, uploadList(nil)); err != nil || len(fis) != 0 {
			t.Fatalf("an upload of no file: %v, %v", fis, err)
		}
		if _, err := e.admin.UploadFiles(ctx, "nope", uploadList(nil)); cove.ErrorCode(err) != cove.CodeNotFound {
			t.Fatalf("an upload of no file to no sandbox: %v", err)
		}
	})
	t.Run("all valid", func(t *testing.T) {
		fis, err := e.admin.UploadFiles(ctx, id, uploadList([]*cove.FileUpload{
			{Path: "keep.txt", Body: strings.NewReader("replaced")},
			{Path: "bin/run.sh", Mode: 0o755, Body: strings.NewReader("#!/bin/sh\necho ran\n")},
			{Path: "ü ñ/q?#.txt", Body: strings.NewReader("odd")},
		}))
		if err != nil {
			t.Fatal(err)
		}
		if len(fis) != 3 || fis[0].Path != "keep.txt" || fis[0].Size != 8 || fis[1].Path != "bin/run.sh" || fis[1].Mode != 0o755 || fis[2].Path != "ü ñ/q?#.txt" {
			t.Fatalf("files %+v", fis)
		}
		res := collect(t)(e.admin.Exec(ctx, id, cove.ExecRequest{Shell: `cat keep.txt "ü ñ/q?#.txt"; ./bin/run.sh`}))
		if res.Stdout != "replacedoddran\n" {
			t.Fatalf("seen inside: %q %q", res.Stdout, res.Stderr)
		}
	})
}

// uploadList returns a next function of UploadFiles that gives files.
func uploadList(files []*cove.FileUpload) func() (*cove.FileUpload, error) {
	return func() (*cove.FileUpload, error) {
		if len(files) == 0 {
			return nil, io.EOF
		}
		f := files[0]
		files = files[1:]
		return f, nil
	}
}

// TestFileNamesNotUTF8 checks that a path that is not valid UTF-8 is
// refused, saying so, rather than a file of another name being written,
// read or removed.
func TestFileNamesNotUTF8(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	id := e.sandbox(e.admin, cove.SandboxSpec{}).ID
	if _, err := e.admin.WriteFile(ctx, id, "a\xff.txt", strings.NewReader("x"), 0); cove.ErrorCode(err) != cove.CodeInvalid || !strings.Contains(err.Error(), "not valid UTF-8") {
		t.Fatalf("writing a\\xff.txt: %v, want invalid saying why", err)
	}
	resp := e.do("PUT", "/v1/sandboxes/"+id+"/files/b%FF.txt", e.adminKey, []byte("x"))
	if msg := apiError(t, resp, 400, cove.CodeInvalid); !strings.Contains(msg, `"b\xff.txt" is not valid UTF-8`) {
		t.Fatalf("PUT b%%FF.txt: %q", msg)
	}
	_, err := e.admin.UploadFiles(ctx, id, uploadList([]*cove.FileUpload{
		{Path: "ok.txt", Body: strings.NewReader("ok")},
		{Path: "c\xfe.txt", Body: strings.NewReader("c")},
	}))
	wantCode(t, err, cove.CodeInvalid)
	if _, _, err := e.admin.ReadFile(ctx, id, "\xef\xbf\xbd"); cove.ErrorCode(err) != cove.CodeNotFound {
		t.Fatalf("reading a valid name that is not there: %v", err)
	}
	if _, _, err := e.admin.ReadFile(ctx, id, "\xff"); cove.ErrorCode(err) != cove.CodeInvalid {
		t.Fatalf("reading \\xff: %v", err)
	}
	fis, err := e.admin.ListFiles(ctx, id, ".", true)
	if err != nil || len(fis) != 0 {
		t.Fatalf("the refused writes left files: %q %v", names(fis), err)
	}
}

// TestFileRanges reads parts of files: through the SDK (ReadFileRange) and
// with HTTP Range headers, which get 206 with Content-Range, or 416 past the
// end. A part far into a huge sparse file is read without reading what
// comes before it.
func TestFileRanges(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	l := cove.DefaultLimits()
	l.DiskBytes = 16 << 30
	sb, err := e.admin.CreateSandbox(ctx, cove.SandboxSpec{Limits: l})
	if err != nil {
		t.Skipf("a sandbox with a disk of 16 GiB: %v", err)
	}
	t.Cleanup(func() { e.admin.DeleteSandbox(ctx, sb.ID) })
	if _, err := e.admin.WriteFile(ctx, sb.ID, "ten.txt", strings.NewReader("0123456789"), 0); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		off, n int64
		want   string
	}{{0, 0, "0123456789"}, {2, 4, "2345"}, {7, 0, "789"}, {8, 100, "89"}, {10, 0, ""}, {50, 1, ""}, {2, math.MaxInt64, "23456789"}} {
		rc, fi, err := e.admin.ReadFileRange(ctx, sb.ID, "ten.txt", r.off, r.n)
		if err != nil {
			t.Fatalf("part %d+%d: %v", r.off, r.n, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(b) != r.want || fi.Size != 10 {
			t.Errorf("part %d+%d: %q (%v), info %+v; want %q", r.off, r.n, b, err, fi, r.want)
		}
	}
	if _, _, err := e.admin.ReadFileRange(ctx, sb.ID, "ten.txt", -1, 0); !isCode(err, cove.CodeInvalid) {
		t.Errorf("a negative offset: %v", err)
	}

	base := "/v1/sandboxes/" + sb.ID + "/files/ten.txt?raw=true"
	for _, c := range []struct {
		rng, status, body, contentRange string
	}{
		{"", "200", "0123456789", ""},
		{"bytes=2-5", "206", "2345", "bytes 2-5/10"},
		{"bytes=7-", "206", "789", "bytes 7-9/10"},
		{"bytes=8-100", "206", "89", "bytes 8-9/10"},
		{"bytes=0-9223372036854775807", "206", "0123456789", "bytes 0-9/10"}, // the largest last byte: to the end
		{"bytes=-3", "200", "0123456789", ""},                                // a suffix: the whole file
		{"bytes=0-1,4-5", "200", "0123456789", ""},                           // several parts: the whole file
		{"bytes=10-", "416", "", "bytes */10"},
	} {
		var h []string
		if c.rng != "" {
			h = []string{"Range", c.rng}
		}
		resp := e.do("GET", base, e.adminKey, nil, h...)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if fmt.Sprint(resp.StatusCode) != c.status || resp.Header.Get("Content-Range") != c.contentRange ||
			c.status != "416" && (string(b) != c.body || resp.Header.Get("Accept-Ranges") != "bytes") {
			t.Errorf("Range %q: %d, Content-Range %q, Accept-Ranges %q, body %q", c.rng, resp.StatusCode, resp.Header.Get("Content-Range"), resp.Header.Get("Accept-Ranges"), b)
		}
		if c.status == "416" && !strings.Contains(string(b), "past the end of ten.txt (10 bytes): start it at byte 9 or before") {
			t.Errorf("416 body %s", b)
		}
	}
	// No range of an empty file can be read: the answer says to ask
	// without one, not for a range that is refused too.
	if _, err := e.admin.WriteFile(ctx, sb.ID, "empty.txt", strings.NewReader(""), 0); err != nil {
		t.Fatal(err)
	}
	resp := e.do("GET", "/v1/sandboxes/"+sb.ID+"/files/empty.txt?raw=true", e.adminKey, nil, "Range", "bytes=0-")
	if msg := apiError(t, resp, 416, cove.CodeInvalid); !strings.Contains(msg, "empty.txt is empty: no range of it can be read; ask for it without a Range header") {
		t.Errorf("a range of an empty file: %q", msg)
	}

	// The tail of a 12 GiB sparse file, at once.
	st, err := e.admin.Exec(ctx, sb.ID, cove.ExecRequest{Cmd: []string{"sh", "-c", "truncate -s 12G huge && printf tail >> huge"}})
	if res := collect(t)(st, err); res.Verdict != cove.VerdictOK {
		t.Fatalf("making the sparse file: %+v", res)
	}
	start := time.Now()
	rc, fi, err := e.admin.ReadFileRange(ctx, sb.ID, "huge", 12<<30, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if took := time.Since(start); err != nil || string(b) != "tail" || fi.Size != 12<<30+4 || took > 3*time.Second {
		t.Fatalf("the tail of a 12 GiB file: %q (%v), info %+v, in %v", b, err, fi, took)
	}
}
