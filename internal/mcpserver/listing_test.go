package mcpserver

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cove-sandbox/cove"
)

// TestListFilesCollapses checks that a recursive listing of a project
// shows the project: its dependencies, caches and version control counted
// on one line each (in the text and the structured result alike), the
// contents listed when the listing starts inside such a directory, and a
// tree too large to list cut below its upper levels, with a note naming
// the directories that hold the rest.
func TestListFilesCollapses(t *testing.T) {
	svc := newService(t)
	c := connect(t, New(svc, Options{}))
	var sb sandboxOutput
	c.ok("create_sandbox", map[string]any{}, &sb)
	id := sb.SandboxID
	var run execOutput
	c.ok("exec_command", map[string]any{"sandbox_id": id, "timeout_seconds": 120, "command": `set -e
mkdir -p src/__pycache__ .git/objects/ab
for i in $(seq 1 400); do mkdir node_modules/pkg$i -p; : > node_modules/pkg$i/index.js; : > node_modules/pkg$i/package.json; done
for i in $(seq 1 50); do : > .git/objects/ab/obj$i; done
echo '{}' > package.json; echo 'console.log(1)' > src/index.js; : > src/__pycache__/m.pyc; : > .cache`}, &run)
	if run.Verdict != "ok" {
		t.Fatalf("making the project: %+v", run)
	}

	var out listFilesOutput
	res := c.ok("list_files", map[string]any{"sandbox_id": id, "recursive": true}, &out)
	got := text(res)
	for _, want := range []string{
		"package.json (3 bytes)\n", "src/index.js (15 bytes)\n",
		`node_modules/ (1200 entries, not listed: list_files with path "node_modules" lists them)` + "\n",
		`.git/ (52 entries, not listed: list_files with path ".git" lists them)` + "\n",
		`src/__pycache__/ (1 entry, not listed: list_files with path "src/__pycache__" lists them)` + "\n",
		".cache (0 bytes)\n", // a file of such a name is a file
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the listing lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "node_modules/pkg") || strings.Contains(got, ".git/objects") || out.More || len(out.Entries) != 7 {
		t.Errorf("a listing with the contents of node_modules or .git, or not whole (%d entries, more %v):\n%s", len(out.Entries), out.More, got)
	}
	counts := map[string]int{}
	for _, e := range out.Entries {
		counts[e.Path] = e.UnlistedEntries
	}
	if counts["node_modules"] != 1200 || counts[".git"] != 52 || counts["src/__pycache__"] != 1 || counts["src"] != 0 {
		t.Errorf("structured counts %v", counts)
	}

	// Inside node_modules, node_modules is listed.
	c.ok("list_files", map[string]any{"sandbox_id": id, "path": "node_modules", "recursive": true}, &out)
	if len(out.Entries) != 1000 || out.Entries[0].Path != "node_modules/pkg1" || out.MoreEntries != 200 || !out.More {
		t.Errorf("node_modules: %d entries from %+v, %d more", len(out.Entries), out.Entries[0], out.MoreEntries)
	}

	// More of the project's own than a listing holds: its upper levels
	// come whole, and the note says where the rest is.
	c.ok("exec_command", map[string]any{"sandbox_id": id, "timeout_seconds": 120, "command": "mkdir -p gen/a/b && cd gen/a/b && for i in $(seq 1 1200); do : > f$i; done"}, &run)
	if run.Verdict != "ok" {
		t.Fatalf("making gen: %+v", run)
	}
	res = c.ok("list_files", map[string]any{"sandbox_id": id, "recursive": true}, &out)
	got = text(res)
	// Seven lines above and gen, gen/a and gen/a/b: 990 of the 1200 files.
	if len(out.Entries) != 1000 || out.MoreEntries != 210 || len(out.MoreIn) != 1 || out.MoreIn[0] != (dirCount{Path: "gen/a/b", Entries: 210}) {
		t.Errorf("a large tree: %d entries, %d more in %+v", len(out.Entries), out.MoreEntries, out.MoreIn)
	}
	for _, want := range []string{"package.json (3 bytes)\n", "src/index.js (15 bytes)\n", "node_modules/ (1200 entries", "gen/a/b/\n",
		"[... 210 more entries, not listed (at most 1000 lines a call): 210 under gen/a/b/; list_files with one of these paths lists them]"} {
		if !strings.Contains(got, want) {
			t.Errorf("a large tree lacks %q:\n%.2000s", want, got)
		}
	}
	if strings.Index(got, "package.json") > strings.Index(got, "src/index.js") {
		t.Errorf("a large tree is not in path order:\n%.2000s", got)
	}
}

// TestMoreNote checks where the note of a capped listing says the rest
// is: in the directories that hold most of it, at a level coarse enough
// to name them in a few, and in the listed directory itself when its own
// entries are too many.
func TestMoreNote(t *testing.T) {
	var items []*listItem
	add := func(p string, dir bool) {
		items = append(items, &listItem{fi: &cove.FileInfo{Path: p, IsDir: dir}, order: len(items)})
	}
	// src/x/d0 ... src/x/d9 of 100 files each, and lib/y/z of 50.
	add("lib", true)
	add("lib/y", true)
	add("lib/y/z", true)
	for i := range 50 {
		add(fmt.Sprintf("lib/y/z/f%02d", i), false)
	}
	add("src", true)
	add("src/x", true)
	for d := range 10 {
		add(fmt.Sprint("src/x/d", d), true)
		for i := range 100 {
			add(fmt.Sprintf("src/x/d%d/f%02d", d, i), false)
		}
	}
	// The upper three levels (15 lines) and 5 files of lib/y/z.
	shown, more := capItems(items, 20)
	total, dirs := moreIn(shown, more, ".")
	if total != len(items)-20 || len(shown) != 20 || len(dirs) != 2 || dirs[0] != (dirCount{"src/x", 1000}) || dirs[1] != (dirCount{"lib/y", 45}) {
		t.Errorf("%d more in %+v", total, dirs)
	}
	got := moreNote(total, dirs, ".")
	if want := "[... 1045 more entries, not listed (at most 1000 lines a call): 1000 under src/x/, 45 under lib/y/; list_files with one of these paths lists them]"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}

	got = moreNote(1500, []dirCount{{Path: "big", Entries: 1500}}, "big")
	if want := "[... 1500 more entries, not listed (at most 1000 lines a call): 1500 in big itself, which holds more than a listing does; exec_command with ls or find and a pattern picks out the entries you need of a directory too large to list]"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
