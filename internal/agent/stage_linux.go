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
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
)

// Uploads of several entries (a tar archive, the files of a multipart
// upload) are all or nothing: they are written into a staging directory
// and moved into place only once the whole upload was read and found
// valid. A failed upload leaves the destination as it was. The staging
// directory is hidden, in the workspace (the same file system, so that
// the moves are renames, and inside the disk limit), removed when the
// upload ends and, should the agent die first, by a reset.

// stagePrefix begins the names of staging directories.
const stagePrefix = ".cove-upload-"

// stage is an upload being staged for the directory dest.
type stage struct {
	ws   *os.Root // the workspace
	name string   // the staging directory, relative to the workspace
	root *os.Root // opened at name: where the upload is written
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
	s := &stage{ws: ws, dest: dest, destExists: exists}
	for range 100 {
		var b [8]byte
		rand.Read(b[:])
		s.name = fmt.Sprintf("%s%x", stagePrefix, b)
		err = ws.Mkdir(s.name, 0o755)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return nil, pathError(".", fmt.Errorf("creating a staging directory for the upload: %w", err))
	}
	if s.root, err = ws.OpenRoot(s.name); err != nil {
		ws.RemoveAll(s.name)
		return nil, pathError(".", err)
	}
	return s, nil
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
	dest, err := s.ws.OpenRoot(s.dest)
	if err != nil {
		return pathError(s.dest, err)
	}
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
	from, err := s.root.Open(dir)
	if err != nil {
		return pathError(s.show(dir), err)
	}
	defer from.Close()
	to, err := dest.Open(dir)
	if err != nil {
		return pathError(s.show(dir), err)
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
		rel, err := cleanRelPath(h.Path)
		if err != nil {
			return nil, err
		}
		if rel == "." {
			return nil, &opError{code: cove.CodeConflict, msg: "a directory is in the way: the workspace itself"}
		}
		if h.Mode&^0o777 != 0 {
			return nil, invalidf("mode %#o of %s is not allowed: give permission bits only (at most 0777, no setuid, setgid or sticky bit)", h.Mode, rel)
		}
		mode := fs.FileMode(h.Mode)
		if mode == 0 {
			mode = 0o644
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
				return nil, invalidf("the upload is larger than %s, the sandbox's disk limit (at %s)", cove.FormatBytes(maxBytes), rel)
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
