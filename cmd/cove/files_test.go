package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

func TestFiles(t *testing.T) {
	srv := newServer(t)
	c := srv.cli(t, srv.admin)
	id := c.create()
	var fi wire.FileInfo
	if err := json.Unmarshal([]byte(c.ok("files", "mkdir", "--json", id, "src/pkg")), &fi); err != nil {
		t.Fatal(err)
	}
	if !fi.IsDir || fi.Path != "src/pkg" {
		t.Fatalf("mkdir --json: %+v", fi)
	}
	c.ok("exec", id, "--", "sh", "-c", "printf 'hello\\nTODO: fix\\n' > src/pkg/a.py; echo b > b.txt; ln -s b.txt link")

	t.Run("ls", func(t *testing.T) {
		got := c.ok("files", "ls", id)
		want := regexp.MustCompile(`^MODE +SIZE +MODIFIED +NAME\n` +
			`-rw-r--r-- +2 +\d{4}-\d\d-\d\d \d\d:\d\d +b\.txt\n` +
			`lrwxrwxrwx +5 +\S+ \S+ +link -> b\.txt\n` +
			`drwxr-xr-x +\d+ +\S+ \S+ +src\n$`)
		if !want.MatchString(got) {
			t.Fatalf("files ls:\n%s", got)
		}
		got = c.ok("files", "ls", "-r", id, "src")
		if !strings.Contains(got, " PATH\n") || !strings.Contains(got, " src/pkg\n") || !strings.Contains(got, " src/pkg/a.py\n") {
			t.Fatalf("files ls -r:\n%s", got)
		}
		var list wire.FileList
		if err := json.Unmarshal([]byte(c.ok("files", "ls", "--json", id, "src/pkg")), &list); err != nil {
			t.Fatal(err)
		}
		if files := list.Entries; len(files) != 1 || files[0].Path != "src/pkg/a.py" || files[0].Size != 16 {
			t.Fatalf("files ls --json: %+v (the API's shape, {\"entries\": [...]})", list)
		}
	})

	t.Run("cat", func(t *testing.T) {
		if got := c.ok("files", "cat", id, "/workspace/src/pkg/a.py"); got != "hello\nTODO: fix\n" {
			t.Fatalf("got %q", got)
		}
		c.fails(cove.CodeNotFound, `^cove: .+\n$`, "files", "cat", id, "nosuch")
	})

	t.Run("find", func(t *testing.T) {
		if got := c.ok("files", "find", id, "--name", "*.py"); got != "src/pkg/a.py\n" {
			t.Fatalf("--name: %q", got)
		}
		if got := c.ok("files", "find", id, "src", "--content", "TODO"); got != "src/pkg/a.py:2:TODO: fix\n" {
			t.Fatalf("--content: %q", got)
		}
		var res cove.SearchResult
		if err := json.Unmarshal([]byte(c.ok("files", "find", "--json", id, "--content", "hello")), &res); err != nil {
			t.Fatal(err)
		}
		if len(res.Matches) != 1 || res.Matches[0].Line != 1 {
			t.Fatalf("find --json: %+v", res)
		}
	})

	t.Run("mv_chmod", func(t *testing.T) {
		c.ok("files", "mv", id, "b.txt", "src/c.txt")
		if got := c.ok("files", "cat", id, "src/c.txt"); got != "b\n" {
			t.Fatalf("after mv: %q", got)
		}
		var fi wire.FileInfo
		if err := json.Unmarshal([]byte(c.ok("files", "chmod", "--json", id, "700", "src/c.txt")), &fi); err != nil {
			t.Fatal(err)
		}
		if fi.Mode != 0o700 {
			t.Fatalf("chmod: mode %o", fi.Mode)
		}
		c.fails(cove.CodeInvalid, `^cove: mode "rwx": use octal`, "files", "chmod", id, "rwx", "src/c.txt")
		// Into a directory, with or without a slash, as mv(1); a file
		// at the target is not replaced.
		c.ok("exec", id, "--", "sh", "-c", "mkdir into; echo d > d.txt; echo e > e.txt; echo old > into/e.txt")
		c.ok("files", "mv", id, "d.txt", "into")
		c.fails(cove.CodeConflict, `^cove: .+\n$`, "files", "mv", id, "e.txt", "into/")
		c.ok("files", "mv", id, "e.txt", "into/f.txt")
		if got := c.ok("exec", id, "--", "sh", "-c", "cat into/d.txt into/e.txt into/f.txt; ls"); got != "d\nold\ne\ninto\nlink\nsrc\n" {
			t.Fatalf("after mv into a directory: %q", got)
		}
		c.ok("files", "rm", "-r", id, "into")
	})

	t.Run("rm", func(t *testing.T) {
		c.fails(cove.CodeConflict, `^cove: .+\n$`, "files", "rm", id, "src")
		// As rm(1), a missing path is said and the others go; a missing
		// sandbox is said once.
		c.ok("exec", id, "--", "touch", "f1", "f3")
		c.fails(cove.CodeNotFound, `^cove: no such file or directory: nosuch\n$`, "files", "rm", id, "f1", "nosuch", "f3")
		if got := c.ok("exec", id, "--", "sh", "-c", "ls f1 f3 2>&1 | wc -l"); got != "2\n" {
			t.Fatalf("after rm f1 nosuch f3: %q", got)
		}
		c.fails(cove.CodeNotFound, `^cove: sandbox "nosuchsandbox" not found\n$`, "files", "rm", "nosuchsandbox", "a", "b")
		c.ok("files", "rm", id, "link")
		c.ok("files", "rm", "-r", id, "src")
		if got := strings.Join(strings.Fields(c.ok("files", "ls", "--json", id)), ""); got != `{"entries":[]}` {
			t.Fatalf("left: %s", got)
		}
	})
}

// TestLsMode: types and permission bits as ls -l writes them.
func TestLsMode(t *testing.T) {
	for _, c := range []struct {
		fi   cove.FileInfo
		want string
	}{
		{cove.FileInfo{Mode: 0o644}, "-rw-r--r--"},
		{cove.FileInfo{Mode: 0o755, IsDir: true}, "drwxr-xr-x"},
		{cove.FileInfo{Mode: 0o777, Symlink: "a"}, "lrwxrwxrwx"},
		{cove.FileInfo{Mode: 0}, "----------"},
	} {
		if got := lsMode(&c.fi); got != c.want {
			t.Errorf("%+v: %q, want %q", c.fi, got, c.want)
		}
	}
}
