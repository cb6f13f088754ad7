package agent

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
)

// maxArchiveTrailer is how much data may follow the end of an uploaded
// archive (tar pads to its record size); more is refused.
const maxArchiveTrailer = 1 << 20

// archiveOut packs spec.Path, a directory or a single file, as a tar or
// zip archive and streams it: a frameInfo describing the path, then the
// archive in frameDownload frames. Symbolic links are stored as links and
// never followed; FIFOs, sockets and devices are left out. In a tar
// archive, a file met again under another name (a hard link) is a link
// entry to the name it was first archived as. The file content an archive
// carries is bounded (see archiveBound; spec.MaxBytes, if the host gives
// it, is the workspace's disk limit): an archive that would carry more is
// refused before it begins, or, if the tree grew meanwhile, cut short
// with the error.
func (w workspaceFS) archiveOut(spec *ArchiveSpec, st io.Writer, stop <-chan struct{}) error {
	rel, err := cleanDirPath(spec.Path)
	if err != nil {
		return err
	}
	if spec.Format != "tar" && spec.Format != "zip" {
		return invalidf("unknown archive format %q: use tar or zip", spec.Format)
	}
	return w.run(func(root *os.Root) error {
		fi, err := root.Stat(rel)
		if err != nil {
			return pathError(rel, err)
		}
		if !fi.IsDir() && !fi.Mode().IsRegular() {
			return invalidf("not a regular file or directory: %s", rel)
		}
		// What cannot be read, and content past the bound, are found
		// before the first byte is sent: once the archive streams, an
		// error can only cut it short.
		bound := archiveBound(spec)
		planned := newArchiveContent(rel, spec.Format, bound)
		if err := checkReadable(root, rel, fi, planned, stop); err != nil {
			return err
		}
		if planned.over() {
			return planned.tooLarge()
		}
		content := newArchiveContent(rel, spec.Format, bound)
		if err := writeJSONFrame(st, frameInfo, fileInfo(rel, fi, "")); err != nil {
			return errCanceled()
		}
		bw := bufio.NewWriterSize(downloadWriter{st}, chunkSize)
		var aw archiveWriter
		if spec.Format == "zip" {
			aw = &zipWriter{zw: zip.NewWriter(bw)}
		} else {
			aw = &tarWriter{tw: tar.NewWriter(bw)}
		}
		if fi.IsDir() {
			err = walk(root, rel, stop, func(child string, cfi fs.FileInfo, link string) error {
				return addToArchive(aw, content, root, child, entryIn(rel, child), cfi, link)
			})
		} else {
			err = addToArchive(aw, content, root, rel, path.Base(rel), fi, "")
		}
		if err != nil {
			return err
		}
		if err := aw.Close(); err != nil {
			return pathError(rel, err)
		}
		if err := bw.Flush(); err != nil {
			return errCanceled()
		}
		return nil
	})
}

// entryIn is the name in the archive of the directory rel of its entry
// child.
func entryIn(rel, child string) string {
	if rel == "." {
		return child
	}
	return strings.TrimPrefix(child, rel+"/")
}

// archiveHint is the other way out of an unreadable file in an archive.
const archiveHint = "or leave it out"

// checkReadable checks that the file rel, or every file and directory of
// the tree rel, can be read: an archive cannot hold what cannot be read.
// It counts the files' content in content.
func checkReadable(root *os.Root, rel string, fi fs.FileInfo, content *archiveContent, stop <-chan struct{}) error {
	if !fi.IsDir() {
		f, ofi, err := openRegular(root, rel)
		if err != nil {
			return archiveReadError(root, rel, err)
		}
		content.add(path.Base(rel), ofi)
		return f.Close()
	}
	if err := canList(root, rel); err != nil {
		return err
	}
	return walk(root, rel, stop, func(child string, cfi fs.FileInfo, _ string) error {
		switch {
		case cfi.IsDir():
			return canList(root, child)
		case cfi.Mode().IsRegular():
			f, ofi, err := openRegular(root, child)
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed since it was listed
			}
			if err != nil {
				return archiveReadError(root, child, err)
			}
			f.Close()
			content.add(entryIn(rel, child), ofi)
		}
		return nil
	})
}

// canList checks that the directory rel can be listed and its entries
// looked at.
func canList(root *os.Root, rel string) error {
	d, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NONBLOCK, 0)
	var names []string
	if err == nil {
		names, err = d.Readdirnames(1)
		d.Close()
		if err == io.EOF {
			err = nil
		}
	}
	if err == nil && len(names) > 0 {
		// Search permission: the entries can be looked at.
		_, err = root.Lstat(path.Join(rel, names[0]))
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
		return archiveReadError(root, rel, err)
	}
	return nil
}

// archiveReadError words why rel cannot go into an archive.
func archiveReadError(root *os.Root, rel string, err error) error {
	var oe *opError
	if errors.As(err, &oe) && !errors.Is(err, syscall.EACCES) && !errors.Is(err, syscall.EPERM) {
		return err
	}
	return unreadable(root, rel, err, archiveHint)
}

// addToArchive adds the entry rel, found by a walk, as name, counting a
// file's content in content.
func addToArchive(aw archiveWriter, content *archiveContent, root *os.Root, rel, name string, fi fs.FileInfo, link string) error {
	var err error
	switch {
	case fi.IsDir():
		err = aw.dir(name, fi)
	case fi.Mode()&fs.ModeSymlink != 0:
		err = aw.symlink(name, fi, link)
	case fi.Mode().IsRegular():
		f, ofi, oerr := openRegular(root, rel)
		if oerr != nil {
			if errors.Is(oerr, fs.ErrNotExist) {
				return nil // removed since it was listed
			}
			return oerr
		}
		defer f.Close()
		if !os.SameFile(fi, ofi) {
			return nil // replaced since it was listed
		}
		if first := content.add(name, ofi); first != "" {
			err = aw.hardLink(name, ofi, first)
			break
		}
		if content.over() {
			// The tree grew since it was checked.
			return content.tooLarge()
		}
		err = aw.file(name, ofi, f)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return &opError{code: cove.CodeConflict, msg: "changed while it was archived: " + rel, err: err}
		}
	default:
		return nil // FIFOs, sockets and devices have no content to carry
	}
	if err != nil {
		return pathError(rel, err)
	}
	return nil
}

// Bounds of a download's archive. Hard links, sparse files and files
// that share their data (reflinks) cost little or nothing against the
// workspace's disk limit, yet each carries its full size in an archive:
// unbounded, a sandbox with a disk of 10 MiB makes a download of
// gigabytes, a disk-filling bomb for whoever downloads it.
const (
	// archiveSlack is what an archive may carry beyond twice the disk
	// limit, for the holes of a full workspace's files.
	archiveSlack = 64 << 20
	// minArchiveBound is the least bound when the disk limit is taken
	// from the agent's file size limit, which is lower than the disk
	// limit when the sandbox has a smaller file limit of its own.
	minArchiveBound = 1 << 30
	// maxArchiveBound is the bound when no limit is known.
	maxArchiveBound = 64 << 30
	// maxLinkNameBytes bounds the names remembered to find hard links,
	// which the sandbox chooses; a file with more links past it is
	// archived in full again, and counted again.
	maxLinkNameBytes = 16 << 20
)

// archiveBound is the most file content a download's archive may carry:
// twice the workspace's disk limit and a little more. A workspace's files
// fit in its disk limit, so only a tree whose content takes far more
// room out of the workspace than in it (sparse files, hard links in a
// zip archive, cloned files) reaches it. The disk limit is spec.MaxBytes
// when the host gives it; else the agent's own RLIMIT_FSIZE, which the
// host sets to the sandbox's file size limit, the disk limit unless a
// smaller one was asked for (hence minArchiveBound); else none is known,
// and the bound is maxArchiveBound.
func archiveBound(spec *ArchiveSpec) int64 {
	twice := func(n int64) int64 {
		if n > (maxArchiveBound-archiveSlack)/2 {
			return maxArchiveBound
		}
		return 2*n + archiveSlack
	}
	if spec.MaxBytes > 0 {
		return twice(spec.MaxBytes)
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &rl); err == nil && rl.Cur != unix.RLIM_INFINITY && rl.Cur < maxArchiveBound {
		return max(twice(int64(rl.Cur)), minArchiveBound)
	}
	return maxArchiveBound
}

// archiveContent counts the file content an archive carries, against its
// bound. In a tar archive a file met again under another name (a hard
// link) is a link entry to its first name and carries nothing again; a
// zip archive has no hard links and carries the content under each name.
type archiveContent struct {
	rel   string // the archived path
	tar   bool
	bound int64
	// total is the content so far; once counts each file once, as a tar
	// archive would.
	total, once int64
	first       map[fileID]string // the first name of files with links
	nameBytes   int
}

// fileID tells files apart, whatever their names.
type fileID struct{ dev, ino uint64 }

func newArchiveContent(rel, format string, bound int64) *archiveContent {
	return &archiveContent{rel: rel, tar: format == "tar", bound: bound, first: map[fileID]string{}}
}

// add counts the regular file fi, archived as name. It returns the name
// the file was archived as before when the archive is to hold it as a
// hard link to that name, and "" when its content goes in (again).
func (c *archiveContent) add(name string, fi fs.FileInfo) string {
	st, _ := fi.Sys().(*syscall.Stat_t)
	if st != nil && st.Nlink > 1 {
		id := fileID{uint64(st.Dev), st.Ino}
		if first, ok := c.first[id]; ok {
			if c.tar {
				return first
			}
			c.total = addBytes(c.total, fi.Size())
			return ""
		}
		if c.nameBytes+len(name) <= maxLinkNameBytes {
			c.first[id] = name
			c.nameBytes += len(name)
		}
	}
	c.total = addBytes(c.total, fi.Size())
	c.once = addBytes(c.once, fi.Size())
	return ""
}

// addBytes adds a file's size to a total, which stays at its largest
// value rather than overflow (sparse files may each claim 8 EiB).
func addBytes(total, n int64) int64 {
	if n > math.MaxInt64-total {
		return math.MaxInt64
	}
	return total + n
}

// over reports whether the content counted is past the bound.
func (c *archiveContent) over() bool { return c.total > c.bound }

// tooLarge is the error of an archive whose content is past its bound.
func (c *archiveContent) tooLarge() error {
	what := c.rel
	if what == "." {
		what = "the workspace"
	}
	msg := fmt.Sprintf("the archive would hold more than %s: %s holds sparse or hard-linked files (or copies that share their data) that take far more room in an archive than on the sandbox's disk; download them one by one", cove.FormatBytes(c.bound), what)
	if !c.tar && c.once <= c.bound {
		msg += ", or as a tar archive, which holds each hard-linked file once"
	}
	return &opError{code: cove.CodeConflict, msg: msg}
}

// archiveWriter is a tar or zip writer.
type archiveWriter interface {
	dir(name string, fi fs.FileInfo) error
	symlink(name string, fi fs.FileInfo, target string) error
	// file writes exactly fi.Size() bytes of r, or fails with
	// io.ErrUnexpectedEOF if r has fewer.
	file(name string, fi fs.FileInfo, r io.Reader) error
	// hardLink writes name as a hard link to the file archived as
	// target (tar only: archiveContent gives zip none).
	hardLink(name string, fi fs.FileInfo, target string) error
	Close() error
}

type tarWriter struct{ tw *tar.Writer }

func (t *tarWriter) dir(name string, fi fs.FileInfo) error {
	return t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: int64(fi.Mode().Perm()), ModTime: fi.ModTime()})
}

func (t *tarWriter) symlink(name string, fi fs.FileInfo, target string) error {
	return t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: fi.ModTime()})
}

func (t *tarWriter) file(name string, fi fs.FileInfo, r io.Reader) error {
	if err := t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: fi.Size(), Mode: int64(fi.Mode().Perm()), ModTime: fi.ModTime()}); err != nil {
		return err
	}
	return copyExactly(t.tw, r, fi.Size())
}

func (t *tarWriter) hardLink(name string, fi fs.FileInfo, target string) error {
	return t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: int64(fi.Mode().Perm()), ModTime: fi.ModTime()})
}

func (t *tarWriter) Close() error { return t.tw.Close() }

type zipWriter struct{ zw *zip.Writer }

func (z *zipWriter) dir(name string, fi fs.FileInfo) error {
	h := &zip.FileHeader{Name: name + "/", Modified: fi.ModTime()}
	h.SetMode(fs.ModeDir | fi.Mode().Perm())
	_, err := z.zw.CreateHeader(h)
	return err
}

func (z *zipWriter) symlink(name string, fi fs.FileInfo, target string) error {
	h := &zip.FileHeader{Name: name, Method: zip.Store, Modified: fi.ModTime()}
	h.SetMode(fs.ModeSymlink | 0o777)
	w, err := z.zw.CreateHeader(h)
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, target)
	return err
}

func (z *zipWriter) file(name string, fi fs.FileInfo, r io.Reader) error {
	h := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: fi.ModTime()}
	h.SetMode(fi.Mode().Perm())
	w, err := z.zw.CreateHeader(h)
	if err != nil {
		return err
	}
	return copyExactly(w, r, fi.Size())
}

func (z *zipWriter) hardLink(name string, _ fs.FileInfo, _ string) error {
	return fmt.Errorf("a zip archive cannot hold the hard link %s", name)
}

func (z *zipWriter) Close() error { return z.zw.Close() }

// copyExactly copies n bytes; fewer is io.ErrUnexpectedEOF.
func copyExactly(w io.Writer, r io.Reader, n int64) error {
	got, err := io.CopyN(w, r, n)
	if got < n && (err == nil || err == io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// archiveIn extracts a tar archive, gzip-compressed or not, from body into
// the directory spec.Path, which is created. Entries are created as the
// sandbox user with permission bits only. It refuses, with an invalid
// error, absolute names, names with "..", symbolic and hard links that lead
// out of the directory, links inside symbolic links, and archives with
// more than spec.MaxFiles entries or more than spec.MaxBytes of content
// (a decompression bomb stops there). FIFOs and devices are skipped. The
// archive is extracted into a staging directory and moved into place only
// once all of it was extracted: an error leaves the destination as it
// was.
func (w workspaceFS) archiveIn(spec *ArchiveSpec, body io.Reader) error {
	rel, err := cleanDirPath(spec.Path)
	if err != nil {
		return err
	}
	x := &extractor{base: rel, maxBytes: spec.MaxBytes, maxFiles: spec.MaxFiles, diskLimit: spec.MaxBytes > 0}
	if x.maxBytes <= 0 {
		x.maxBytes = defaultArchiveMaxBytes
	}
	if x.maxFiles <= 0 {
		x.maxFiles = defaultArchiveMaxFiles
	}
	return w.run(func(root *os.Root) error {
		st, err := newStage(root, rel)
		if err != nil {
			return err
		}
		x.root = st.root
		if err := x.extract(body); err != nil {
			st.abort()
			return err
		}
		st.dirs = x.dirs
		return st.commit()
	})
}

// extractor extracts one archive into root, a staging directory; the
// modes of the directories it made are left to the caller (dirs).
type extractor struct {
	root     *os.Root
	base     string // the destination, relative to the workspace, for messages
	maxBytes int64
	maxFiles int
	// diskLimit is whether maxBytes is the workspace's disk limit, not
	// the default bound of an archive.
	diskLimit bool

	bytes int64
	files int
	dirs  []dirMeta
}

// dirMeta is a directory's metadata, applied once its content is in place
// (a read-only directory would refuse its own entries otherwise).
type dirMeta struct {
	name  string
	mode  fs.FileMode
	mtime time.Time
}

// show names an entry for the user, relative to the workspace.
func (x *extractor) show(name string) string { return path.Join(x.base, name) }

func (x *extractor) extract(body io.Reader) error {
	br := bufio.NewReaderSize(body, 64<<10)
	magic, _ := br.Peek(4)
	var r io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		gz, err := gzip.NewReader(br)
		if err != nil {
			return archiveError(err)
		}
		r = gz
	case bytes.HasPrefix(magic, []byte("PK\x03\x04")):
		return invalidf("zip archives cannot be uploaded: send a tar archive (gzip-compressed or not)")
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return archiveError(err)
		}
		if err := x.entry(hdr, tr); err != nil {
			return err
		}
	}
	// Drain what follows the archive up to the end of the upload, so that
	// the host finishes sending before it gets the answer.
	n, err := io.Copy(io.Discard, io.LimitReader(br, maxArchiveTrailer+1))
	if err != nil {
		return archiveError(err)
	}
	if n > maxArchiveTrailer {
		return invalidf("more than %d bytes follow the end of the archive", maxArchiveTrailer)
	}
	return nil
}

// archiveError words an error reading the archive; an interrupted upload
// stays what it is.
func archiveError(err error) error {
	var oe *opError
	if errors.As(err, &oe) {
		return err
	}
	return &opError{code: cove.CodeInvalid, msg: "not a valid tar archive: " + err.Error(), err: err}
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	x.files++
	if x.files > x.maxFiles {
		return invalidf("the archive has more than %d entries", x.maxFiles)
	}
	if hdr.Size > 0 {
		x.bytes += hdr.Size
		if x.bytes > x.maxBytes {
			if !x.diskLimit {
				return invalidf("the archive's content is larger than %s, the most an archive may hold", cove.FormatBytes(x.maxBytes))
			}
			return overDiskLimit("the archive's content", x.maxBytes, "")
		}
	}
	name, err := entryName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "." {
		return nil // the destination itself
	}
	mode := fs.FileMode(hdr.Mode) & 0o777
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.dir(name, mode, hdr.ModTime)
	case tar.TypeReg, tar.TypeGNUSparse, tar.TypeCont:
		return x.file(name, mode, hdr.ModTime, r)
	case tar.TypeSymlink:
		return x.symlink(name, hdr.Linkname)
	case tar.TypeLink:
		return x.hardLink(name, hdr.Linkname)
	}
	// FIFOs, devices and types this extractor does not know.
	return nil
}

// entryName checks and cleans an entry's name: relative, without "..".
func entryName(n string) (string, error) {
	switch {
	case n == "" || strings.ContainsRune(n, 0):
		return "", invalidf("the archive has an entry with an invalid name %q", n)
	case strings.HasPrefix(n, "/"):
		return "", invalidf("archive entry %q has an absolute name", n)
	}
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "", invalidf("archive entry %q leads out of the directory", n)
		}
	}
	return path.Clean(n), nil
}

func (x *extractor) dir(name string, mode fs.FileMode, mtime time.Time) error {
	if err := x.root.MkdirAll(name, 0o755); err != nil {
		if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
			return &opError{code: cove.CodeConflict, msg: "a file is in the way of directory " + x.show(name), err: err}
		}
		return pathError(x.show(name), err)
	}
	x.dirs = append(x.dirs, dirMeta{name: name, mode: mode, mtime: mtime})
	return nil
}

// prepare makes the parents of name and removes what is at name, unless
// it is a directory.
func (x *extractor) prepare(name string) error {
	if dir := path.Dir(name); dir != "." {
		if err := x.root.MkdirAll(dir, 0o755); err != nil {
			if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
				return &opError{code: cove.CodeConflict, msg: "a file is in the way of directory " + x.show(dir), err: err}
			}
			return pathError(x.show(dir), err)
		}
	}
	fi, err := x.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return pathError(x.show(name), err)
	}
	if fi.IsDir() {
		return &opError{code: cove.CodeConflict, msg: "a directory is in the way of archive entry " + x.show(name)}
	}
	if err := x.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return pathError(x.show(name), err)
	}
	return nil
}

// file creates name afresh (O_EXCL: never through a link that appeared at
// name) with the entry's content.
func (x *extractor) file(name string, mode fs.FileMode, mtime time.Time, r io.Reader) error {
	if err := x.prepare(name); err != nil {
		return err
	}
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return pathError(x.show(name), err)
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		var oe *opError
		if errors.As(err, &oe) {
			return err
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return archiveError(err)
		}
		return pathError(x.show(name), err)
	}
	_ = x.root.Chtimes(name, mtime, mtime) // best effort
	return nil
}

// symlink creates a link whose target stays inside the directory: not
// absolute, not climbing above it, and not itself inside a symbolic link,
// which would move where a relative target points.
func (x *extractor) symlink(name, target string) error {
	if target == "" || strings.ContainsRune(target, 0) {
		return invalidf("archive entry %q is a symbolic link with an invalid target", name)
	}
	if path.IsAbs(target) {
		return invalidf("archive entry %q is a symbolic link to the absolute path %q", name, target)
	}
	if to := path.Join(path.Dir(name), target); to == ".." || strings.HasPrefix(to, "../") {
		return invalidf("archive entry %q is a symbolic link to %q, out of the directory", name, target)
	}
	if err := x.prepare(name); err != nil {
		return err
	}
	for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
		fi, err := x.root.Lstat(dir)
		if err != nil {
			return pathError(x.show(dir), err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return invalidf("archive entry %q is inside the symbolic link %q", name, dir)
		}
	}
	if err := x.root.Symlink(target, name); err != nil {
		return pathError(x.show(name), err)
	}
	return nil
}

// hardLink links name to an earlier entry of the directory.
func (x *extractor) hardLink(name, target string) error {
	t, err := entryName(target)
	if err != nil || t == "." {
		return invalidf("archive entry %q is a hard link to %q, out of the directory", name, target)
	}
	if err := x.prepare(name); err != nil {
		return err
	}
	if err := x.root.Link(t, name); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return invalidf("archive entry %q is a hard link to %q, which is not an earlier entry of the archive", name, target)
		}
		return pathError(x.show(name), err)
	}
	return nil
}
