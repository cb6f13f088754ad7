package agent

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
)

// Bounds of the file operations.
const (
	// maxTextBytes is the largest file search looks into and replace
	// edits.
	maxTextBytes = 10 << 20
	// binarySniffBytes is how much of a file is checked for a NUL byte to
	// tell binary files from text.
	binarySniffBytes = 8 << 10
	// maxLineChars truncates the lines search reports.
	maxLineChars = 500
	// maxNeedleBytes caps the text search looks for.
	maxNeedleBytes = 4096
	// maxReplacePaths caps the files of one replace request.
	maxReplacePaths = 1000
	// maxDirEntries caps the entries read from one directory, and
	// maxWalkDepth the depth of a walk, so that a hostile tree cannot
	// make the agent exhaust its memory.
	maxDirEntries = 1 << 20
	maxWalkDepth  = 1024
)

// files is the workspace as the server's file operations see it.
func (s *server) files() workspaceFS {
	dir := s.workspace
	if dir == "" {
		dir = workspaceDir
	}
	return workspaceFS{dir: dir, uid: s.cfg.UID, gid: s.cfg.GID}
}

// handleFileOp answers one file operation request.
func (s *server) handleFileOp(st io.ReadWriteCloser, req *Request) {
	w := s.files()
	reply := func(v any, err error) {
		if err != nil {
			writeFileError(st, err)
			return
		}
		writeJSONFrame(st, frameResult, v)
	}
	switch {
	case req.Stat != nil:
		reply(w.stat(req.Stat.Path))
	case req.Mkdir != nil:
		reply(w.mkdir(req.Mkdir.Path))
	case req.Move != nil:
		reply(w.move(req.Move.From, req.Move.To))
	case req.Remove != nil:
		reply(struct{}{}, w.remove(req.Remove.Path, req.Remove.Recursive))
	case req.Chmod != nil:
		reply(w.chmod(req.Chmod.Path, req.Chmod.Mode))
	case req.List != nil:
		list, err := w.list(req.List.Path, req.List.Recursive, maxListEntries, watchHangup(st))
		sendItems(st, list, struct{}{}, err)
	case req.Search != nil:
		res, err := w.search(*req.Search, watchHangup(st))
		if err != nil {
			writeFileError(st, err)
			return
		}
		sendItems(st, res.Matches, searchDone{Truncated: res.Truncated}, nil)
	case req.Replace != nil:
		res, err := w.replace(*req.Replace, watchHangup(st))
		sendItems(st, res, struct{}{}, err)
	case req.WriteStream != nil:
		reply(w.writeStream(req.WriteStream, &uploadReader{r: st}))
	case req.ReadStream != nil:
		if err := w.readStream(req.ReadStream, st, watchHangup(st)); err != nil {
			writeFileError(st, err)
			return
		}
		writeJSONFrame(st, frameResult, struct{}{})
	case req.ArchiveOut != nil:
		if err := w.archiveOut(req.ArchiveOut, st, watchHangup(st)); err != nil {
			writeFileError(st, err)
			return
		}
		writeJSONFrame(st, frameResult, struct{}{})
	case req.ArchiveIn != nil:
		reply(struct{}{}, w.archiveIn(req.ArchiveIn, &uploadReader{r: st}))
	case req.Upload != nil:
		infos, err := w.uploadFiles(req.Upload, &filesReader{r: st})
		sendItems(st, infos, struct{}{}, err)
	default:
		writeError(st, string(cove.CodeInvalid), "empty file operation")
	}
}

// watchHangup returns a channel that is closed when the host gives up on a
// request: it closes its side of the stream (its context was cancelled) or
// sends anything after a request that expects nothing more. The stream is
// then closed too, so that a write blocked on a full window fails at once.
func watchHangup(st io.ReadCloser) <-chan struct{} {
	gone := make(chan struct{})
	go func() {
		readFrame(st)
		close(gone)
		st.Close()
	}()
	return gone
}

func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// errCanceled ends work whose requester is gone; nobody reads it.
func errCanceled() error {
	return &opError{code: cove.CodeInternal, msg: "the request was cancelled"}
}

// sendItems sends items in frameItems frames of about chunkSize bytes,
// then final as the result, or err.
func sendItems[T any](w io.Writer, items []T, final any, err error) {
	if err != nil {
		writeFileError(w, err)
		return
	}
	batch := []byte{'['}
	flush := func() error {
		if len(batch) == 1 {
			return nil
		}
		batch = append(batch, ']')
		err := writeFrame(w, frameItems, batch)
		batch = append(batch[:0], '[')
		return err
	}
	for _, it := range items {
		b, err := json.Marshal(it)
		if err != nil {
			writeFileError(w, err)
			return
		}
		if len(batch)+len(b) > chunkSize {
			if flush() != nil {
				return
			}
		}
		if len(batch) > 1 {
			batch = append(batch, ',')
		}
		batch = append(batch, b...)
	}
	if flush() != nil {
		return
	}
	writeJSONFrame(w, frameResult, final)
}

// opError is a failed file operation: an error code and a message for the
// user that names the path, relative to the workspace.
type opError struct {
	code cove.Code
	msg  string
	err  error
}

func (e *opError) Error() string { return e.msg }

// Unwrap returns the cause.
func (e *opError) Unwrap() error { return e.err }

func invalidf(format string, args ...any) error {
	return &opError{code: cove.CodeInvalid, msg: fmt.Sprintf(format, args...)}
}

// largerDiskHint ends the message of an upload that no room in the
// workspace would make fit.
const largerDiskHint = "create a new sandbox with a larger disk: disk_mb, --disk"

// overDiskLimit is the error of an upload larger than the workspace's
// disk limit (limit), at the file rel of an upload of several unless rel
// is "": quota_exceeded, worded as the service words it.
func overDiskLimit(what string, limit int64, rel string) error {
	at := ""
	if rel != "" {
		at = "at " + rel + "; "
	}
	return &opError{code: cove.CodeQuotaExceeded, msg: fmt.Sprintf("no space left in the workspace: %s is larger than its disk limit of %s (%s%s)", what, cove.FormatBytes(limit), at, largerDiskHint)}
}

// isDiskFull reports whether err is the workspace's disk limit reached.
func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// pathError classifies err, from an operation on the workspace path rel,
// and words it the way a shell would: "no such file or directory: src/a.py".
func pathError(rel string, err error) error {
	if err == nil {
		return nil
	}
	var oe *opError
	if errors.As(err, &oe) || errors.Is(err, errBadPath) {
		return err
	}
	if errors.Is(err, errRootEscapes()) {
		return linkOutError(rel, err)
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		code, text := errnoText(errno)
		msg := text + ": " + rel
		if errno == syscall.EACCES || errno == syscall.EPERM {
			msg += " (the permission bits of it, or of a directory above it, forbid this to the sandbox user: chmod inside the sandbox)"
		}
		return &opError{code: code, msg: msg, err: err}
	}
	// os.Root's other refusals, possibly wrapped in the error of an
	// operation on a parent.
	var pe *fs.PathError
	if errors.As(err, &pe) {
		cause := pe.Err
		for errors.As(cause, &pe) {
			cause = pe.Err
		}
		return &opError{code: cove.CodeInvalid, msg: cause.Error() + ": " + rel, err: err}
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return &opError{code: cove.CodeInvalid, msg: le.Err.Error() + ": " + rel, err: err}
	}
	return &opError{code: cove.CodeInternal, msg: rel + ": " + err.Error(), err: err}
}

// linkOutError is the error of an operation on rel that os.Root refused
// because a symbolic link on its way leads out of the workspace.
func linkOutError(rel string, err error) error {
	msg := rel + " is a symbolic link that leads outside " + workspaceDir
	if strings.Contains(rel, "/") {
		msg = rel + " leads through a symbolic link outside " + workspaceDir
	}
	return &opError{code: cove.CodeInvalid, msg: msg + " (file operations follow links only inside the workspace)", err: err}
}

// errRootEscapes returns the error os.Root gives for a path that would
// leave it, which the os package does not export: a Root refuses an
// absolute name with it before any system call.
var errRootEscapes = sync.OnceValue(func() error {
	r, err := os.OpenRoot("/")
	if err != nil {
		return errors.New("no escape error")
	}
	defer r.Close()
	_, err = r.Lstat("/")
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return errors.New("no escape error")
})

func errnoText(e syscall.Errno) (cove.Code, string) {
	switch e {
	case syscall.ENOENT:
		return cove.CodeNotFound, "no such file or directory"
	case syscall.EEXIST:
		return cove.CodeConflict, "already exists"
	case syscall.ENOTEMPTY:
		return cove.CodeConflict, "directory not empty"
	case syscall.EBUSY, syscall.ETXTBSY:
		return cove.CodeConflict, e.Error()
	case syscall.EMFILE, syscall.ENFILE:
		// A tree deeper than the open-files limit allows to walk.
		return cove.CodeInvalid, "too many open files (the sandbox's open-files limit; a very deep directory tree needs one per level)"
	case syscall.ENOSPC, syscall.EDQUOT:
		return cove.CodeQuotaExceeded, "no space left in the workspace: its disk limit is reached (delete files to free space, or " + largerDiskHint + ")"
	case syscall.EROFS:
		// Every path is in the workspace, which is mounted writable: only
		// its file system can have gone read-only, as btrfs does after a
		// failed write on the host.
		return cove.CodeUnavailable, "the workspace's file system has gone read-only (on the host, most often because the disk that holds cove's workspaces filled up): cove's operator must free space there and restart cove"
	case syscall.EACCES, syscall.EPERM:
		// The file's mode, which the user can change, forbids it.
		return cove.CodeConflict, e.Error()
	case syscall.ENOTDIR, syscall.EISDIR,
		syscall.ELOOP, syscall.ENAMETOOLONG, syscall.EINVAL, syscall.EXDEV,
		syscall.ENXIO, syscall.EMLINK, syscall.EFBIG,
		syscall.EOPNOTSUPP:
		return cove.CodeInvalid, e.Error()
	}
	return cove.CodeInternal, e.Error()
}

// fileErrorCode is how a file operation's error reaches the host.
func fileErrorCode(err error) (cove.Code, string) {
	var oe *opError
	switch {
	case errors.As(err, &oe):
		return oe.code, oe.msg
	case errors.Is(err, errBadPath):
		return cove.CodeInvalid, err.Error()
	case errors.Is(err, fs.ErrNotExist):
		return cove.CodeNotFound, err.Error()
	}
	return cove.CodeInternal, err.Error()
}

// cleanDirPath is cleanRelPath where an empty path means the workspace.
func cleanDirPath(p string) (string, error) {
	if p == "" {
		return ".", nil
	}
	return cleanRelPath(p)
}

// fileInfo describes fi, found at rel; link is its target if it is a
// symbolic link.
func fileInfo(rel string, fi fs.FileInfo, link string) *cove.FileInfo {
	return &cove.FileInfo{
		Path:    rel,
		Name:    path.Base(rel),
		Size:    fi.Size(),
		Mode:    uint32(fi.Mode().Perm()),
		IsDir:   fi.IsDir(),
		Symlink: link,
		ModTime: fi.ModTime().UTC(),
	}
}

// lstatInfo describes rel without following it if it is a link.
func lstatInfo(root *os.Root, rel string) (*cove.FileInfo, error) {
	fi, err := root.Lstat(rel)
	if err != nil {
		return nil, pathError(rel, err)
	}
	var link string
	if fi.Mode()&fs.ModeSymlink != 0 {
		if link, err = root.Readlink(rel); err != nil {
			return nil, pathError(rel, err)
		}
	}
	return fileInfo(rel, fi, link), nil
}

func (w workspaceFS) stat(p string) (*cove.FileInfo, error) {
	rel, err := cleanRelPath(p)
	if err != nil {
		return nil, err
	}
	var info *cove.FileInfo
	err = w.run(func(root *os.Root) error {
		info, err = lstatInfo(root, rel)
		return err
	})
	return info, err
}

// walkSignal is an error a walkFunc returns to steer the walk.
type walkSignal string

func (s walkSignal) Error() string { return string(s) }

// errSkipDir, returned by a walkFunc for a directory, skips its contents.
const errSkipDir walkSignal = "skip directory"

// walkFunc is called for every entry of a walk with its path as the user
// sees it, its Lstat and, for a symbolic link, its target.
type walkFunc func(rel string, fi fs.FileInfo, link string) error

// walk visits the tree under the directory base depth first, in name
// order, without following symbolic links: entries are described by
// Lstat, and a walk descends only into what Lstat reported as a directory,
// and only when the directory it then opens is that same one (user code
// may swap a directory for a link at any moment). The base itself may be
// reached through links inside the workspace. stop, when closed, ends the
// walk.
func walk(root *os.Root, base string, stop <-chan struct{}, fn walkFunc) error {
	fi, err := root.Stat(base)
	if err != nil {
		return pathError(base, err)
	}
	if !fi.IsDir() {
		return &opError{code: cove.CodeInvalid, msg: "not a directory: " + base}
	}
	return walkDir(root, base, fi, 0, stop, fn)
}

func walkDir(root *os.Root, rel string, want fs.FileInfo, depth int, stop <-chan struct{}, fn walkFunc) error {
	if depth >= maxWalkDepth {
		return invalidf("%s is more than %d directories deep", rel, maxWalkDepth)
	}
	names, err := readDirNames(root, rel, want)
	if err != nil {
		return err
	}
	for _, name := range names {
		if stopped(stop) {
			return errCanceled()
		}
		child := path.Join(rel, name)
		fi, err := root.Lstat(child)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since it was listed
		}
		if err != nil {
			return pathError(child, err)
		}
		var link string
		if fi.Mode()&fs.ModeSymlink != 0 {
			link, _ = root.Readlink(child)
		}
		err = fn(child, fi, link)
		if err == errSkipDir {
			continue
		}
		if err != nil {
			return err
		}
		if fi.IsDir() {
			if err := walkDir(root, child, fi, depth+1, stop, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// readDirNames lists the directory rel, which must still be the directory
// want, sorted by name. A directory that vanished or changed since it was
// described yields no names and no error.
func readDirNames(root *os.Root, rel string, want fs.FileInfo) ([]string, error) {
	// O_DIRECTORY and O_NONBLOCK: a FIFO swapped in cannot block the open.
	d, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, pathError(rel, err)
	}
	defer d.Close()
	if got, err := d.Stat(); err != nil || !os.SameFile(got, want) {
		return nil, nil
	}
	var names []string
	for {
		batch, err := d.Readdirnames(1024)
		names = append(names, batch...)
		if len(names) > maxDirEntries {
			return nil, invalidf("%s has more than %d entries", rel, maxDirEntries)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, pathError(rel, err)
		}
	}
	sort.Strings(names)
	return names, nil
}

// list describes the entries of a directory, or of its whole tree, sorted
// by path. More than max entries is an error.
func (w workspaceFS) list(p string, recursive bool, max int, stop <-chan struct{}) ([]*cove.FileInfo, error) {
	rel, err := cleanDirPath(p)
	if err != nil {
		return nil, err
	}
	var out []*cove.FileInfo
	names := 0
	err = w.run(func(root *os.Root) error {
		return walk(root, rel, stop, func(child string, fi fs.FileInfo, link string) error {
			if len(out) == max {
				return invalidf("%s has more than %d entries: list a subdirectory", rel, max)
			}
			if names += len(child) + len(link); names > maxListNameBytes {
				return invalidf("the names under %s come to more than %d MiB: list a subdirectory", rel, maxListNameBytes>>20)
			}
			out = append(out, fileInfo(child, fi, link))
			if !recursive && fi.IsDir() {
				return errSkipDir
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func (w workspaceFS) mkdir(p string) (*cove.FileInfo, error) {
	rel, err := cleanRelPath(p)
	if err != nil {
		return nil, err
	}
	var info *cove.FileInfo
	err = w.run(func(root *os.Root) error {
		if err := root.MkdirAll(rel, 0o755); err != nil {
			if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
				return &opError{code: cove.CodeConflict, msg: "a file is in the way of directory " + rel, err: err}
			}
			return pathError(rel, err)
		}
		fi, err := root.Stat(rel)
		if err != nil {
			return pathError(rel, err)
		}
		info = fileInfo(rel, fi, "")
		return nil
	})
	return info, err
}

// move renames from to to, creating to's parents. It never replaces what
// is at to.
func (w workspaceFS) move(from, to string) (*cove.FileInfo, error) {
	src, err := cleanRelPath(from)
	if err != nil {
		return nil, err
	}
	dst, err := cleanRelPath(to)
	if err != nil {
		return nil, err
	}
	switch {
	case src == ".":
		return nil, invalidf("cannot move the workspace itself")
	case dst == "." || dst == src:
		return nil, &opError{code: cove.CodeConflict, msg: "already exists: " + dst}
	case strings.HasPrefix(dst, src+"/"):
		return nil, invalidf("cannot move %s into itself", src)
	}
	var info *cove.FileInfo
	err = w.run(func(root *os.Root) error {
		before, err := lstatInfo(root, src)
		if err != nil {
			return err
		}
		if err := mkdirParents(root, dst); err != nil {
			return err
		}
		if err := renameNoReplace(root, src, dst); err != nil {
			return err
		}
		// The move is made: describe it even if dst cannot be looked at.
		if info, err = lstatInfo(root, dst); err != nil {
			info = before
			info.Path, info.Name = dst, path.Base(dst)
		}
		return nil
	})
	return info, err
}

// renameNoReplace renames from to to unless to exists. The parents are
// opened through the root, as directories (openDir); the rename itself
// then names one entry in each, which cannot lead anywhere else.
func renameNoReplace(root *os.Root, from, to string) error {
	fromDir, err := openDir(root, path.Dir(from), path.Dir(from), 0)
	if err != nil {
		return err
	}
	defer fromDir.Close()
	toDir, err := openDir(root, path.Dir(to), path.Dir(to), 0)
	if err != nil {
		return err
	}
	defer toDir.Close()
	err = unix.Renameat2(int(fromDir.Fd()), path.Base(from), int(toDir.Fd()), path.Base(to), unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EEXIST), errors.Is(err, syscall.ENOTEMPTY):
		return &opError{code: cove.CodeConflict, msg: "already exists: " + to, err: err}
	case errors.Is(err, syscall.EINVAL):
		// The file system lacks RENAME_NOREPLACE (moving a directory into
		// itself was ruled out before).
		if _, err := root.Lstat(to); err == nil {
			return &opError{code: cove.CodeConflict, msg: "already exists: " + to}
		}
		return pathError(from, root.Rename(from, to))
	case errors.Is(err, syscall.EXDEV):
		return &opError{code: cove.CodeInvalid, msg: fmt.Sprintf("cannot move %s to %s: the move crosses a file system or sandbox boundary", from, to), err: err}
	}
	return pathError(from, err)
}

// remove deletes rel; what does not exist is a not_found error. Once rel
// was found, its removal by someone else at the same moment is success.
func (w workspaceFS) remove(p string, recursive bool) error {
	rel, err := cleanRelPath(p)
	if err != nil {
		return err
	}
	if rel == "." {
		return invalidf("cannot remove the workspace itself")
	}
	return w.run(func(root *os.Root) error {
		fi, err := root.Lstat(rel)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return &opError{code: cove.CodeNotFound, msg: "no such file or directory: " + rel, err: err}
		}
		if err != nil {
			return pathError(rel, err)
		}
		if fi.IsDir() && recursive {
			return pathError(rel, root.RemoveAll(rel))
		}
		err = root.Remove(rel)
		switch {
		case err == nil, errors.Is(err, fs.ErrNotExist):
			return nil
		case errors.Is(err, syscall.ENOTEMPTY), errors.Is(err, syscall.EEXIST):
			return &opError{code: cove.CodeConflict, msg: "directory not empty: " + rel + " (remove it recursively)", err: err}
		}
		return pathError(rel, err)
	})
}

// chmod sets the permission bits of rel, or of what it links to.
func (w workspaceFS) chmod(p string, mode uint32) (*cove.FileInfo, error) {
	rel, err := cleanRelPath(p)
	if err != nil {
		return nil, err
	}
	if mode&^0o777 != 0 {
		return nil, invalidf("mode %#o is not allowed: give permission bits only (at most 0777, no setuid, setgid or sticky bit)", mode)
	}
	if rel == "." {
		return nil, chmodRootError()
	}
	var info *cove.FileInfo
	err = w.run(func(root *os.Root) error {
		fi, err := root.Stat(rel)
		if err != nil {
			return pathError(rel, err)
		}
		// A link to the workspace (or to "." itself) is the workspace.
		if top, err := root.Stat("."); err == nil && os.SameFile(fi, top) {
			return chmodRootError()
		}
		if err := root.Chmod(rel, fs.FileMode(mode)); err != nil {
			return pathError(rel, err)
		}
		// The change is made: describe it even if the new mode keeps
		// it from being looked at again.
		info = fileInfo(rel, fi, "")
		info.Mode = mode
		if fi, err := root.Stat(rel); err == nil {
			info = fileInfo(rel, fi, "")
		}
		return nil
	})
	return info, err
}

// chmodRootError refuses to change the workspace's own mode, which every
// file operation and the sandbox's programs need.
func chmodRootError() error {
	return invalidf("the workspace root's mode cannot be changed; chmod a file or directory inside it")
}

// search finds entries whose name matches req.Name, and lines of text
// files that contain req.Content.
func (w workspaceFS) search(req cove.SearchRequest, stop <-chan struct{}) (*cove.SearchResult, error) {
	rel, err := cleanDirPath(req.Path)
	if err != nil {
		return nil, err
	}
	if req.Name == "" && req.Content == "" {
		return nil, invalidf("give a name pattern, a content string or both")
	}
	if _, err := path.Match(req.Name, ""); err != nil {
		return nil, invalidf("bad name pattern %q: %v", req.Name, err)
	}
	if strings.ContainsAny(req.Content, "\n\x00") {
		return nil, invalidf("the content to search for must be one line of text")
	}
	if len(req.Content) > maxNeedleBytes {
		return nil, invalidf("the content to search for is longer than %d bytes", maxNeedleBytes)
	}
	limit := req.MaxResults
	if limit <= 0 || limit > maxSearchResults {
		limit = maxSearchResults
	}
	res := &cove.SearchResult{Matches: []cove.SearchMatch{}}
	errFull := errors.New("enough matches")
	add := func(m cove.SearchMatch) error {
		if len(res.Matches) == limit {
			res.Truncated = true
			return errFull
		}
		res.Matches = append(res.Matches, m)
		return nil
	}
	err = w.run(func(root *os.Root) error {
		return walk(root, rel, stop, func(child string, fi fs.FileInfo, _ string) error {
			if req.Name != "" {
				if ok, _ := path.Match(req.Name, path.Base(child)); !ok {
					return nil
				}
			}
			if req.Content == "" {
				return add(cove.SearchMatch{Path: child})
			}
			if !fi.Mode().IsRegular() || fi.Size() > maxTextBytes {
				return nil
			}
			return searchFile(root, child, fi, []byte(req.Content), add)
		})
	})
	if err != nil && err != errFull {
		return nil, err
	}
	sort.SliceStable(res.Matches, func(i, j int) bool {
		a, b := res.Matches[i], res.Matches[j]
		return a.Path < b.Path || a.Path == b.Path && a.Line < b.Line
	})
	return res, nil
}

// searchFile adds the lines of the text file rel that contain needle. A
// file that is not the one the walk saw, or that has a NUL byte in its
// first binarySniffBytes (binary), is skipped.
func searchFile(root *os.Root, rel string, want fs.FileInfo, needle []byte, add func(cove.SearchMatch) error) error {
	f, fi, err := openRegular(root, rel)
	if err != nil {
		// Vanished, swapped or unreadable: a search reports what it can.
		return nil
	}
	defer f.Close()
	if !os.SameFile(fi, want) || fi.Size() > maxTextBytes {
		return nil
	}
	sniff := make([]byte, binarySniffBytes)
	n, err := io.ReadFull(f, sniff)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil
	}
	sniff = sniff[:n]
	if bytes.IndexByte(sniff, 0) >= 0 {
		return nil
	}
	r := io.LimitReader(io.MultiReader(bytes.NewReader(sniff), f), maxTextBytes)
	return scanLines(r, needle, func(line int, text string) error {
		return add(cove.SearchMatch{Path: rel, Line: line, Text: text})
	})
}

// scanLines calls found for every line of r that contains needle, with
// the line's number and its first maxLineChars characters. Lines of any
// length take bounded memory: only the head of the current line is kept,
// and the last len(needle)-1 bytes seen carry matches across reads.
func scanLines(r io.Reader, needle []byte, found func(line int, text string) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	const maxHead = maxLineChars * utf8.UTFMax
	keep := len(needle) - 1
	var head, carry, cross []byte
	line, inLine, matched := 1, false, false
	for {
		chunk, err := br.ReadSlice('\n')
		end := len(chunk) > 0 && chunk[len(chunk)-1] == '\n'
		body := chunk
		if end {
			body = body[:len(body)-1]
		}
		inLine = inLine || len(chunk) > 0
		if room := maxHead - len(head); room > 0 {
			head = append(head, body[:min(room, len(body))]...)
		}
		if !matched {
			matched = bytes.Contains(body, needle)
			if !matched && len(carry) > 0 {
				cross = append(append(cross[:0], carry...), body[:min(keep, len(body))]...)
				matched = bytes.Contains(cross, needle)
			}
			carry = append(carry, body[max(0, len(body)-keep):]...)
			if len(carry) > keep {
				carry = append(carry[:0], carry[len(carry)-keep:]...)
			}
		}
		if end || (err != nil && err != bufio.ErrBufferFull && inLine) {
			if matched {
				if ferr := found(line, lineText(head)); ferr != nil {
					return ferr
				}
			}
			line++
			head, carry, inLine, matched = head[:0], carry[:0], false, false
		}
		if err != nil && err != bufio.ErrBufferFull {
			// The end of the file; a read error ends the search of
			// this file with what was found.
			return nil
		}
	}
}

// lineText is a line as search reports it: at most maxLineChars
// characters, without a carriage return.
func lineText(b []byte) string {
	b = bytes.TrimSuffix(b, []byte{'\r'})
	n := 0
	for i := range string(b) {
		if n == maxLineChars {
			return string(b[:i])
		}
		n++
	}
	return string(b)
}

// replace replaces every occurrence of req.Old with req.New in each file,
// all or nothing. Every file is checked (inside the workspace, a regular
// file, readable, small enough) and its new content written to a
// temporary file in its directory, with the same permission bits, before
// any file is replaced; then each temporary file takes its file's place in
// one rename. An error in the first step removes the temporary files and
// leaves every file as it was. A file without an occurrence is left
// alone; a path given twice is edited once.
func (w workspaceFS) replace(req cove.ReplaceRequest, stop <-chan struct{}) ([]*cove.ReplaceResult, error) {
	if req.Old == "" {
		return nil, invalidf("give the text to replace")
	}
	if len(req.Paths) == 0 {
		return nil, invalidf("give the files to replace in")
	}
	if len(req.Paths) > maxReplacePaths {
		return nil, invalidf("%d files is more than %d per request", len(req.Paths), maxReplacePaths)
	}
	rels := make([]string, len(req.Paths))
	for i, p := range req.Paths {
		rel, err := cleanRelPath(p)
		if err != nil {
			return nil, err
		}
		rels[i] = rel
	}
	var out []*cove.ReplaceResult
	err := w.run(func(root *os.Root) error {
		type edit struct {
			rel, tmp string
			n        int
		}
		var edits []edit
		done := map[string]int{}
		// The new contents are written into one staging directory, made
		// when the first file is to change.
		var st *stage
		getStage := func() (*stage, error) {
			var err error
			if st == nil {
				st, err = makeStage(root, "the replacement")
			}
			return st, err
		}
		cleanup := func() {
			if st != nil {
				st.abort()
			}
		}
		for _, rel := range rels {
			if _, ok := done[rel]; ok {
				continue
			}
			if stopped(stop) {
				cleanup()
				return errCanceled()
			}
			n, tmp, err := prepareReplace(root, getStage, rel, []byte(req.Old), []byte(req.New))
			if err != nil {
				cleanup()
				return err
			}
			done[rel] = n
			edits = append(edits, edit{rel: rel, tmp: tmp, n: n})
		}
		for i, e := range edits {
			if e.tmp == "" {
				continue
			}
			if err := st.place(e.tmp, e.rel); err != nil {
				cleanup()
				if i == 0 {
					return pathError(e.rel, err)
				}
				return &opError{code: cove.CodeConflict, msg: fmt.Sprintf("%s changed while the replacement was put in place; the files before it in the request were edited", e.rel), err: err}
			}
		}
		cleanup()
		for _, rel := range rels {
			out = append(out, &cove.ReplaceResult{Path: rel, Replacements: done[rel]})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// prepareReplace checks rel, counts the occurrences of old in it and, if
// it is to change, writes its new content to a file in the staging
// directory that getStage gives, with its permission bits, and returns
// that file's name there.
func prepareReplace(root *os.Root, getStage func() (*stage, error), rel string, old, repl []byte) (int, string, error) {
	fi, err := root.Lstat(rel)
	if err != nil {
		return 0, "", pathError(rel, err)
	}
	switch {
	case fi.IsDir():
		return 0, "", invalidf("is a directory: %s", rel)
	case fi.Mode()&fs.ModeSymlink != 0:
		return 0, "", invalidf("%s is a symbolic link: replace in the file it points to", rel)
	case !fi.Mode().IsRegular():
		return 0, "", invalidf("not a regular file: %s", rel)
	case fi.Size() > maxTextBytes:
		return 0, "", invalidf("%s is %d bytes: replace edits files of at most %d bytes", rel, fi.Size(), maxTextBytes)
	}
	f, ofi, err := openRegular(root, rel)
	if err != nil {
		return 0, "", err
	}
	if !os.SameFile(fi, ofi) {
		f.Close()
		return 0, "", &opError{code: cove.CodeConflict, msg: "changed while it was read: " + rel}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxTextBytes+1))
	f.Close()
	if err != nil {
		return 0, "", pathError(rel, err)
	}
	if len(data) > maxTextBytes {
		return 0, "", invalidf("%s grew past %d bytes: replace edits files of at most %d bytes", rel, maxTextBytes, maxTextBytes)
	}
	n := bytes.Count(data, old)
	if n == 0 || bytes.Equal(old, repl) {
		return n, "", nil
	}
	st, err := getStage()
	if err != nil {
		return 0, "", err
	}
	tmp, err := writeTemp(st, rel, ofi.Mode().Perm(), func(w io.Writer) error {
		for {
			i := bytes.Index(data, old)
			if i < 0 {
				_, err := w.Write(data)
				return err
			}
			if _, err := w.Write(data[:i]); err != nil {
				return err
			}
			if _, err := w.Write(repl); err != nil {
				return err
			}
			data = data[i+len(old):]
		}
	})
	return n, tmp, err
}

// replaceFile writes a new file at rel through a staging directory,
// with permission bits mode, and renames it into place, making rel's
// parents first. On failure the staging directory is removed and rel is
// untouched; its parents are made only once the file is complete.
func replaceFile(root *os.Root, rel string, mode fs.FileMode, write func(io.Writer) error) error {
	st, err := makeStage(root, rel)
	if err != nil {
		return err
	}
	defer st.abort()
	tmp, err := writeTemp(st, rel, mode, write)
	if err != nil {
		return err
	}
	if err := mkdirParents(root, rel); err != nil {
		return err
	}
	return st.place(tmp, rel)
}

// writeTemp writes rel's new content, with permission bits mode, to a new
// file in the staging directory st and returns its name there. On failure
// nothing is left of it.
func writeTemp(st *stage, rel string, mode fs.FileMode, write func(io.Writer) error) (string, error) {
	f, tmp, err := st.createFile()
	if err != nil {
		return "", err
	}
	bw := bufio.NewWriterSize(f, chunkSize)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		st.root.Remove(tmp)
		return "", pathError(rel, err)
	}
	return tmp, nil
}

// uploadReader reads the body the host streams after a request:
// frameUpload frames up to a frameUploadEnd. A stream that ends before
// frameUploadEnd is an interrupted upload.
type uploadReader struct {
	r   io.Reader
	buf []byte
	err error
}

func (u *uploadReader) Read(p []byte) (int, error) {
	for len(u.buf) == 0 {
		if u.err != nil {
			return 0, u.err
		}
		typ, payload, err := readFrame(u.r)
		switch {
		case err != nil:
			u.err = &opError{code: cove.CodeUnavailable, msg: "the upload was interrupted", err: err}
		case typ == frameUpload:
			u.buf = payload
		case typ == frameUploadEnd:
			u.err = io.EOF
		default:
			u.err = invalidf("unexpected frame %q in an upload", typ)
		}
	}
	n := copy(p, u.buf)
	u.buf = u.buf[n:]
	return n, nil
}

// fileTarget checks the path and the permission bits of a file to be
// written, and returns its clean path relative to the workspace and its
// mode (0644 when none is given). With named, a refused mode's message
// names the file, as in an upload of several.
func fileTarget(p string, mode uint32, named bool) (string, fs.FileMode, error) {
	rel, err := cleanRelPath(p)
	if err != nil {
		return "", 0, err
	}
	if rel == "." {
		return "", 0, &opError{code: cove.CodeConflict, msg: "a directory is in the way: the workspace itself"}
	}
	if mode&^0o777 != 0 {
		of := ""
		if named {
			of = " of " + rel
		}
		return "", 0, invalidf("mode %#o%s is not allowed: give permission bits only (at most 0777, no setuid, setgid or sticky bit)", mode, of)
	}
	if mode == 0 {
		return rel, 0o644, nil
	}
	return rel, fs.FileMode(mode), nil
}

// writeStream writes body to a new file that replaces spec.Path once it is
// complete. Nothing is left behind if the body is larger than
// spec.MaxBytes or the upload fails.
func (w workspaceFS) writeStream(spec *WriteSpec, body io.Reader) (*cove.FileInfo, error) {
	rel, mode, err := fileTarget(spec.Path, spec.Mode, false)
	if err != nil {
		return nil, err
	}
	var info *cove.FileInfo
	err = w.run(func(root *os.Root) error {
		// The parents are checked now and made once the file is
		// complete (replaceFile): a failed write leaves none behind.
		if dir := path.Dir(rel); dir != "." {
			if _, err := checkDestDir(root, dir); err != nil {
				return err
			}
		}
		fi, err := root.Stat(rel)
		if err == nil && fi.IsDir() {
			return &opError{code: cove.CodeConflict, msg: "a directory is in the way: " + rel}
		}
		replacing := err == nil
		var total int64
		err = replaceFile(root, rel, mode, func(f io.Writer) error {
			buf := make([]byte, chunkSize)
			for {
				n, rerr := body.Read(buf)
				total += int64(n)
				if spec.MaxBytes > 0 && total > spec.MaxBytes {
					return overDiskLimit(rel, spec.MaxBytes, "")
				}
				if _, err := f.Write(buf[:n]); err != nil {
					return err
				}
				if rerr == io.EOF {
					return nil
				}
				if rerr != nil {
					return rerr
				}
			}
		})
		if err != nil {
			if errors.Is(err, syscall.EISDIR) {
				return &opError{code: cove.CodeConflict, msg: "a directory is in the way: " + rel, err: err}
			}
			if replacing && isDiskFull(err) {
				// Until the new copy is complete the old one stays, so
				// that a failed write leaves it as it was.
				return &opError{code: cove.CodeQuotaExceeded, msg: "no space left in the workspace: its disk limit is reached, and replacing " + rel + " takes room for both its copies until the new one is complete (delete files to free space, or " + largerDiskHint + ")", err: err}
			}
			return err
		}
		// The file is in place: describe it even if it cannot be looked
		// at (a directory above it changed at the same moment).
		if info, err = lstatInfo(root, rel); err != nil {
			info = &cove.FileInfo{Path: rel, Name: path.Base(rel), Size: total, Mode: uint32(mode), ModTime: time.Now().UTC()}
		}
		return nil
	})
	return info, err
}

// readStream sends the regular file p: a frameInfo, then its bytes in
// frameDownload frames. Flow control on the stream bounds what is in
// memory.
func (w workspaceFS) readStream(spec *ReadSpec, st io.Writer, stop <-chan struct{}) error {
	rel, err := cleanRelPath(spec.Path)
	if err != nil {
		return err
	}
	if spec.Offset < 0 || spec.Length < 0 {
		return cove.Errorf(cove.CodeInvalid, "a negative offset (%d) or length (%d)", spec.Offset, spec.Length)
	}
	return w.run(func(root *os.Root) error {
		f, fi, err := openRegular(root, rel)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := writeJSONFrame(st, frameInfo, fileInfo(rel, fi, "")); err != nil {
			return errCanceled()
		}
		var r io.Reader = f
		if spec.Offset > 0 {
			if _, err := f.Seek(spec.Offset, io.SeekStart); err != nil {
				return pathError(rel, err)
			}
		}
		if spec.Length > 0 {
			r = io.LimitReader(f, spec.Length)
		}
		buf := make([]byte, chunkSize)
		for {
			n, rerr := r.Read(buf)
			if n > 0 {
				if stopped(stop) || writeFrame(st, frameDownload, buf[:n]) != nil {
					return errCanceled()
				}
			}
			if rerr == io.EOF {
				return nil
			}
			if rerr != nil {
				return pathError(rel, rerr)
			}
		}
	})
}

// downloadWriter sends what is written to it in frameDownload frames.
type downloadWriter struct{ w io.Writer }

func (d downloadWriter) Write(p []byte) (int, error) {
	for off := 0; off < len(p); off += chunkSize {
		if err := writeFrame(d.w, frameDownload, p[off:min(off+chunkSize, len(p))]); err != nil {
			return off, errCanceled()
		}
	}
	return len(p), nil
}
