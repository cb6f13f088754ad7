package main

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
)

func newCpCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "cp SRC DST",
		Short: "Copy files and directories between a sandbox and this machine",
		Long: `Copy files and directories between a sandbox and this machine, like docker cp.

ID:PATH names a path in sandbox ID (relative to /workspace, or absolute under
it); anything else is local (write ./a:b for a local name with a colon).

A file is copied to DST, or into DST when DST is a directory or ends with /.
A directory is copied into DST when DST is an existing directory, else it
becomes DST; SRC/. copies the directory's contents. "-" as the local side is
standard input or output: a tar stream for a directory, the raw bytes for a
file (a tar stream from standard input is extracted when DST is a directory
or ends with /).

A copy into a sandbox is all or nothing: one that fails leaves the
workspace as it was. A file copied from standard input over an existing
file keeps that file's mode. A copy of a directory, either way, skips links
that point outside the directory (absolute ones, such as a virtualenv's,
and those that get out through another link), with a warning for each and
a count at the end, and still exits 0.`,
		Example: `  cove cp main.py 3f9a1c2b7d4e:
  cove cp ./project 3f9a1c2b7d4e:/workspace/
  cove cp 3f9a1c2b7d4e:out/report.csv .
  cove cp 3f9a1c2b7d4e:results ./results
  tar c src | cove cp - 3f9a1c2b7d4e:src/
  cove cp 3f9a1c2b7d4e:log.txt - | tail`,
		Args: exactArgs(2, "cp SRC DST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, dst := parseLocation(args[0]), parseLocation(args[1])
			if (src.id == "") == (dst.id == "") {
				return cove.Errorf(cove.CodeInvalid, "cp copies between a sandbox and this machine: write one side as ID:PATH and the other as a local path")
			}
			svc, err := e.remoteService(cmd.Context())
			if err != nil {
				return err
			}
			c := &copier{e: e, svc: svc, ctx: cmd.Context()}
			if dst.id != "" {
				return c.upload(src.path, dst.id, dst.path)
			}
			return c.download(src.id, src.path, dst.path)
		},
	}
}

// location is one side of cp: a path in sandbox id, or a local path when
// id is empty.
type location struct{ id, path string }

// parseLocation reads ID:PATH as a sandbox path; "-" and paths that start
// with / or . or hold no colon are local.
func parseLocation(s string) location {
	if s == "-" || strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") {
		return location{path: s}
	}
	id, p, ok := strings.Cut(s, ":")
	if !ok || id == "" {
		return location{path: s}
	}
	if p == "" {
		p = "."
	}
	return location{id: id, path: p}
}

// copier moves files between the local machine and a sandbox.
type copier struct {
	e   *env
	svc cove.Service
	ctx context.Context
}

// upload copies the local path (or standard input) to remote in sandbox id.
func (c *copier) upload(local, id, remote string) error {
	target, err := c.svc.StatFile(c.ctx, id, remote)
	if err != nil && cove.ErrorCode(err) != cove.CodeNotFound {
		return err
	}
	exists := err == nil
	intoDir := (exists && target.IsDir) || strings.HasSuffix(remote, "/")
	if local == "-" {
		if intoDir {
			return c.uploadTar(c.e.stdin, "standard input", 0, id, remote)
		}
		p := c.e.progress("standard input", 0)
		_, err := c.svc.WriteFile(c.ctx, id, remote, p.reader(c.e.stdin), 0)
		p.finish()
		return err
	}
	fi, err := os.Stat(local)
	if err != nil {
		return localError(err)
	}
	if fi.IsDir() {
		dest := remote
		if exists {
			if !target.IsDir {
				return cove.Errorf(cove.CodeConflict, "cannot copy the directory %s onto the file %s:%s", local, id, remote)
			}
			dest = path.Join(remote, filepath.Base(local))
		}
		size, err := treeSize(local)
		if err != nil {
			return localError(err)
		}
		pr, pw := io.Pipe()
		skips := &skipCount{warn: c.e.stderr}
		packed := make(chan struct{})
		go func() {
			pw.CloseWithError(writeTar(pw, local, skips))
			close(packed)
		}()
		err = c.uploadTar(pr, filepath.Base(local), size, id, dest)
		// Closing the reader ends a writeTar that still writes, so that
		// its count is final once it is done.
		pr.Close()
		<-packed
		if err != nil {
			return err
		}
		skips.summary(local)
		return nil
	}
	if !fi.Mode().IsRegular() {
		return cove.Errorf(cove.CodeInvalid, "%s is not a regular file or a directory", local)
	}
	dest := remote
	if intoDir {
		dest = path.Join(remote, filepath.Base(local))
	}
	f, err := os.Open(local)
	if err != nil {
		return localError(err)
	}
	defer f.Close()
	p := c.e.progress(filepath.Base(local), fi.Size())
	_, err = c.svc.WriteFile(c.ctx, id, dest, p.reader(f), uint32(fi.Mode().Perm()))
	p.finish()
	return err
}

// uploadTar extracts a tar stream into the directory dest of sandbox id.
// The upload creates dest and its parents itself, and only once the
// whole archive is in: a failed upload leaves the workspace as it was,
// which a directory made beforehand would not.
func (c *copier) uploadTar(r io.Reader, label string, size int64, id, dest string) error {
	p := c.e.progress(label, size)
	err := c.svc.UploadArchive(c.ctx, id, dest, p.reader(r))
	p.finish()
	return err
}

// download copies remote in sandbox id to the local path (or standard
// output).
func (c *copier) download(id, remote, local string) error {
	fi, err := c.svc.StatFile(c.ctx, id, remote)
	if err != nil {
		return err
	}
	st, statErr := os.Stat(local)
	localDir := statErr == nil && st.IsDir()
	if fi.IsDir {
		if statErr == nil && !localDir && local != "-" {
			return cove.Errorf(cove.CodeConflict, "cannot copy the directory %s:%s onto the file %s", id, remote, local)
		}
		skips := &skipCount{warn: c.e.stderr}
		if err := c.downloadDir(id, remote, local, localDir, skips); err != nil {
			return err
		}
		skips.summary(id + ":" + remote)
		return nil
	}
	rc, _, err := c.svc.ReadFile(c.ctx, id, remote)
	if err != nil {
		return err
	}
	defer rc.Close()
	p := c.e.progress(fi.Name, fi.Size)
	defer p.finish()
	if local == "-" {
		_, err := io.Copy(c.e.stdout, p.reader(rc))
		return err
	}
	dest := local
	if strings.HasSuffix(local, "/") && !localDir {
		return cove.Errorf(cove.CodeNotFound, "%s: no such directory", local)
	}
	if localDir {
		dest = filepath.Join(local, path.Base(remote))
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fs.FileMode(fi.Mode)&fs.ModePerm)
	if err != nil {
		return localError(err)
	}
	if _, err := io.Copy(f, p.reader(rc)); err != nil {
		f.Close()
		var pe *fs.PathError
		if errors.As(err, &pe) && pe.Path == dest {
			// This machine's side: the file could not be written.
			return localError(err)
		}
		return err
	}
	return localError(f.Close())
}

// downloadDir copies the directory remote in sandbox id to the local path
// (or standard output, as a tar stream): into it when it is a directory
// (localDir), else to that new name. Skipped entries are counted in skips.
func (c *copier) downloadDir(id, remote, local string, localDir bool, skips *skipCount) error {
	rc, err := c.svc.DownloadArchive(c.ctx, id, remote, "tar")
	if err != nil {
		return err
	}
	defer rc.Close()
	p := c.e.progress(path.Base(remote), 0)
	defer p.finish()
	if local == "-" {
		_, err := io.Copy(c.e.stdout, p.reader(rc))
		return err
	}
	dest := local
	if localDir {
		dest = filepath.Join(local, path.Base(remote))
	}
	// As cp -r does: the directory that receives the copy must exist.
	if err := os.Mkdir(dest, 0o755); errors.Is(err, fs.ErrNotExist) {
		return cove.Errorf(cove.CodeNotFound, "%s: no such directory", filepath.Dir(dest))
	} else if err != nil && !errors.Is(err, fs.ErrExist) {
		return localError(err)
	}
	return extractTar(p.reader(rc), dest, skips)
}

// localError describes a failure on this machine's side of a copy.
func localError(err error) error {
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		code := cove.CodeInvalid
		if errors.Is(pe.Err, fs.ErrNotExist) {
			code = cove.CodeNotFound
		}
		return cove.Errorf(code, "%s: %v", pe.Path, pe.Err)
	}
	return cove.Errorf(cove.CodeInvalid, "%v", err)
}

// treeSize adds up the sizes of the regular files under dir.
func treeSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}

// writeTar packs the tree under dir as a tar stream with names relative
// to dir: directories, regular files and symbolic links; anything else is
// skipped with a warning, and counted in skips.
func writeTar(w io.Writer, dir string, skips *skipCount) error {
	tw := tar.NewWriter(w)
	// The tree is read through a root only to follow its links, component
	// by component, when one is checked.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		skips.entries++
		var link string
		switch t := d.Type(); {
		case t.IsRegular(), t.IsDir():
		case t&fs.ModeSymlink != 0:
			if link, err = os.Readlink(p); err != nil {
				return err
			}
			// The sandbox refuses a link out of the directory (the whole
			// upload with it); leave it out, as a copy out does. One that
			// gets out only through another link passes the sandbox's
			// check of the text, and is left out all the same.
			why := linkOutside
			if !linkLeaves(filepath.ToSlash(rel), filepath.ToSlash(link)) {
				why = resolveLink(root, filepath.ToSlash(rel))
			}
			if why != linkInside {
				skips.skipLink(p, link, why)
				return nil
			}
		default:
			skips.skip("%s: not a file, directory or symbolic link", shown(p))
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			hdr.Name += "/"
		}
		// Ownership inside the sandbox is the sandbox's own.
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// linkLeaves reports whether a link at name (slash-separated, relative to
// the copied directory) to target points outside the directory, by its
// text alone: a target such as d/up/../../x that stays inside as text can
// still get out when d/up is itself a link, which resolveLink finds.
func linkLeaves(name, target string) bool {
	return path.IsAbs(target) || textLeaves(path.Join(path.Dir(name), target))
}

// textLeaves reports whether the cleaned slash path p starts above the
// directory it is relative to.
func textLeaves(p string) bool { return p == ".." || strings.HasPrefix(p, "../") }

// maxLinkFollows bounds the links one resolution follows, as the kernel's
// 40 does (ELOOP): a link that needs more, such as one of a loop, is left
// out, as where it leads cannot be told.
const maxLinkFollows = 40

// linkCheck is where a link was found to lead by resolveLink.
type linkCheck int

const (
	linkInside  linkCheck = iota
	linkOutside           // out of the directory, or unreadable on the way
	linkTooDeep           // through more than maxLinkFollows links
)

// skipLink warns that the link name -> target is left out, and why.
func (s *skipCount) skipLink(name, target string, why linkCheck) {
	if why == linkTooDeep {
		s.skip("the link %s -> %s: it leads through more than %d links, a loop perhaps", shown(name), shown(target), maxLinkFollows)
		return
	}
	s.skip("the link %s -> %s: it points outside the directory", shown(name), shown(target))
}

// resolveLink tells whether the path name (slash-separated, relative to
// root) ends up outside root when followed the way the kernel follows
// it: component by component, each link (the last component's included)
// replaced by its target, read from the tree itself. Checking the text
// is not enough: path.Join cancels up/.. while the kernel goes into up
// first, and when up is a link to a directory higher up, the .. after it
// climbs from there. A component that does not exist ends the walk, the
// rest taken as text, as it can only be created later by whoever uses the
// tree; anything that cannot be read counts as leaving.
func resolveLink(root *os.Root, name string) linkCheck {
	var at []string // the directories walked into, none of them a link
	pending := strings.Split(name, "/")
	follows := 0
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(at) == 0 {
				return linkOutside
			}
			at = at[:len(at)-1]
			continue
		}
		p := path.Join(append(at, c)...)
		fi, err := root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			if textLeaves(path.Join(append([]string{p}, pending...)...)) {
				return linkOutside
			}
			return linkInside
		}
		if err != nil {
			return linkOutside
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			at = append(at, c)
			continue
		}
		follows++
		if follows > maxLinkFollows {
			return linkTooDeep
		}
		target, err := root.Readlink(p)
		if err != nil || path.IsAbs(target) {
			return linkOutside
		}
		// The target is relative to the link's directory, where the walk
		// is; its components come before the rest.
		pending = append(strings.Split(target, "/"), pending...)
	}
	return linkInside
}

// extractTar unpacks a tar stream into dir. Everything is created through
// an os.Root, so no entry and no link can reach outside dir while it
// runs; links that point outside it (by their text, or once followed
// through the tree's other links, which the user's tools will do later),
// hard links to anything but a file this extraction wrote, and entries
// other than files, directories and links, are skipped with a warning,
// and counted in skips. Modes are the archive's less the umask, as tar
// gives them to a user other than root.
func extractTar(r io.Reader, dir string, skips *skipCount) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return localError(err)
	}
	defer root.Close()
	umask := processUmask()
	type dirMode struct {
		name string
		mode fs.FileMode
	}
	var dirs []dirMode
	type link struct{ name, target string }
	var links []link
	linkAt := map[string]int{} // a link's index in links, by name
	// The regular files this extraction wrote, by name: the only files a
	// hard link of the archive may lead to.
	written := map[string]fileID{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return archiveReadError(err)
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "/"))
		if name == "." {
			continue
		}
		skips.entries++
		if name == ".." || strings.HasPrefix(name, "../") {
			skips.skip("%q: it leaves the directory", hdr.Name)
			continue
		}
		mode := fs.FileMode(hdr.Mode) & fs.ModePerm
		if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
			return localError(err)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return localError(err)
			}
			dirs = append(dirs, dirMode{name, mode})
		case tar.TypeReg:
			if _, ok := written[name]; ok {
				// Written before, by an entry of the same name or as a
				// hard link: replaced, not written through.
				delete(written, name)
				if err := root.Remove(name); err != nil {
					return localError(err)
				}
			}
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
			if err != nil {
				return localError(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				var pe *fs.PathError
				if errors.As(err, &pe) {
					return localError(err)
				}
				return archiveReadError(err)
			}
			fi, err := f.Stat()
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return localError(err)
			}
			written[name] = idOf(fi)
		case tar.TypeLink:
			delete(written, name)
			target := path.Clean(strings.TrimPrefix(hdr.Linkname, "/"))
			first, ok := written[target]
			if !ok {
				skips.skip("the hard link %s to %s: it is not a file copied before it", shown(name), shown(hdr.Linkname))
				continue
			}
			if err := hardLink(root, target, name, first); err != nil {
				return err
			}
			written[name] = first
		case tar.TypeSymlink:
			if linkLeaves(name, hdr.Linkname) {
				skips.skipLink(name, hdr.Linkname, linkOutside)
				continue
			}
			// Made once every file and directory is in, so that nothing
			// of the archive is written through a link.
			if i, ok := linkAt[name]; ok {
				links[i].target = hdr.Linkname
				continue
			}
			linkAt[name] = len(links)
			links = append(links, link{name, hdr.Linkname})
		default:
			skips.skip("%s: not a file, directory or symbolic link", shown(name))
		}
	}
	for _, l := range links {
		root.Remove(l.name)
		if err := root.Symlink(l.target, l.name); err != nil {
			return localError(err)
		}
	}
	// A link whose text stays inside can still get out through another
	// link (d/up/../../x, with d/up a link higher up), whatever the order
	// of the two in the archive: each is followed only once all are in
	// place, and those that get out are all found before any is removed.
	type leavingLink struct {
		link
		why linkCheck
	}
	var leaving []leavingLink
	for _, l := range links {
		if why := resolveLink(root, l.name); why != linkInside {
			leaving = append(leaving, leavingLink{l, why})
		}
	}
	for _, l := range leaving {
		skips.skipLink(l.name, l.target, l.why)
		if err := root.Remove(l.name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return localError(err)
		}
	}
	// Directories get their own modes last, so that a read-only one could
	// still be filled. Chmod, unlike mkdir, ignores the umask.
	for _, d := range dirs {
		if err := root.Chmod(d.name, d.mode&^umask); err != nil {
			return localError(err)
		}
	}
	return nil
}

// archiveReadError words a failure to read the archive that is being
// extracted: the server's own error as it is, else the stream that broke.
func archiveReadError(err error) error {
	var ce *cove.Error
	if errors.As(err, &ce) {
		return err
	}
	return cove.Errorf(cove.CodeInternal, "reading the archive: %v", err)
}

// fileID tells files apart, whatever their names.
type fileID struct{ dev, ino uint64 }

func idOf(fi fs.FileInfo) fileID {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}
	}
	return fileID{uint64(st.Dev), st.Ino}
}

// hardLink makes name a hard link to target, the regular file first that
// this extraction wrote, or, where the file system refuses links, a copy
// of it. Whatever is at name, unless a directory, is replaced. The link
// is made only to that file: never to a link, nor to anything that took
// its place.
func hardLink(root *os.Root, target, name string, first fileID) error {
	changed := func() error {
		return cove.Errorf(cove.CodeConflict, "%s changed while it was copied, before the hard link %s to it", target, name)
	}
	if fi, err := root.Lstat(name); err == nil {
		if fi.IsDir() {
			return cove.Errorf(cove.CodeConflict, "%s: a directory is in the way of a hard link to %s", name, target)
		}
		if err := root.Remove(name); err != nil {
			return localError(err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return localError(err)
	}
	fi, err := root.Lstat(target)
	if err != nil || !fi.Mode().IsRegular() || idOf(fi) != first {
		return changed()
	}
	// linkat without AT_SYMLINK_FOLLOW: whatever took target's place
	// since it was checked is linked itself, not followed, and found
	// below.
	if err := root.Link(target, name); err == nil {
		if fi, err := root.Lstat(name); err != nil || idOf(fi) != first {
			root.Remove(name)
			return changed()
		}
		return nil
	}
	// No hard links here (a file system without them, too many links to
	// the file): a copy of the file, if it is still the one written.
	src, err := root.OpenFile(target, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return localError(err)
	}
	defer src.Close()
	if fi, err := src.Stat(); err != nil || idOf(fi) != first {
		return changed()
	}
	dst, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
	if err != nil {
		return localError(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return localError(err)
	}
	return localError(dst.Close())
}

// processUmask returns the process's umask, read from /proc/self/status
// so as not to change it; where that cannot be read, by setting it and
// setting it back, which is safe here as no other goroutine creates
// files meanwhile.
func processUmask() fs.FileMode {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Umask:"); ok {
				if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return fs.FileMode(m) & fs.ModePerm
				}
			}
		}
	}
	m := unix.Umask(0o022)
	unix.Umask(m)
	return fs.FileMode(m) & fs.ModePerm
}

// skipCount warns of each entry a directory's copy leaves out, and counts
// them and all the entries, for the line that ends such a copy. The copy
// still succeeds: what it skips (links that point outside the directory,
// FIFOs, devices) is left out on purpose, and copying again would skip it
// again.
type skipCount struct {
	warn    io.Writer
	entries int // the entries of the tree, the skipped ones included
	skipped int
}

// skip warns that an entry is left out, and why. Names in args are
// passed through shown.
func (s *skipCount) skip(format string, args ...any) {
	s.skipped++
	fmt.Fprintf(s.warn, "cove: skipping "+format+"\n", args...)
}

// summary says, after a copy of what that skipped entries, how many of
// its entries were copied: the warnings alone, one per entry, may scroll
// away, and a directory left empty looks like a copy that worked.
func (s *skipCount) summary(what string) {
	if s.skipped == 0 {
		return
	}
	rest := fmt.Sprintf("the %d skipped are listed above", s.skipped)
	if s.skipped == 1 {
		rest = "the one skipped is listed above"
	}
	fmt.Fprintf(s.warn, "cove: copied %d of the %d entries of %s: %s\n", s.entries-s.skipped, s.entries, what, rest)
}

// shown is a name as a warning prints it: quoted as strconv.Quote does
// when it holds a control character or bytes that are not UTF-8, so that
// a name chosen inside a sandbox cannot drive the terminal (set its
// title, clear it); plain otherwise. (Error messages are escaped where
// they are printed, by printable.)
func shown(name string) string {
	if !utf8.ValidString(name) || strings.ContainsFunc(name, isControl) {
		return strconv.Quote(name)
	}
	return name
}
