package agent

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
)

const workspaceDir = "/workspace"

var errBadPath = errors.New("invalid path")

// cleanRelPath turns a user path (relative to the workspace, or absolute
// under /workspace) into a clean relative path, or rejects it.
func cleanRelPath(p string) (string, error) {
	if p == "" || strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("%w %q: give a path inside the workspace", errBadPath, p)
	}
	if strings.HasPrefix(p, "/") {
		rel := strings.TrimPrefix(path.Clean(p), workspaceDir)
		if rel == path.Clean(p) || (rel != "" && rel[0] != '/') {
			if path.Clean(p) != p {
				return "", fmt.Errorf("%w %q: it is %s, outside %s", errBadPath, p, path.Clean(p), workspaceDir)
			}
			return "", fmt.Errorf("%w %q: absolute paths must be under %s", errBadPath, p, workspaceDir)
		}
		p = strings.TrimPrefix(rel, "/")
		if p == "" {
			p = "."
		}
	}
	c := path.Clean(p)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%w %q: it leaves the workspace", errBadPath, p)
	}
	return c, nil
}

// workspaceFS does file work in a workspace directory on behalf of the
// sandbox user. Every path goes through an os.Root opened at dir, so that
// neither ".." nor a symbolic link (absolute, or relative and climbing out)
// reaches outside it, and every operation runs with the user's file-system
// ids, so that permission checks are the user's and what it creates belongs
// to the user. The agent never touches the workspace with its own ids:
// user code can change the tree at any moment.
type workspaceFS struct {
	dir      string // workspaceDir inside a sandbox
	uid, gid int
}

// run calls fn on a thread whose file-system ids are the sandbox user's,
// with a root at the workspace. The thread's ids are restored before it is
// unlocked; if restoring fails the thread is not reused (it stays locked
// and exits with the goroutine).
func (w workspaceFS) run(fn func(root *os.Root) error) error {
	runtime.LockOSThread()
	err := setFSIDs(w.uid, w.gid)
	if err == nil {
		var root *os.Root
		root, err = os.OpenRoot(w.dir)
		if err == nil {
			err = fn(root)
			root.Close()
		} else {
			err = fmt.Errorf("opening the workspace: %w", err)
		}
	}
	if setFSIDs(0, 0) == nil {
		runtime.UnlockOSThread()
	}
	return err
}

// setFSIDs sets the calling thread's file-system ids and checks that they
// took: setfsuid reports no error when the caller may not make the change,
// and running as the agent's own ids by mistake is what this guards
// against.
func setFSIDs(uid, gid int) error {
	// Neither call can fail as a system call; the read-back below is the
	// check.
	_, _ = unix.SetfsgidRetGid(gid)
	_, _ = unix.SetfsuidRetUid(uid)
	curGID, _ := unix.SetfsgidRetGid(-1)
	curUID, _ := unix.SetfsuidRetUid(-1)
	if curUID != uid || curGID != gid {
		return fmt.Errorf("switching file-system ids to %d:%d: got %d:%d", uid, gid, curUID, curGID)
	}
	return nil
}

// writeFiles writes files into the sandbox's workspace as the sandbox user.
func writeFiles(files []File, uid, gid int) error {
	return workspaceFS{dir: workspaceDir, uid: uid, gid: gid}.writeFiles(files)
}

// writeFiles writes small files whole, creating parents. An existing file
// is truncated and rewritten in place. Every path is checked before a
// file is written, so that a bad one changes nothing.
func (w workspaceFS) writeFiles(files []File) error {
	rels := make([]string, len(files))
	for i, f := range files {
		rel, err := cleanRelPath(f.Path)
		if err != nil {
			return err
		}
		rels[i] = rel
	}
	return w.run(func(root *os.Root) error {
		for i, f := range files {
			rel := rels[i]
			if err := mkdirParents(root, rel); err != nil {
				return err
			}
			mode := os.FileMode(f.Mode & 0o777)
			if mode == 0 {
				mode = 0o644
			}
			if err := writeWhole(root, rel, f.Data, mode); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeWhole truncates or creates the regular file rel and writes data to
// it. O_NONBLOCK makes opening a FIFO fail or return at once instead of
// waiting for a reader; anything but a regular file is refused before a
// byte is written.
func writeWhole(root *os.Root, rel string, data []byte, mode os.FileMode) error {
	f, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NONBLOCK, mode)
	if err != nil {
		return pathError(rel, err)
	}
	defer f.Close()
	if _, err := regularFile(f, rel); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return pathError(rel, err)
	}
	return pathError(rel, f.Close())
}

// readFile reads a whole workspace file of at most maxFrame bytes.
func (w workspaceFS) readFile(p string) ([]byte, error) {
	rel, err := cleanRelPath(p)
	if err != nil {
		return nil, err
	}
	var data []byte
	err = w.run(func(root *os.Root) error {
		f, fi, err := openRegular(root, rel)
		if err != nil {
			return err
		}
		defer f.Close()
		if fi.Size() > maxFrame {
			return &opError{code: cove.CodeInvalid, msg: fmt.Sprintf("%s is %d bytes, larger than %d: download it as a stream", rel, fi.Size(), maxFrame)}
		}
		data, err = io.ReadAll(io.LimitReader(f, maxFrame+1))
		if err != nil {
			return pathError(rel, err)
		}
		if len(data) > maxFrame {
			return &opError{code: cove.CodeInvalid, msg: fmt.Sprintf("%s grew larger than %d bytes while it was read", rel, maxFrame)}
		}
		return nil
	})
	return data, err
}

// openRegular opens the regular file rel for reading. Symbolic links are
// followed only inside the root; a directory, FIFO, socket or device is
// refused (O_NONBLOCK keeps a FIFO from blocking the open).
func openRegular(root *os.Root, rel string) (*os.File, fs.FileInfo, error) {
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, unreadable(root, rel, err, "")
	}
	fi, err := regularFile(f, rel)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// unreadable words the error of opening rel for reading. When its mode
// forbids it, the message says so, with the mode and what to do (hint, if
// not empty, is another way out).
func unreadable(root *os.Root, rel string, err error, hint string) error {
	if !errors.Is(err, syscall.EACCES) && !errors.Is(err, syscall.EPERM) {
		return pathError(rel, err)
	}
	fi, serr := root.Stat(rel)
	if serr != nil {
		return pathError(rel, err)
	}
	fix := "chmod it inside the sandbox"
	if fi.Mode().Perm()&0o444 != 0 {
		fix = "it belongs to another user: change its owner or mode inside the sandbox"
	}
	if hint != "" {
		fix += ", " + hint
	}
	return &opError{code: cove.CodeConflict, msg: fmt.Sprintf("cannot read %s: permission denied (its mode is %03o: %s)", rel, fi.Mode().Perm(), fix), err: err}
}

// regularFile checks that an open file is a regular file.
func regularFile(f *os.File, rel string) (fs.FileInfo, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, pathError(rel, err)
	}
	switch {
	case fi.IsDir():
		return nil, &opError{code: cove.CodeInvalid, msg: "is a directory: " + rel}
	case !fi.Mode().IsRegular():
		return nil, &opError{code: cove.CodeInvalid, msg: "not a regular file: " + rel}
	}
	return fi, nil
}

// mkdirParents creates the parent directories of rel.
func mkdirParents(root *os.Root, rel string) error {
	dir := path.Dir(rel)
	if dir == "." {
		return nil
	}
	if err := root.MkdirAll(dir, 0o755); err != nil {
		if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
			return &opError{code: cove.CodeConflict, msg: "a file is in the way of directory " + dir, err: err}
		}
		return pathError(dir, err)
	}
	return nil
}
