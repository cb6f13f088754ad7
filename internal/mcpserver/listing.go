package mcpserver

import (
	"cmp"
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cove-sandbox/cove"
)

// Bounds of list_files.
const (
	// maxListEntries is about what a model reads of a program's output
	// (20000 characters a stream): a line of a listing takes some 20 to
	// 40 characters.
	maxListEntries = 1000
	// maxMoreDirs is how many of the directories that hold the entries
	// a capped listing left out it names.
	maxMoreDirs = 5
)

// collapsedDirs are the names of directories of dependencies, caches and
// version control, whose contents a recursive listing counts rather than
// lists: a project's node_modules or .git easily holds thousands of
// entries, which would fill the listing and hide the project's own files.
var collapsedDirs = map[string]bool{
	"node_modules":  true,
	".git":          true,
	".hg":           true,
	".svn":          true,
	".venv":         true,
	"venv":          true,
	"__pycache__":   true,
	".cache":        true,
	".mypy_cache":   true,
	".pytest_cache": true,
	".ruff_cache":   true,
	".tox":          true,
}

// collapsedNames names collapsedDirs for descriptions.
const collapsedNames = "node_modules, .git, .venv, venv, __pycache__, .cache and the like"

type listFilesInput struct {
	SandboxID string `json:"sandbox_id" jsonschema:"the sandbox to list"`
	Path      string `json:"path,omitempty" jsonschema:"the directory, relative to /workspace (default the workspace)"`
	Recursive bool   `json:"recursive,omitempty" jsonschema:"list the whole tree under the directory; the contents of directories of dependencies, caches and version control (node_modules, .git, .venv, venv, __pycache__, .cache and the like) are counted, not listed, unless the listing starts inside one"`
}

type fileEntry struct {
	Path    string `json:"path" jsonschema:"the path, relative to /workspace"`
	Size    int64  `json:"size" jsonschema:"size in bytes"`
	IsDir   bool   `json:"is_dir,omitempty" jsonschema:"it is a directory"`
	Symlink string `json:"symlink,omitempty" jsonschema:"the target, for a symbolic link"`
	// UnlistedEntries is set on a directory of collapsedDirs whose
	// contents a recursive listing left out.
	UnlistedEntries int `json:"unlisted_entries,omitempty" jsonschema:"for a directory of dependencies, caches or version control (such as node_modules or .git) in a recursive listing: how many entries it holds, which are not listed (list_files with its path lists them)"`
}

// dirCount is a directory and how many of the entries a listing left out
// are under it.
type dirCount struct {
	Path    string `json:"path" jsonschema:"the directory, relative to /workspace"`
	Entries int    `json:"entries" jsonschema:"how many of the entries left out are under it"`
}

type listFilesOutput struct {
	Entries     []fileEntry `json:"entries" jsonschema:"the directory's entries"`
	More        bool        `json:"more,omitempty" jsonschema:"there are more entries than listed (beside those counted in unlisted_entries)"`
	MoreEntries int         `json:"more_entries,omitempty" jsonschema:"how many entries were left out for length"`
	MoreIn      []dirCount  `json:"more_in,omitempty" jsonschema:"the directories that hold most of the entries left out, most first: list_files with one of these paths lists them"`
}

func (s *Server) listFiles(ctx context.Context, st *session, in listFilesInput) (*mcp.CallToolResult, listFilesOutput, error) {
	if in.Path == "" {
		in.Path = "."
	}
	fis, err := s.svc.ListFiles(ctx, in.SandboxID, in.Path, in.Recursive)
	if err != nil {
		return nil, listFilesOutput{}, err
	}
	st.use(in.SandboxID)
	items := listItems(fis, in.Recursive && !insideCollapsed(in.Path))
	shown, more := capItems(items, maxListEntries)

	out := listFilesOutput{Entries: []fileEntry{}}
	var b strings.Builder
	fmt.Fprintf(&b, "%s in sandbox %s:\n", in.Path, in.SandboxID)
	if len(items) == 0 {
		b.WriteString("(empty)\n")
	}
	for _, it := range shown {
		fi := it.fi
		out.Entries = append(out.Entries, fileEntry{Path: fi.Path, Size: fi.Size, IsDir: fi.IsDir, Symlink: fi.Symlink, UnlistedEntries: it.unlisted})
		switch {
		case it.unlisted > 0:
			fmt.Fprintf(&b, "%s/ (%s, not listed: list_files with path %q lists them)\n", fi.Path, entries(it.unlisted), fi.Path)
		case fi.IsDir:
			fmt.Fprintf(&b, "%s/\n", fi.Path)
		case fi.Symlink != "":
			fmt.Fprintf(&b, "%s -> %s\n", fi.Path, fi.Symlink)
		default:
			fmt.Fprintf(&b, "%s (%s)\n", fi.Path, cove.FormatBytes(fi.Size))
		}
	}
	if len(more) > 0 {
		out.More = true
		out.MoreEntries, out.MoreIn = moreIn(shown, more, in.Path)
		b.WriteString(moreNote(out.MoreEntries, out.MoreIn, in.Path) + "\n")
	}
	return textResult(b.String()), out, nil
}

// listItem is one line of a listing: an entry, or a directory of
// collapsedDirs with the count of the entries under it.
type listItem struct {
	fi *cove.FileInfo
	// unlisted counts the entries under a collapsed directory.
	unlisted int
	// order is the entry's place in the listing, sorted by path.
	order int
}

// listItems makes the lines of a listing sorted by path, with the
// contents of the directories of collapsedDirs counted on their
// directory's line when collapse is set.
func listItems(fis []*cove.FileInfo, collapse bool) []*listItem {
	items := make([]*listItem, 0, len(fis))
	heads := map[string]*listItem{}
	for _, fi := range fis {
		if !collapse {
			items = append(items, &listItem{fi: fi, order: len(items)})
			continue
		}
		dir, inside := collapsedDirOf(fi)
		switch {
		case dir == "":
			items = append(items, &listItem{fi: fi, order: len(items)})
		case !inside:
			h := &listItem{fi: fi, order: len(items)}
			heads[dir] = h
			items = append(items, h)
		default:
			h := heads[dir]
			if h == nil {
				// The directory sorts before its contents; should
				// it be missing, its line stands in for it.
				h = &listItem{fi: &cove.FileInfo{Path: dir, Name: path.Base(dir), IsDir: true}, order: len(items)}
				heads[dir] = h
				items = append(items, h)
			}
			h.unlisted++
		}
	}
	return items
}

// collapsedDirOf returns the first directory on fi's path that is one
// of collapsedDirs, and whether fi is inside it rather than the
// directory itself; "" when there is none.
func collapsedDirOf(fi *cove.FileInfo) (dir string, inside bool) {
	parts := strings.Split(fi.Path, "/")
	for i, p := range parts {
		switch {
		case !collapsedDirs[p]:
			continue
		case i < len(parts)-1:
			return strings.Join(parts[:i+1], "/"), true
		case fi.IsDir:
			return fi.Path, false
		}
		return "", false // a file of such a name
	}
	return "", false
}

// insideCollapsed reports whether a listing's directory is, or is in,
// one of collapsedDirs: one asked to see what is in it.
func insideCollapsed(dir string) bool {
	return slices.ContainsFunc(strings.Split(path.Clean(dir), "/"), func(p string) bool { return collapsedDirs[p] })
}

// depth is how many names a path has.
func depth(p string) int { return strings.Count(p, "/") + 1 }

// capItems keeps at most max items, the shallowest first (and, at one
// depth, in path order), so that a tree too large to list shows its
// upper levels whole: the project's own top-level files and directories
// rather than the first thousand entries of one deep directory. Both
// parts keep the listing's order.
func capItems(items []*listItem, max int) (shown, more []*listItem) {
	if len(items) <= max {
		return items, nil
	}
	byDepth := slices.Clone(items)
	slices.SortStableFunc(byDepth, func(a, b *listItem) int { return cmp.Compare(depth(a.fi.Path), depth(b.fi.Path)) })
	shown, more = byDepth[:max], byDepth[max:]
	byOrder := func(a, b *listItem) int { return cmp.Compare(a.order, b.order) }
	slices.SortFunc(shown, byOrder)
	slices.SortFunc(more, byOrder)
	return shown, more
}

// moreIn counts the entries a capped listing left out, and names the
// directories that hold most of them, most first: each entry goes to the
// deepest directory above it that the listing shows, which list_files
// can list next, or to root (the listed directory) when none is. Where
// that makes more directories than a note names, those of the deepest
// level give way to their parents (below root), until it does not.
func moreIn(shown, more []*listItem, root string) (int, []dirCount) {
	shownDirs := map[string]bool{}
	for _, it := range shown {
		if it.fi.IsDir && it.unlisted == 0 {
			shownDirs[it.fi.Path] = true
		}
	}
	// parentOf is the deepest shown directory above p, or root.
	parentOf := func(p string) string {
		for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
			if shownDirs[d] {
				return d
			}
		}
		return root
	}
	total := 0
	counts := map[string]int{}
	for _, it := range more {
		n := 1 + it.unlisted
		total += n
		counts[parentOf(it.fi.Path)] += n
	}
	for len(counts) > maxMoreDirs {
		deepest := 0
		for p := range counts {
			if p != root && parentOf(p) != root {
				deepest = max(deepest, depth(p))
			}
		}
		if deepest == 0 {
			break
		}
		for p, n := range counts {
			if p != root && depth(p) == deepest && parentOf(p) != root {
				delete(counts, p)
				counts[parentOf(p)] += n
			}
		}
	}
	dirs := make([]dirCount, 0, len(counts))
	for p, n := range counts {
		dirs = append(dirs, dirCount{Path: p, Entries: n})
	}
	slices.SortFunc(dirs, func(a, b dirCount) int {
		return cmp.Or(cmp.Compare(b.Entries, a.Entries), cmp.Compare(a.Path, b.Path))
	})
	return total, dirs[:min(len(dirs), maxMoreDirs)]
}

// moreNote says how many entries a listing left out and where they are.
func moreNote(total int, dirs []dirCount, root string) string {
	var parts []string
	named, inRoot := 0, false
	for _, d := range dirs {
		named += d.Entries
		if d.Path == root {
			inRoot = true
			parts = append(parts, fmt.Sprintf("%d in %s itself, which holds more than a listing does", d.Entries, root))
			continue
		}
		parts = append(parts, fmt.Sprintf("%d under %s/", d.Entries, d.Path))
	}
	if rest := total - named; rest > 0 {
		parts = append(parts, fmt.Sprintf("%d in other directories", rest))
	}
	var advice []string
	if len(dirs) > 1 || !inRoot {
		advice = append(advice, "list_files with one of these paths lists them")
	}
	if inRoot {
		advice = append(advice, "exec_command with ls or find and a pattern picks out the entries you need of a directory too large to list")
	}
	more := fmt.Sprintf("%d more entries", total)
	if total == 1 {
		more = "1 more entry"
	}
	return fmt.Sprintf("[... %s, not listed (at most %d lines a call): %s; %s]", more, maxListEntries, strings.Join(parts, ", "), strings.Join(advice, "; "))
}

// entries is a count of entries in words.
func entries(n int) string {
	if n == 1 {
		return "1 entry"
	}
	return fmt.Sprintf("%d entries", n)
}
