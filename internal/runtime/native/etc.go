package native

import (
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove/internal/lang"
)

// etcFromHost are the host /etc entries user programs need; the rest of the
// sandbox's /etc is generated. Nothing else of the host's /etc (shadow,
// ssh keys, configuration with secrets) reaches a sandbox.
var etcFromHost = []string{
	"alternatives", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime",
	"timezone", "ssl", "ca-certificates", "mime.types", "bash.bashrc", "profile",
	"inputrc", "matplotlibrc", "python3", "python3.11", "fonts", "xdg",
}

// generatedEtc are the files written for every sandbox's /etc, with those
// the language registry needs.
func generatedEtc() map[string]string {
	files := lang.EtcFiles()
	maps.Copy(files, map[string]string{
		"passwd": fmt.Sprintf("root:x:0:0:root:/root:/usr/sbin/nologin\nsandbox:x:%d:%d:sandbox:/workspace:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
			SandboxUID, SandboxGID),
		"group":         fmt.Sprintf("root:x:0:\nsandbox:x:%d:\nnogroup:x:65534:\n", SandboxGID),
		"hostname":      "cove\n",
		"hosts":         "127.0.0.1\tlocalhost cove\n::1\tlocalhost ip6-localhost ip6-loopback\n",
		"resolv.conf":   "# no network in this sandbox\n",
		"nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files\nnetworks: files\nprotocols: files\nservices: files\n",
		"os-release":    "NAME=\"cove sandbox\"\nID=cove\n",
	})
	return files
}

// prepareEtc builds dir: the /etc every sandbox gets, read-only, as one
// directory instead of a mount per entry (every mount costs at a sandbox's
// creation and again at its teardown). It is rebuilt when a host entry
// changed since it was made.
//
// Every cove on the machine that shares the run directory prepares it, as
// may goroutines of one (one-shot runs in parallel): a lock beside dir keeps
// them from building at once, and a copy that is replaced stays, as dir.old,
// until the next rebuild, so that a sandbox just given the old copy can
// still attach it.
func prepareEtc(dir string) error {
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	stamp := filepath.Join(dir, ".cove-etc")
	if fi, err := os.Stat(stamp); err == nil && !hostEtcNewer(fi.ModTime()) {
		if b, err := os.ReadFile(stamp); err == nil && string(b) == etcStamp() {
			return nil
		}
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".etc-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	for name, content := range generatedEtc() {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(tmp, name)), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(tmp, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	compilePython(tmp, generatedEtc())
	for _, name := range etcFromHost {
		if err := copyTree(filepath.Join("/etc", name), filepath.Join(tmp, name)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("copying /etc/%s: %w", name, err)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, ".cove-etc"), []byte(etcStamp()), 0o644); err != nil {
		return err
	}
	old := dir + ".old"
	os.RemoveAll(old)
	os.Rename(dir, old)
	return os.Rename(tmp, dir)
}

// compilePython compiles the generated Python modules under dir with the
// host's interpreter, which is the sandboxes' too (/usr is shared), so that
// a Python start in a sandbox finds them compiled: compiling even a
// six-line module costs about 1 ms of a 12 ms start, and the sandbox's
// read-only /etc keeps Python from caching it itself. The caches are
// unchecked hash-based, valid whatever the files' times. Without a host
// Python there is nothing to compile for.
func compilePython(dir string, files map[string]string) {
	var paths []string
	for name := range files {
		if strings.HasSuffix(name, ".py") {
			paths = append(paths, filepath.Join(dir, name))
		}
	}
	if len(paths) == 0 {
		return
	}
	if _, err := os.Stat(hostPython); err != nil {
		return
	}
	const script = "import py_compile, sys\n" +
		"for p in sys.argv[1:]:\n" +
		"    py_compile.compile(p, doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)\n"
	cmd := exec.Command(hostPython, append([]string{"-I", "-c", script}, paths...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	// A failure only costs the sandboxes' Python starts some time.
	cmd.Run()
}

// hostPython compiles the generated Python modules.
const hostPython = "/usr/bin/python3"

// etcFormat is kept in the prepared /etc's stamp: a cove whose copy
// differs in form prepares it again.
const etcFormat = "4: host files keep their modification times; cove/python, compiled\n"

// etcStamp is what the prepared /etc's stamp holds: its form, and a hash
// of the files cove generates, so that a cove that generates other files
// (a language's new module) prepares it again, rather than start
// programs that miss them.
var etcStamp = sync.OnceValue(func() string {
	files := generatedEtc()
	h := sha256.New()
	for _, name := range slices.Sorted(maps.Keys(files)) {
		fmt.Fprintf(h, "%s\x00%d\x00%s", name, len(files[name]), files[name])
	}
	return fmt.Sprintf("%sgenerated %x\n", etcFormat, h.Sum(nil))
})

// hostEtcNewer reports whether a host entry changed after t.
func hostEtcNewer(t time.Time) bool {
	for _, name := range etcFromHost {
		if fi, err := os.Lstat(filepath.Join("/etc", name)); err == nil && fi.ModTime().After(t) {
			return true
		}
	}
	return false
}

// copyTree copies a file, symlink or directory tree, keeping symlinks as
// symlinks, permission bits and the modification times of files. The times
// matter: Python checks a module's compiled cache in /usr against its
// source's time, and a copy of /etc/python3.11/sitecustomize.py with a new
// time would make every Python start compile it again (about 1 ms).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case fi.IsDir():
			return os.Mkdir(target, fi.Mode().Perm())
		case fi.Mode().IsRegular():
			if err := copyFile(p, target, fi.Mode().Perm()); err != nil {
				return err
			}
			return os.Chtimes(target, fi.ModTime(), fi.ModTime())
		}
		return nil
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// etcMount returns a detached, read-only copy of the prepared /etc mount
// for an agent to attach.
func etcMount(dir string) (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("open_tree: %w", err)
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("making /etc read-only: %w", err)
	}
	return os.NewFile(uintptr(fd), "etc"), nil
}
