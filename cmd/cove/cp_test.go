package main

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

// tree reads the regular files and symbolic links under dir, keyed by
// slash path: contents, or "-> target" for a link.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[filepath.ToSlash(rel)] = "-> " + target
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[filepath.ToSlash(rel)] = string(b)
		case d.IsDir() && rel != ".":
			out[filepath.ToSlash(rel)+"/"] = ""
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "-> "); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// remoteTree lists the files under dir in the sandbox with their contents.
func remoteTree(t *testing.T, c *cli, id, dir string) map[string]string {
	t.Helper()
	var list wire.FileList
	if err := json.Unmarshal([]byte(c.ok("files", "ls", "-r", "--json", id, dir)), &list); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range list.Entries {
		rel, _ := filepath.Rel(dir, f.Path)
		switch {
		case f.Symlink != "":
			out[rel] = "-> " + f.Symlink
		case f.IsDir:
			out[rel+"/"] = ""
		default:
			out[rel] = c.ok("files", "cat", id, f.Path)
		}
	}
	return out
}

func TestCp(t *testing.T) {
	srv := newServer(t)
	c := srv.cli(t, srv.admin)
	id := c.create()
	big := rand.Text() + strings.Repeat("x", 3<<20) + rand.Text()
	proj := map[string]string{
		"main.py":           "print('main')\n",
		"lib/":              "",
		"lib/util.py":       "def f(): pass\n",
		"lib/deep/":         "",
		"lib/deep/data.bin": big,
		"empty/":            "",
		"link":              "-> main.py",
	}
	local := t.TempDir()
	writeTree(t, filepath.Join(local, "proj"), proj)
	projDir := filepath.Join(local, "proj")

	t.Run("dir_into_existing_dir", func(t *testing.T) {
		c.ok("files", "mkdir", id, "in")
		if r := c.do("", "cp", projDir, id+":in"); r.code != 0 || r.stdout != "" || r.stderr != "" {
			t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
		if got := remoteTree(t, c, id, "in/proj"); !maps.Equal(got, proj) {
			t.Fatalf("in the sandbox: %v", keys(got))
		}
	})

	t.Run("dir_to_new_name", func(t *testing.T) {
		c.ok("cp", projDir, id+":/workspace/copy")
		if got := remoteTree(t, c, id, "copy"); !maps.Equal(got, proj) {
			t.Fatalf("in the sandbox: %v", keys(got))
		}
	})

	t.Run("dir_contents", func(t *testing.T) {
		c.ok("files", "mkdir", id, "contents")
		c.ok("cp", projDir+"/.", id+":contents")
		if got := remoteTree(t, c, id, "contents"); !maps.Equal(got, proj) {
			t.Fatalf("in the sandbox: %v", keys(got))
		}
	})

	t.Run("dir_out_to_new_name", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "out")
		c.ok("cp", id+":copy", dst)
		if got := tree(t, dst); !maps.Equal(got, proj) {
			t.Fatalf("here: %v", keys(got))
		}
	})

	t.Run("dir_out_into_existing_dir", func(t *testing.T) {
		dst := t.TempDir()
		c.ok("cp", id+":/workspace/in/proj", dst)
		if got := tree(t, filepath.Join(dst, "proj")); !maps.Equal(got, proj) {
			t.Fatalf("here: %v", keys(got))
		}
	})

	t.Run("file_in_and_out", func(t *testing.T) {
		src := filepath.Join(t.TempDir(), "tool.sh")
		os.WriteFile(src, []byte("#!/bin/sh\necho tool\n"), 0o755)
		c.ok("cp", src, id+":")
		c.ok("cp", src, id+":renamed.sh")
		c.ok("cp", src, id+":bin/")
		for _, p := range []string{"tool.sh", "renamed.sh", "bin/tool.sh"} {
			if got := c.ok("exec", id, "--", "./"+p); got != "tool\n" {
				t.Fatalf("%s runs to %q", p, got)
			}
		}
		dir := t.TempDir()
		c.ok("cp", id+":bin/tool.sh", dir)
		c.ok("cp", id+":renamed.sh", filepath.Join(dir, "again.sh"))
		for _, p := range []string{"tool.sh", "again.sh"} {
			fi, err := os.Stat(filepath.Join(dir, p))
			if err != nil || fi.Mode().Perm() != 0o755 {
				t.Fatalf("%s: %v %v", p, fi, err)
			}
		}
	})

	t.Run("large_file_round_trip", func(t *testing.T) {
		dir := t.TempDir()
		r := c.do("", "cp", id+":copy/lib/deep/data.bin", dir)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("exit %d stderr %q (no progress when stderr is not a terminal)", r.code, r.stderr)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "data.bin")); string(b) != big {
			t.Fatalf("got %d bytes back, want %d", len(b), len(big))
		}
	})

	t.Run("stdin_and_stdout_raw", func(t *testing.T) {
		if r := c.do("raw bytes\x00\xff", "cp", "-", id+":raw.bin"); r.code != 0 {
			t.Fatalf("exit %d stderr %q", r.code, r.stderr)
		}
		if got := c.ok("cp", id+":raw.bin", "-"); got != "raw bytes\x00\xff" {
			t.Fatalf("got %q", got)
		}
	})

	t.Run("stdin_and_stdout_tar", func(t *testing.T) {
		out := c.ok("cp", id+":in/proj", "-")
		got := map[string]string{}
		tr := tar.NewReader(strings.NewReader(out))
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(tr)
			switch hdr.Typeflag {
			case tar.TypeSymlink:
				got[strings.TrimPrefix(hdr.Name, "./")] = "-> " + hdr.Linkname
			case tar.TypeDir:
				got[strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "./"), "/")+"/"] = ""
			default:
				got[strings.TrimPrefix(hdr.Name, "./")] = string(b)
			}
		}
		delete(got, "/")
		if !maps.Equal(got, proj) {
			t.Fatalf("the tar stream holds %v", keys(got))
		}
		// The same stream back in, into a directory that does not exist yet.
		if r := c.do(out, "cp", "-", id+":fromtar/"); r.code != 0 {
			t.Fatalf("exit %d stderr %q", r.code, r.stderr)
		}
		if got := remoteTree(t, c, id, "fromtar"); !maps.Equal(got, proj) {
			t.Fatalf("in the sandbox: %v", keys(got))
		}
	})

	t.Run("errors", func(t *testing.T) {
		c.fails(cove.CodeNotFound, `^cove: .*no such file or directory`, "cp", id+":nosuch", t.TempDir())
		c.fails(cove.CodeNotFound, `^cove: .*nosuch: no such file or directory\n$`, "cp", filepath.Join(t.TempDir(), "nosuch"), id+":")
		// The local directory that receives a copy must exist, as with cp.
		missing := filepath.Join(t.TempDir(), "no", "such")
		c.fails(cove.CodeNotFound, `^cove: .*/no: no such directory\n$`, "cp", id+":copy", missing)
		c.fails(cove.CodeNotFound, `^cove: .*such/: no such directory\n$`, "cp", id+":raw.bin", missing+"/")
		if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("a failed copy made %s: %v", filepath.Dir(missing), err)
		}
		c.fails(cove.CodeConflict, `^cove: cannot copy the directory`, "cp", projDir, id+":raw.bin")
		// A local file that cannot be written is this machine's problem,
		// named plainly, not an internal error of cove's.
		c.fails(cove.CodeInvalid, `^cove: /dev/full: no space left on device\n$`, "cp", id+":raw.bin", "/dev/full")
	})
}

func keys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

// TestExtractTarStaysInside feeds extractTar a hostile archive: nothing may
// be written outside the target directory.
func TestExtractTarStaysInside(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "dst")
	elsewhere := filepath.Join(base, "elsewhere")
	os.Mkdir(dir, 0o755)
	os.Mkdir(elsewhere, 0o755)
	// A link that was already in the destination, pointing out of it.
	os.Symlink(elsewhere, filepath.Join(dir, "planted"))

	ar := newTestArchive(t)
	add := ar.add
	add(&tar.Header{Name: "../escaped", Typeflag: tar.TypeReg}, "x")
	add(&tar.Header{Name: "a/../../escaped2", Typeflag: tar.TypeReg}, "x")
	add(&tar.Header{Name: "/abs.txt", Typeflag: tar.TypeReg}, "inside")
	add(&tar.Header{Name: "up", Typeflag: tar.TypeSymlink, Linkname: "../elsewhere"}, "")
	add(&tar.Header{Name: "etc", Typeflag: tar.TypeSymlink, Linkname: "/etc"}, "")
	add(&tar.Header{Name: "up/through-link", Typeflag: tar.TypeReg}, "x")
	add(&tar.Header{Name: "ok/file.txt", Typeflag: tar.TypeReg}, "fine")
	add(&tar.Header{Name: "ok/rel", Typeflag: tar.TypeSymlink, Linkname: "file.txt"}, "")
	add(&tar.Header{Name: "dev", Typeflag: tar.TypeChar}, "")
	archive := ar.close().Bytes()

	var warn bytes.Buffer
	skips := &skipCount{warn: &warn}
	if err := extractTar(bytes.NewReader(archive), dir, skips); err != nil {
		t.Fatal(err)
	}
	if skips.entries != 9 || skips.skipped != 5 {
		t.Errorf("counted %d entries and %d skipped, want 9 and 5", skips.entries, skips.skipped)
	}
	want := map[string]string{
		"abs.txt": "inside", "ok/": "", "ok/file.txt": "fine", "ok/rel": "-> file.txt",
		"up/": "", "up/through-link": "x", "planted": "-> " + elsewhere,
	}
	if got := tree(t, dir); !maps.Equal(got, want) {
		t.Fatalf("extracted %v, want %v", got, want)
	}
	if got := tree(t, elsewhere); len(got) != 0 {
		t.Fatalf("wrote outside: %v", got)
	}
	if _, err := os.Lstat(filepath.Join(base, "escaped")); err == nil {
		t.Fatal("wrote ../escaped")
	}
	for _, w := range []string{"../escaped", "escaped2", "up -> ../elsewhere", "etc -> /etc", "dev"} {
		if !strings.Contains(warn.String(), w) {
			t.Errorf("no warning about %s in %q", w, warn.String())
		}
	}

	// Through the planted link: refused, nothing written.
	add(&tar.Header{Name: "planted/owned", Typeflag: tar.TypeReg}, "x")
	if err := extractTar(ar.close(), dir, &skipCount{warn: io.Discard}); err == nil {
		t.Fatal("wrote through a link that leaves the directory")
	}
	if got := tree(t, elsewhere); len(got) != 0 {
		t.Fatalf("wrote outside: %v", got)
	}
}

// TestCpFailureLeavesNothing: a copy into the sandbox that fails leaves
// the workspace as it was, without the directory it was to create, as
// uploads are all or nothing.
func TestCpFailureLeavesNothing(t *testing.T) {
	srv := newServer(t)
	c := srv.cli(t, srv.admin)
	id := c.create("--disk", "4M")
	local := t.TempDir()
	writeTree(t, filepath.Join(local, "over"), map[string]string{"ok.txt": "fine", "z.bin": strings.Repeat("z", 5<<20)})
	writeTree(t, filepath.Join(local, "big"), map[string]string{"a.bin": strings.Repeat("x", 3<<20), "b.bin": strings.Repeat("y", 3<<20)})
	if err := os.WriteFile(filepath.Join(local, "big.bin"), []byte(strings.Repeat("z", 5<<20)), 0o644); err != nil {
		t.Fatal(err)
	}
	c.ok("files", "mkdir", id, "there")
	for name, args := range map[string][]string{
		"into a new directory":           {"cp", filepath.Join(local, "over"), id + ":newdir"},
		"into a new directory's parents": {"cp", filepath.Join(local, "over"), id + ":new/parents/dir"},
		"into an existing directory":     {"cp", filepath.Join(local, "over"), id + ":there"},
		"more than the disk holds":       {"cp", filepath.Join(local, "big"), id + ":bigdir"},
		"not a tar stream":               {"cp", "-", id + ":brandnew/"},
		"a file into a new directory":    {"cp", filepath.Join(local, "big.bin"), id + ":newfiledir/"},
	} {
		if r := c.do("junk\n", args...); r.code == 0 {
			t.Errorf("%s: exit 0, want a failure", name)
		}
		if got := remoteTree(t, c, id, "."); !maps.Equal(got, map[string]string{"there/": ""}) {
			t.Errorf("%s: the failed copy left %v", name, keys(got))
		}
	}
}

// TestCpKeepsTheReplacedMode: standard input copied over an executable
// keeps it executable, as cp does.
func TestCpKeepsTheReplacedMode(t *testing.T) {
	srv := newServer(t)
	c := srv.cli(t, srv.admin)
	id := c.create()
	src := filepath.Join(t.TempDir(), "run.sh")
	os.WriteFile(src, []byte("#!/bin/sh\necho one\n"), 0o755)
	c.ok("cp", src, id+":")
	if r := c.do("#!/bin/sh\necho two\n", "cp", "-", id+":run.sh"); r.code != 0 {
		t.Fatalf("exit %d stderr %q", r.code, r.stderr)
	}
	if got := c.ok("exec", id, "--", "./run.sh"); got != "two\n" {
		t.Fatalf("the replaced script runs to %q", got)
	}
}

// TestCpSummarizesSkippedEntries: a copy out of the sandbox that skips
// entries (links that point outside the directory) warns of each, ends
// with how many of all were copied, and succeeds: copying again would
// skip them again.
func TestCpSummarizesSkippedEntries(t *testing.T) {
	srv := newServer(t)
	c := srv.cli(t, srv.admin)
	id := c.create()
	c.ok("exec", id, "--", "sh", "-c", "mkdir links && ln -s /etc/passwd links/abs && ln -s ../.. links/up")
	dst := t.TempDir()
	r := c.do("", "cp", id+":links", dst)
	want := "cove: skipping the link abs -> /etc/passwd: it points outside the directory\n" +
		"cove: skipping the link up -> ../..: it points outside the directory\n" +
		"cove: copied 0 of the 2 entries of " + id + ":links: the 2 skipped are listed above\n"
	if r.code != 0 || r.stderr != want {
		t.Fatalf("exit %d, stderr:\n%s\nwant exit 0 and:\n%s", r.code, r.stderr, want)
	}
	if got := tree(t, filepath.Join(dst, "links")); len(got) != 0 {
		t.Fatalf("copied %v", keys(got))
	}

	// Into the sandbox, what tar cannot carry, and links out of the
	// directory (which the sandbox would refuse, and the whole copy with
	// them: a virtualenv's are absolute), are skipped the same way.
	local := t.TempDir()
	src := filepath.Join(local, "src")
	writeTree(t, src, map[string]string{"a.txt": "a"})
	if err := syscall.Mkfifo(filepath.Join(src, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"abs": "/usr/bin/python3", "up": "../..", "in": "a.txt"} {
		if err := os.Symlink(target, filepath.Join(src, link)); err != nil {
			t.Fatal(err)
		}
	}
	r = c.do("", "cp", src, id+":")
	want = "cove: skipping the link " + filepath.Join(src, "abs") + " -> /usr/bin/python3: it points outside the directory\n" +
		"cove: skipping " + filepath.Join(src, "fifo") + ": not a file, directory or symbolic link\n" +
		"cove: skipping the link " + filepath.Join(src, "up") + " -> ../..: it points outside the directory\n" +
		"cove: copied 2 of the 5 entries of " + src + ": the 3 skipped are listed above\n"
	if r.code != 0 || r.stderr != want {
		t.Fatalf("exit %d, stderr:\n%s\nwant exit 0 and:\n%s", r.code, r.stderr, want)
	}
	if got := c.ok("exec", id, "--", "sh", "-c", "cd src && ls -A && readlink in"); got != "a.txt\nin\na.txt\n" {
		t.Fatalf("in the sandbox: %q", got)
	}
}

// chainTree is the reviewer's escape, three levels deep: d0/d1/d2/up is a
// link back to the top, so esc, whose text d0/d1/d2/up/../../../PWNED
// stays inside, climbs three levels above the top once up is followed.
// a, b and c are links that stay inside, b and c through other links.
var chainTree = map[string]string{
	"d0/d1/d2/up": "-> ../../..",
	"esc":         "-> d0/d1/d2/up/../../../PWNED",
	"a":           "-> d0",
	"b":           "-> a/d1",
	"c":           "-> d0/d1/d2/up/d0",
}

// chainKept is what of chainTree a copy keeps: all but esc.
var chainKept = map[string]string{
	"d0/": "", "d0/d1/": "", "d0/d1/d2/": "", "d0/d1/d2/up": "-> ../../..",
	"a": "-> d0", "b": "-> a/d1", "c": "-> d0/d1/d2/up/d0",
}

// TestCpSkipsLinksOutThroughLinks: a link whose text stays inside the
// copied directory but that gets out through another link is skipped
// both ways, with the warning of any link out, and links that reach
// inside through other links are kept.
func TestCpSkipsLinksOutThroughLinks(t *testing.T) {
	srv := newServer(t)
	c := srv.cli(t, srv.admin)
	id := c.create()
	c.ok("exec", id, "--", "sh", "-c", "mkdir -p out/d0/d1/d2 && ln -s ../../.. out/d0/d1/d2/up && "+
		"ln -s d0/d1/d2/up/../../../PWNED out/esc && ln -s d0 out/a && ln -s a/d1 out/b && ln -s d0/d1/d2/up/d0 out/c")
	dst := t.TempDir()
	r := c.do("", "cp", id+":out", dst+"/")
	want := "cove: skipping the link esc -> d0/d1/d2/up/../../../PWNED: it points outside the directory\n" +
		"cove: copied 7 of the 8 entries of " + id + ":out: the one skipped is listed above\n"
	if r.code != 0 || r.stderr != want {
		t.Fatalf("exit %d, stderr:\n%s\nwant exit 0 and:\n%s", r.code, r.stderr, want)
	}
	if got := tree(t, filepath.Join(dst, "out")); !maps.Equal(got, chainKept) {
		t.Fatalf("copied %v, want %v", got, chainKept)
	}

	src := filepath.Join(t.TempDir(), "chain")
	writeTree(t, src, chainTree)
	r = c.do("", "cp", src, id+":")
	want = "cove: skipping the link " + filepath.Join(src, "esc") + " -> d0/d1/d2/up/../../../PWNED: it points outside the directory\n" +
		"cove: copied 7 of the 8 entries of " + src + ": the one skipped is listed above\n"
	if r.code != 0 || r.stderr != want {
		t.Fatalf("exit %d, stderr:\n%s\nwant exit 0 and:\n%s", r.code, r.stderr, want)
	}
	got := c.ok("exec", id, "--", "sh", "-c", "cd chain && ls -A && readlink a b c d0/d1/d2/up")
	if got != "a\nb\nc\nd0\nd0\na/d1\nd0/d1/d2/up/d0\n../../..\n" {
		t.Fatalf("in the sandbox: %q", got)
	}
}

// TestCpExtractChecksLinksOnceAllAreIn: extractTar checks links only once
// every one is in place, so a link out through another link is skipped
// even when it comes first in the archive, before the link it goes
// through; a loop of links, which never resolves, is skipped too.
func TestCpExtractChecksLinksOnceAllAreIn(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range []string{"esc", "c", "b", "a", "loop1", "loop2", "d0/d1/d2/up"} {
		target := map[string]string{"loop1": "loop2", "loop2": "loop1"}[name]
		if target == "" {
			target = strings.TrimPrefix(chainTree[name], "-> ")
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target}); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	dir := t.TempDir()
	var warn bytes.Buffer
	skips := &skipCount{warn: &warn}
	if err := extractTar(&buf, dir, skips); err != nil {
		t.Fatal(err)
	}
	wantWarn := "cove: skipping the link esc -> d0/d1/d2/up/../../../PWNED: it points outside the directory\n" +
		"cove: skipping the link loop1 -> loop2: it leads through more than 40 links, a loop perhaps\n" +
		"cove: skipping the link loop2 -> loop1: it leads through more than 40 links, a loop perhaps\n"
	if warn.String() != wantWarn || skips.entries != 7 || skips.skipped != 3 {
		t.Fatalf("%d entries, %d skipped, warnings:\n%s\nwant 7, 3 and:\n%s", skips.entries, skips.skipped, warn.String(), wantWarn)
	}
	if got := tree(t, dir); !maps.Equal(got, chainKept) {
		t.Fatalf("extracted %v, want %v", got, chainKept)
	}
}

// TestCpEscapesNames: names and link targets that the sandbox chose are
// printed quoted when they hold control characters, so that they cannot
// drive the terminal; ordinary ones are printed as they are.
func TestCpEscapesNames(t *testing.T) {
	srv := newServer(t)
	c := srv.cli(t, srv.admin)
	id := c.create()
	c.ok("exec", id, "--", "sh", "-c", `mkdir esc && cd esc && ln -s "$(printf '/etc/\033[2J')" "$(printf '\033]0;TITLE\007\033[2J')" && `+
		`mkfifo "$(printf 'fifo\033[31m')" && ln -s /etc/passwd plain && ln -s /x "$(printf 'bad\377utf8')"`)
	r := c.do("", "cp", id+":esc", t.TempDir())
	if r.code != 0 {
		t.Fatalf("exit %d stderr %q", r.code, r.stderr)
	}
	want := "cove: skipping the link \"\\x1b]0;TITLE\\a\\x1b[2J\" -> \"/etc/\\x1b[2J\": it points outside the directory\n" +
		"cove: skipping the link \"bad\\xffutf8\" -> /x: it points outside the directory\n" +
		"cove: skipping the link plain -> /etc/passwd: it points outside the directory\n" +
		"cove: copied 0 of the 3 entries of " + id + ":esc: the 3 skipped are listed above\n"
	if r.stderr != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", r.stderr, want)
	}
	if strings.ContainsAny(r.stderr, "\x1b\x07") {
		t.Errorf("control characters reached the terminal: %q", r.stderr)
	}

	// Names printed by an extraction: entries the archive skips.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "dev\x1b[2J", Typeflag: tar.TypeChar})
	tw.WriteHeader(&tar.Header{Name: "h\x07", Typeflag: tar.TypeLink, Linkname: "nowhere\x1b"})
	tw.Close()
	var warn bytes.Buffer
	if err := extractTar(&buf, t.TempDir(), &skipCount{warn: &warn}); err != nil {
		t.Fatal(err)
	}
	want = "cove: skipping \"dev\\x1b[2J\": not a file, directory or symbolic link\n" +
		"cove: skipping the hard link \"h\\a\" to \"nowhere\\x1b\": it is not a file copied before it\n"
	if warn.String() != want {
		t.Errorf("warnings:\n%s\nwant:\n%s", warn.String(), want)
	}
}

// TestExtractTarHardLinks: a hard link of the archive is made only to a
// regular file that the same extraction wrote inside the directory; one to
// anything else (a name outside, a symbolic link, a file that was there
// before, a file not yet written) is skipped with a warning.
func TestExtractTarHardLinks(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "dst")
	elsewhere := filepath.Join(base, "elsewhere")
	os.Mkdir(dir, 0o755)
	os.Mkdir(elsewhere, 0o755)
	os.WriteFile(filepath.Join(elsewhere, "secret"), []byte("secret"), 0o644)
	os.WriteFile(filepath.Join(dir, "before"), []byte("before"), 0o644)
	os.Symlink(elsewhere, filepath.Join(dir, "planted"))

	ar := newTestArchive(t)
	add := ar.add
	link := func(name, target string) {
		add(&tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target}, "")
	}
	link("early", "a")
	add(&tar.Header{Name: "a", Typeflag: tar.TypeReg}, "data")
	add(&tar.Header{Name: "sym", Typeflag: tar.TypeSymlink, Linkname: "a"}, "")
	link("sub/b", "a")
	link("c", "sub/b")
	link("up", "../elsewhere/secret")
	link("abs", filepath.Join(elsewhere, "secret"))
	link("via", "planted/secret")
	link("old", "before")
	link("tosym", "sym")
	// Over a file of the archive: replaced by the link.
	add(&tar.Header{Name: "d", Typeflag: tar.TypeReg}, "replaced")
	link("d", "a")
	// A file of the archive written over a link: a file of its own, and
	// the file it was linked to is left as it was.
	link("e", "a")
	add(&tar.Header{Name: "e", Typeflag: tar.TypeReg}, "own")

	var warn bytes.Buffer
	skips := &skipCount{warn: &warn}
	if err := extractTar(ar.close(), dir, skips); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"a": "data", "sub/": "", "sub/b": "data", "c": "data", "d": "data", "e": "own",
		"sym": "-> a", "before": "before", "planted": "-> " + elsewhere,
	}
	if got := tree(t, dir); !maps.Equal(got, want) {
		t.Fatalf("extracted %v, want %v", got, want)
	}
	a, _ := os.Stat(filepath.Join(dir, "a"))
	for _, name := range []string{"sub/b", "c", "d"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || !os.SameFile(a, fi) {
			t.Errorf("%s is not a hard link to a: %v", name, err)
		}
	}
	if fi, _ := os.Stat(filepath.Join(dir, "e")); os.SameFile(a, fi) {
		t.Error("e, written after it was a link, was written through it")
	}
	for _, name := range []string{"early", "up", "abs", "via", "old", "tosym"} {
		if !strings.Contains(warn.String(), "cove: skipping the hard link "+name+" to ") {
			t.Errorf("no warning about %s in:\n%s", name, warn.String())
		}
	}
	if skips.entries != 14 || skips.skipped != 6 {
		t.Errorf("counted %d entries and %d skipped, want 14 and 6", skips.entries, skips.skipped)
	}
	if got := tree(t, elsewhere); !maps.Equal(got, map[string]string{"secret": "secret"}) {
		t.Fatalf("outside: %v", got)
	}
	if fi, _ := os.Stat(filepath.Join(elsewhere, "secret")); fi.Sys().(*syscall.Stat_t).Nlink != 1 {
		t.Error("a file outside got a hard link")
	}

	// A link made through the planted link: refused, nothing written.
	add(&tar.Header{Name: "f", Typeflag: tar.TypeReg}, "f")
	link("planted/owned", "f")
	if err := extractTar(ar.close(), dir, &skipCount{warn: io.Discard}); err == nil {
		t.Fatal("linked through a link that leaves the directory")
	}
	if got := tree(t, elsewhere); !maps.Equal(got, map[string]string{"secret": "secret"}) {
		t.Fatalf("outside: %v", got)
	}
}

// TestCpHardLinks: hard links in the sandbox are hard links in the copy,
// the file's content sent once; a directory whose content is far larger
// out of the sandbox than in it (sparse files) is refused, saying why,
// and nothing is written.
func TestCpHardLinks(t *testing.T) {
	srv := newServer(t)
	c := srv.cli(t, srv.admin)
	id := c.create("--disk", "10M")
	c.ok("exec", id, "--", "sh", "-c", "mkdir -p hl/sub && head -c 3M /dev/urandom > hl/a && ln hl/a hl/b && ln hl/a hl/sub/c")
	dst := t.TempDir()
	if r := c.do("", "cp", id+":hl", dst); r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d stderr %q", r.code, r.stderr)
	}
	a, err := os.Stat(filepath.Join(dst, "hl", "a"))
	if err != nil || a.Size() != 3<<20 {
		t.Fatalf("hl/a: %v, %v", a, err)
	}
	for _, name := range []string{"b", "sub/c"} {
		if fi, err := os.Stat(filepath.Join(dst, "hl", name)); err != nil || !os.SameFile(a, fi) {
			t.Errorf("hl/%s is not a hard link to hl/a: %v", name, err)
		}
	}

	c.ok("exec", id, "--", "sh", "-c", "mkdir bomb && i=0 && while [ $i -lt 120 ]; do i=$((i+1)); truncate -s 10M bomb/f$i; done")
	dst = t.TempDir()
	c.fails(cove.CodeConflict, `^cove: the archive would hold more than 84 MiB: bomb holds sparse or hard-linked files .*; download them one by one\n$`, "cp", id+":bomb", dst)
	if got := tree(t, dst); len(got) != 0 {
		t.Fatalf("the refused copy wrote %v", keys(got))
	}
}

// TestCpAppliesTheUmask: directories copied out of a sandbox get their
// modes less the umask, as files do: a directory the sandbox made world
// writable is not world writable here under umask 077.
func TestCpAppliesTheUmask(t *testing.T) {
	srv := newServer(t)
	c := srv.cli(t, srv.admin)
	id := c.create()
	c.ok("exec", id, "--", "sh", "-c", "mkdir -p ww/pub && chmod 0777 ww/pub && echo x > ww/pub/f && chmod 0666 ww/pub/f")
	dst := t.TempDir()
	old := unix.Umask(0o077)
	r := c.do("", "cp", id+":ww", dst+"/")
	unix.Umask(old)
	if r.code != 0 {
		t.Fatalf("exit %d stderr %q", r.code, r.stderr)
	}
	for name, want := range map[string]fs.FileMode{"ww": 0o700, "ww/pub": 0o700, "ww/pub/f": 0o600} {
		if fi, err := os.Stat(filepath.Join(dst, name)); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, %v; want mode %v", name, fi.Mode(), err, want)
		}
	}
	if processUmask() != fs.FileMode(old) {
		t.Errorf("the umask read is %v, want %v", processUmask(), fs.FileMode(old))
	}
}

// testArchive builds the tar archives of extractTar's tests.
type testArchive struct {
	t   *testing.T
	buf bytes.Buffer
	tw  *tar.Writer
}

func newTestArchive(t *testing.T) *testArchive {
	a := &testArchive{t: t}
	a.tw = tar.NewWriter(&a.buf)
	return a
}

// add writes an entry with its body, mode 0644 unless hdr gives one.
func (a *testArchive) add(hdr *tar.Header, body string) {
	hdr.Size = int64(len(body))
	if hdr.Mode == 0 {
		hdr.Mode = 0o644
	}
	if err := a.tw.WriteHeader(hdr); err != nil {
		a.t.Fatal(err)
	}
	a.tw.Write([]byte(body))
}

// close ends the archive and returns it; the next add begins another.
func (a *testArchive) close() *bytes.Buffer {
	a.tw.Close()
	out := bytes.NewBuffer(bytes.Clone(a.buf.Bytes()))
	a.buf.Reset()
	a.tw = tar.NewWriter(&a.buf)
	return out
}
