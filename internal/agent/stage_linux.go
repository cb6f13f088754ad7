package agent

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
)

// Uploads of several entries (a tar archive, the files of a multipart
// upload) are all or nothing: they are written into a staging directory
// and moved into place only once the whole upload was read and found
// valid. A failed upload leaves the destination as it was. A file written
// whole (a streamed write, a replace) is written into a staging directory
// too and renamed into place once complete. The staging directories are
// hidden, at the workspace root (the same file system, so that the moves
// are renames, and inside the disk limit), removed when the upload ends
// and, should the sandbox stop or the agent die first, by a reset or by
// the next boot (removeStaleStages), which find them by name there
// without walking the workspace.

// stagePrefix begins the names of staging directories; stageHexLen
// hexadecimal digits follow it (isStageName).
const (
	stagePrefix = ".cove-upload-"
	stageHexLen = 16
)

// isStageName reports whether name is a staging directory's, as makeStage
// names them: a user's own file may begin with the prefix, but is not
// followed by exactly stageHexLen lower-case hexadecimal digits in
// practice.
func isStageName(name string) bool {
	hex, ok := strings.CutPrefix(name, stagePrefix)
	if !ok || len(hex) != stageHexLen {
		return false
	}
	for _, c := range hex {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// stage is an upload being staged for the directory dest.
type stage struct {
	ws   *os.Root // the workspace
	name string   // the staging directory, relative to the workspace
	root *os.Root // opened at name: where the upload is written
	dir  *os.File // the staging directory itself, which root is at
	n    int      // files made by createFile
	dest string   // where its content goes, relative to the workspace
	// destExists is whether dest was a directory when the upload began;
	// if not, the staging directory itself becomes dest.
	destExists bool
	// dirs are the modes and times of the upload's directories, given to
	// them once in place: a read-only directory could neither be filled
	// nor emptied by the moves.
	dirs []dirMeta
}

// newStage checks that dest is, or can become, a directory, and creates
// a staging directory for it.
func newStage(ws *os.Root, dest string) (*stage, error) {
	exists, err := checkDestDir(ws, dest)
	if err != nil {
		return nil, err
	}
	s, err := makeStage(ws, dest)
	if err != nil {
		return nil, err
	}
	s.dest, s.destExists = dest, exists
	return s, nil
}

// makeStage creates an empty staging directory at the workspace root for
// an upload to target (a path, or words), which its errors name.
func makeStage(ws *os.Root, target string) (*stage, error) {
	s := &stage{ws: ws}
	var err error
	for range 100 {
		var b [stageHexLen / 2]byte
		rand.Read(b[:])
		s.name = fmt.Sprintf("%s%x", stagePrefix, b)
		err = ws.Mkdir(s.name, 0o755)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return nil, pathError(target, fmt.Errorf("creating a staging directory for the upload: %w", err))
	}
	// The sandbox's program may have put something else at the name
	// already: O_NOFOLLOW and openDirRoot's O_DIRECTORY refuse it.
	if s.root, s.dir, err = openDirRoot(ws, s.name, s.name+" (the upload's staging directory)", syscall.O_NOFOLLOW); err != nil {
		ws.RemoveAll(s.name)
		return nil, err
	}
	return s, nil
}

// openDir opens the directory rel of root for reading (show names it for
// the user), following symbolic links inside root unless flags holds
// O_NOFOLLOW. O_DIRECTORY refuses anything but a directory before it is
// opened, so that a FIFO the sandbox's program swapped in at rel cannot
// keep the open waiting for a writer, forever; O_NONBLOCK would keep it
// from waiting even then.
func openDir(root *os.Root, rel, show string, flags int) (*os.File, error) {
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NONBLOCK|flags, 0)
	switch {
	case err == nil:
		return f, nil
	case errors.Is(err, syscall.ENOTDIR), flags&syscall.O_NOFOLLOW != 0 && errors.Is(err, syscall.ELOOP):
		return nil, &opError{code: cove.CodeConflict, msg: show + " is not a directory", err: err}
	}
	return nil, pathError(show, err)
}

// openDirRoot opens the directory rel as openDir does and returns a Root
// at exactly that directory, with the open directory. os.Root.OpenRoot
// would open rel's last component without O_DIRECTORY, which a FIFO
// swapped in would block; the Root is opened through /proc/self/fd
// instead, which leads to the directory already open, whatever is at
// rel by then.
func openDirRoot(root *os.Root, rel, show string, flags int) (*os.Root, *os.File, error) {
	d, err := openDir(root, rel, show, flags)
	if err != nil {
		return nil, nil, err
	}
	r, err := os.OpenRoot(fmt.Sprintf("/proc/self/fd/%d", d.Fd()))
	if err != nil {
		d.Close()
		return nil, nil, pathError(show, err)
	}
	return r, d, nil
}

// createFile creates an empty file in the staging directory, readable and
// writable by its owner only, and returns it and its name there.
func (s *stage) createFile() (*os.File, string, error) {
	s.n++
	name := fmt.Sprintf("f%d", s.n)
	f, err := s.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, "", pathError(s.name, err)
	}
	return f, name, nil
}

// place renames the staged file name to rel in the workspace, replacing
// what is there unless it is a directory. The rename starts from the
// staging directory that was opened, and names one entry in rel's parent,
// opened through the workspace root.
func (s *stage) place(name, rel string) error {
	dir, err := openDir(s.ws, path.Dir(rel), path.Dir(rel), 0)
	if err != nil {
		return err
	}
	defer dir.Close()
	return pathError(rel, unix.Renameat(int(s.dir.Fd()), name, int(dir.Fd()), path.Base(rel)))
}

// checkDestDir reports whether dest is a directory, or else that nothing
// is in the way of creating it.
func checkDestDir(ws *os.Root, dest string) (bool, error) {
	fi, err := ws.Stat(dest)
	switch {
	case err == nil && fi.IsDir():
		return true, nil
	case err == nil || errors.Is(err, syscall.ENOTDIR):
		for d := dest; d != "."; d = path.Dir(d) {
			if fi, err := ws.Stat(d); err == nil && !fi.IsDir() {
				return false, &opError{code: cove.CodeConflict, msg: "a file is in the way of directory " + d}
			}
		}
		return false, &opError{code: cove.CodeConflict, msg: "a file is in the way of directory " + dest}
	case !errors.Is(err, fs.ErrNotExist):
		return false, pathError(dest, err)
	}
	for d := path.Dir(dest); d != "."; d = path.Dir(d) {
		fi, err := ws.Stat(d)
		switch {
		case err == nil && fi.IsDir():
			return false, nil
		case err == nil:
			return false, &opError{code: cove.CodeConflict, msg: "a file is in the way of directory " + d}
		case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
			return false, pathError(d, err)
		}
	}
	return false, nil
}

// show names an entry of the upload for the user, relative to the
// workspace.
func (s *stage) show(name string) string { return path.Join(s.dest, name) }

// abort removes the staging directory and what it holds.
func (s *stage) abort() {
	s.root.Close()
	s.dir.Close()
	s.ws.RemoveAll(s.name)
}

// commit moves the staged entries into dest: an entry that is not there
// yet is moved whole, a directory that is there is merged, and a file,
// link or empty slot is replaced. Everything that could refuse the move
// (a file where a directory goes or the reverse, a symbolic link where a
// directory goes) is checked first, so that a refused upload changes
// nothing. Only user code changing dest at the same moment can make the
// moves themselves fail midway; the error then says so.
func (s *stage) commit() error {
	defer s.abort()
	if !s.destExists {
		if err := mkdirParents(s.ws, s.dest); err != nil {
			return err
		}
		if err := renameNoReplace(s.ws, s.name, s.dest); err != nil {
			return err
		}
		s.applyDirMeta(s.ws, s.dest)
		return nil
	}
	dest, dir, err := openDirRoot(s.ws, s.dest, s.dest, 0)
	if err != nil {
		return err
	}
	defer dir.Close()
	defer dest.Close()
	if err := s.check(dest, ".", 0); err != nil {
		return err
	}
	if err := s.move(dest, ".", 0); err != nil {
		var oe *opError
		if errors.As(err, &oe) {
			oe.msg += " (it changed while the upload was put in place: part of the upload is in place)"
			return oe
		}
		return err
	}
	s.applyDirMeta(dest, ".")
	return nil
}

// applyDirMeta gives the upload's directories, now under base in root,
// their modes and times, deepest first. This is best effort: they belong
// to the user, who may change them anyway, and the upload is in place.
func (s *stage) applyDirMeta(root *os.Root, base string) {
	for i := len(s.dirs) - 1; i >= 0; i-- {
		d := s.dirs[i]
		p := path.Join(base, d.name)
		_ = root.Chmod(p, d.mode)
		_ = root.Chtimes(p, d.mtime, d.mtime)
	}
}

// stagedNames lists the staging directory dir.
func (s *stage) stagedNames(dir string) ([]string, error) {
	fi, err := s.root.Lstat(dir)
	if err != nil {
		return nil, pathError(s.show(dir), err)
	}
	return readDirNames(s.root, dir, fi)
}

// check finds what would refuse the staged entries of dir in dest.
func (s *stage) check(dest *os.Root, dir string, depth int) error {
	if depth >= maxWalkDepth {
		return invalidf("%s is more than %d directories deep", s.show(dir), maxWalkDepth)
	}
	names, err := s.stagedNames(dir)
	if err != nil {
		return err
	}
	for _, name := range names {
		child := path.Join(dir, name)
		sfi, err := s.root.Lstat(child)
		if err != nil {
			return pathError(s.show(child), err)
		}
		dfi, err := dest.Lstat(child)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return pathError(s.show(child), err)
		}
		switch {
		case sfi.IsDir() && dfi.IsDir():
			if err := s.check(dest, child, depth+1); err != nil {
				return err
			}
		case sfi.IsDir() && dfi.Mode()&fs.ModeSymlink != 0:
			return invalidf("%s is a symbolic link: an upload does not put files inside links (upload into the directory it points to)", s.show(child))
		case sfi.IsDir():
			return &opError{code: cove.CodeConflict, msg: "a file is in the way of directory " + s.show(child)}
		case dfi.IsDir():
			return &opError{code: cove.CodeConflict, msg: "a directory is in the way of " + s.show(child)}
		}
	}
	return nil
}

// move moves the staged entries of dir into dest.
func (s *stage) move(dest *os.Root, dir string, depth int) error {
	if depth >= maxWalkDepth {
		return invalidf("%s is more than %d directories deep", s.show(dir), maxWalkDepth)
	}
	names, err := s.stagedNames(dir)
	if err != nil {
		return err
	}
	from, err := openDir(s.root, dir, s.show(dir), syscall.O_NOFOLLOW)
	if err != nil {
		return err
	}
	defer from.Close()
	to, err := openDir(dest, dir, s.show(dir), 0)
	if err != nil {
		return err
	}
	defer to.Close()
	for _, name := range names {
		child := path.Join(dir, name)
		sfi, err := s.root.Lstat(child)
		if err != nil {
			return pathError(s.show(child), err)
		}
		dfi, err := dest.Lstat(child)
		var flags uint
		switch {
		case errors.Is(err, fs.ErrNotExist):
			flags = unix.RENAME_NOREPLACE
		case err != nil:
			return pathError(s.show(child), err)
		case sfi.IsDir() && dfi.IsDir():
			if err := s.move(dest, child, depth+1); err != nil {
				return err
			}
			continue
		case sfi.IsDir() || dfi.IsDir():
			return &opError{code: cove.CodeConflict, msg: "something else is now in the way of " + s.show(child)}
		}
		err = unix.Renameat2(int(from.Fd()), name, int(to.Fd()), name, flags)
		if errors.Is(err, syscall.EEXIST) {
			return &opError{code: cove.CodeConflict, msg: "something else is now in the way of " + s.show(child), err: err}
		}
		if err != nil {
			return pathError(s.show(child), err)
		}
	}
	return nil
}

// uploadFiles writes the files of a multipart upload, which body carries,
// all or nothing: into a staging directory, then into place once every
// file was received and found valid. It describes the files written, in
// the order they came (a path sent twice: its last content, once).
func (w workspaceFS) uploadFiles(spec *UploadSpec, body *filesReader) ([]*cove.FileInfo, error) {
	maxFiles := spec.MaxFiles
	if maxFiles <= 0 {
		maxFiles = defaultArchiveMaxFiles
	}
	var out []*cove.FileInfo
	err := w.run(func(ws *os.Root) error {
		st, err := newStage(ws, ".")
		if err != nil {
			return err
		}
		infos, err := stageFiles(st, spec.MaxBytes, maxFiles, body)
		if err != nil {
			st.abort()
			return err
		}
		if err := st.commit(); err != nil {
			return err
		}
		out = infos
		return nil
	})
	return out, err
}

// stageFiles writes the files of body into the staging directory.
func stageFiles(st *stage, maxBytes int64, maxFiles int, body *filesReader) ([]*cove.FileInfo, error) {
	var order []string
	infos := map[string]*cove.FileInfo{}
	var total int64
	buf := make([]byte, chunkSize)
	for {
		h, err := body.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		rel, mode, err := fileTarget(h.Path, h.Mode, true)
		if err != nil {
			return nil, err
		}
		if infos[rel] == nil {
			if len(order) == maxFiles {
				return nil, invalidf("the upload has more than %d files", maxFiles)
			}
			order = append(order, rel)
		}
		if err := mkdirParents(st.root, rel); err != nil {
			return nil, err
		}
		if fi, err := st.root.Lstat(rel); err == nil {
			if fi.IsDir() {
				return nil, &opError{code: cove.CodeConflict, msg: "a directory is in the way: " + rel + " (the upload holds files inside it)"}
			}
			if err := st.root.Remove(rel); err != nil {
				return nil, pathError(rel, err)
			}
		}
		f, err := st.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, pathError(rel, err)
		}
		for {
			n, rerr := body.Read(buf)
			total += int64(n)
			if maxBytes > 0 && total > maxBytes {
				f.Close()
				return nil, overDiskLimit("the upload", maxBytes, rel)
			}
			if _, err := f.Write(buf[:n]); err != nil {
				f.Close()
				return nil, pathError(rel, err)
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				f.Close()
				return nil, rerr
			}
		}
		err = f.Chmod(mode)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, pathError(rel, err)
		}
		fi, err := st.root.Lstat(rel)
		if err != nil {
			return nil, pathError(rel, err)
		}
		infos[rel] = fileInfo(rel, fi, "")
	}
	out := make([]*cove.FileInfo, len(order))
	for i, rel := range order {
		out[i] = infos[rel]
	}
	return out, nil
}

// filesReader reads the body of a multipart upload: for each file a
// frameUploadFile (its uploadHeader) and frameUpload frames of its
// content, then a frameUploadEnd. A stream that ends before the
// frameUploadEnd is an interrupted upload.
type filesReader struct {
	r   io.Reader
	buf []byte
	hdr *uploadHeader // the next file's header, read but not yet taken
	end bool          // the frameUploadEnd was read
	err error
}

// fill reads one frame.
func (f *filesReader) fill() {
	typ, payload, err := readFrame(f.r)
	switch {
	case err != nil:
		f.err = &opError{code: cove.CodeUnavailable, msg: "the upload was interrupted", err: err}
	case typ == frameUpload:
		f.buf = payload
	case typ == frameUploadFile:
		var h uploadHeader
		if err := json.Unmarshal(payload, &h); err != nil {
			f.err = invalidf("malformed file header in an upload: %v", err)
			return
		}
		f.hdr = &h
	case typ == frameUploadEnd:
		f.end = true
	default:
		f.err = invalidf("unexpected frame %q in an upload", typ)
	}
}

// next skips what is left of the current file and returns the next
// file's header, or io.EOF after the last.
func (f *filesReader) next() (*uploadHeader, error) {
	f.buf = nil
	for f.hdr == nil {
		switch {
		case f.err != nil:
			return nil, f.err
		case f.end:
			return nil, io.EOF
		}
		f.fill()
		f.buf = nil
	}
	h := f.hdr
	f.hdr = nil
	return h, nil
}

// Read reads the current file's content.
func (f *filesReader) Read(p []byte) (int, error) {
	for len(f.buf) == 0 {
		switch {
		case f.err != nil:
			return 0, f.err
		case f.hdr != nil || f.end:
			return 0, io.EOF
		}
		f.fill()
	}
	n := copy(p, f.buf)
	f.buf = f.buf[n:]
	return n, nil
}
