package agent

import (
	"errors"
	"fmt"
	"os"
	"path"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
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

// asUser runs fn on a thread whose file-system ids are the sandbox user's,
// so that permission checks are the user's and new files belong to the
// user. os.Root keeps every path, symlinks included, inside the workspace.
func asUser(uid, gid int, fn func(root *os.Root) error) error {
	runtime.LockOSThread()
	// The thread's ids are restored before it is unlocked; if restoring
	// fails the thread is not reused (it stays locked and exits).
	if err := unix.Setfsgid(gid); err != nil {
		return err
	}
	if err := unix.Setfsuid(uid); err != nil {
		return err
	}
	root, err := os.OpenRoot(workspaceDir)
	if err == nil {
		err = fn(root)
		root.Close()
	}
	e1 := unix.Setfsuid(0)
	e2 := unix.Setfsgid(0)
	if e1 == nil && e2 == nil {
		runtime.UnlockOSThread()
	}
	return err
}

func writeFiles(files []File, uid, gid int) error {
	return asUser(uid, gid, func(root *os.Root) error {
		for _, f := range files {
			rel, err := cleanRelPath(f.Path)
			if err != nil {
				return err
			}
			if dir := path.Dir(rel); dir != "." {
				if err := root.MkdirAll(dir, 0o755); err != nil {
					return fmt.Errorf("creating %s: %w", dir, err)
				}
			}
			mode := os.FileMode(f.Mode & 0o7777)
			if mode == 0 {
				mode = 0o644
			}
			if err := root.WriteFile(rel, f.Data, mode&0o777); err != nil {
				return fmt.Errorf("writing %s: %w", rel, err)
			}
		}
		return nil
	})
}

func readFile(p string, uid, gid int) ([]byte, error) {
	rel, err := cleanRelPath(p)
	if err != nil {
		return nil, err
	}
	var data []byte
	err = asUser(uid, gid, func(root *os.Root) error {
		fi, err := root.Stat(rel)
		if err != nil {
			return err
		}
		if fi.Size() > maxFrame {
			return fmt.Errorf("%s is %d bytes, larger than %d", rel, fi.Size(), maxFrame)
		}
		data, err = root.ReadFile(rel)
		return err
	})
	return data, err
}
