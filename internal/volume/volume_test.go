package volume

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
)

const (
	testImageSize = 2 << 30
	testUID       = 100123 // an id no host account uses, like a sandbox's mapped user
	testGID       = 100123
	mib           = 1 << 20
)

func requireBtrfs(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root to mount a btrfs workspace volume")
	}
	if _, ok := findMkfs(); !ok {
		tb.Skip("needs mkfs.btrfs: apt-get install btrfs-progs")
	}
}

// stateDir returns a fresh state directory whose volume is unmounted, and
// checked to have left no mount or loop device behind, when the test ends.
func stateDir(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	// Open to all, as an operator may make a state directory: the volume
	// below must keep everyone but root out all the same.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			tb.Fatal(err)
		}
	}
	tb.Cleanup(func() {
		if err := Unmount(dir); err != nil {
			tb.Errorf("Unmount: %v", err)
		}
		if err := Unmount(dir); err != nil {
			tb.Errorf("second Unmount: %v", err)
		}
		checkNoLeak(tb, dir)
	})
	return dir
}

func openVolume(tb testing.TB, dir string) *Volume {
	tb.Helper()
	v, err := Open(tb.Context(), dir, Options{ImageSize: testImageSize})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { v.Close() })
	return v
}

// mountsUnder returns the mount points at or below dir.
func mountsUnder(tb testing.TB, dir string) []string {
	tb.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			out = append(out, fields[4])
		}
	}
	return out
}

// loopsBackedBy returns the loop devices whose backing file is in dir.
func loopsBackedBy(tb testing.TB, dir string) []string {
	tb.Helper()
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil && strings.HasPrefix(string(b), dir+"/") {
			out = append(out, f)
		}
	}
	return out
}

// wantOneLoop checks that one loop device is backed by a file under dir,
// once the kernel has finished clearing any it detached (a loop device
// whose mount went away is cleared just after umount returns).
func wantOneLoop(tb testing.TB, dir string) {
	tb.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		l := loopsBackedBy(tb, dir)
		if len(l) == 1 {
			return
		}
		if len(l) == 0 || time.Now().After(deadline) {
			tb.Errorf("loop devices: %v, want one", l)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func checkNoLeak(tb testing.TB, dir string) {
	tb.Helper()
	// A loop device is cleared when its last user closes it, which the
	// kernel may finish just after umount returns, and later still on a
	// loaded machine (CI saw one still there after 3 s).
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, l := mountsUnder(tb, dir), loopsBackedBy(tb, dir)
		if len(m) == 0 && len(l) == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Errorf("left behind: mounts %v, loop devices %v", m, l)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncVolume commits the filesystem so that qgroup numbers are current.
func syncVolume(tb testing.TB, path string) {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		tb.Fatal(err)
	}
}

// runAs runs a command as uid:gid with no supplementary groups, as sandboxed
// code would.
func runAs(tb testing.TB, uid, gid int, name string, args ...string) (string, error) {
	tb.Helper()
	return runIn(tb, "", uid, gid, name, args...)
}

// runIn is runAs for a workspace's owner working in workspace ws, which it
// reaches as a sandbox does, through a handle (here a descriptor, in a
// sandbox its mount), not by walking the volume's directories, which are
// root's alone: ws in args becomes /proc/self/fd/3.
func runIn(tb testing.TB, ws string, uid, gid int, name string, args ...string) (string, error) {
	tb.Helper()
	cmd := exec.CommandContext(tb.Context(), name, args...)
	if ws != "" {
		d, err := os.Open(ws)
		if err != nil {
			tb.Fatal(err)
		}
		defer d.Close()
		cmd.ExtraFiles = []*os.File{d}
		for i, a := range cmd.Args {
			cmd.Args[i] = strings.ReplaceAll(a, ws, "/proc/self/fd/3")
		}
	}
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// plainSubvolCreate makes a subvolume the way code inside a sandbox could:
// with no qgroup inheritance and so no limit.
func plainSubvolCreate(tb testing.TB, parent, name string) {
	tb.Helper()
	f, err := os.Open(parent)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	args := &volArgs{}
	copy(args.name[:], name)
	if err := ioctl(int(f.Fd()), iocSubvolCreate, unsafe.Pointer(args)); err != nil {
		tb.Fatalf("creating nested subvolume: %v", err)
	}
}

func wantCode(tb testing.TB, err error, code cove.Code) {
	tb.Helper()
	if got := cove.ErrorCode(err); got != code {
		tb.Errorf("error %v has code %q, want %q", err, got, code)
	}
}

func TestOpenReuses(t *testing.T) {
	requireBtrfs(t)
	dir := stateDir(t)

	start := time.Now()
	v, err := Open(t.Context(), dir, Options{}) // the default 256 GiB sparse image
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Logf("first Open (create image, mkfs, loop, mount, quota enable): %v", time.Since(start))
	img, err := os.Stat(filepath.Join(dir, imageName))
	if err != nil {
		t.Fatal(err)
	}
	if img.Size() != DefaultImageSize {
		t.Errorf("image size %d, want %d", img.Size(), DefaultImageSize)
	}
	if st := img.Sys().(*syscall.Stat_t); st.Blocks*512 > 64*mib {
		t.Errorf("image uses %d bytes on disk; it should be sparse", st.Blocks*512)
	}
	if _, err := v.Create("keep", 10*mib, testUID, testGID); err != nil {
		t.Fatal(err)
	}
	v.Close()

	// A second Open of the mounted volume must reuse it: a fresh mkfs
	// would lose the workspace.
	start = time.Now()
	v = openVolume(t, dir)
	t.Logf("Open of the mounted volume: %v", time.Since(start))
	if ids, err := v.List(); err != nil || !slices.Equal(ids, []string{"keep"}) {
		t.Fatalf("List after reopen = %v, %v; want [keep]", ids, err)
	}
	v.Close()

	// After an unmount (as after a reboot), Open reattaches the image.
	if err := Unmount(dir); err != nil {
		t.Fatal(err)
	}
	checkNoLeak(t, dir)
	start = time.Now()
	v = openVolume(t, dir)
	t.Logf("Open of the existing, unmounted image: %v", time.Since(start))
	if ids, err := v.List(); err != nil || !slices.Equal(ids, []string{"keep"}) {
		t.Fatalf("List after remount = %v, %v; want [keep]", ids, err)
	}
	if m := mountsUnder(t, dir); len(m) != 1 {
		t.Errorf("mounts under %s: %v, want one", dir, m)
	}
	wantOneLoop(t, dir)
}

func TestOpenConcurrent(t *testing.T) {
	requireBtrfs(t)
	t.Parallel()
	dir := stateDir(t)
	const n = 4
	vols := make([]*Volume, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { vols[i], errs[i] = Open(t.Context(), dir, Options{ImageSize: testImageSize}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		t.Cleanup(func() { vols[i].Close() })
	}
	if m := mountsUnder(t, dir); len(m) != 1 {
		t.Errorf("mounts under %s: %v, want exactly one", dir, m)
	}
	if l := loopsBackedBy(t, dir); len(l) != 1 {
		t.Errorf("loop devices: %v, want exactly one", l)
	}
	if _, err := vols[0].Create("shared", 10*mib, testUID, testGID); err != nil {
		t.Fatal(err)
	}
	for i, v := range vols {
		if ids, err := v.List(); err != nil || !slices.Equal(ids, []string{"shared"}) {
			t.Errorf("List on handle %d = %v, %v; want [shared]", i, ids, err)
		}
	}
}

func TestQuotaStopsWriter(t *testing.T) {
	requireBtrfs(t)
	t.Parallel()
	v := openVolume(t, stateDir(t))
	const limit = 20 * mib
	ws, err := v.Create("filler", limit, testUID, testGID)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(ws)
	if err != nil {
		t.Fatal(err)
	}
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != testUID || sys.Gid != testGID || st.Mode().Perm() != 0o755 {
		t.Errorf("workspace is %d:%d %v, want %d:%d 0755", sys.Uid, sys.Gid, st.Mode().Perm(), testUID, testGID)
	}

	// The owner fills the disk: dd must fail with EDQUOT near the limit.
	fill := filepath.Join(ws, "fill")
	out, err := runIn(t, ws, testUID, testGID, "dd", "if=/dev/zero", "of="+fill, "bs=1M", "count=100")
	if err == nil {
		t.Fatalf("dd of 100 MiB into a 20 MiB workspace succeeded:\n%s", out)
	}
	if !strings.Contains(out, "Disk quota exceeded") {
		t.Fatalf("dd failed without EDQUOT: %v\n%s", err, out)
	}
	fi, err := os.Stat(fill)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("writer stopped after %d bytes (limit %d)", fi.Size(), limit)
	if fi.Size() > limit || fi.Size() < limit-4*mib {
		t.Errorf("writer wrote %d bytes, want between %d and %d", fi.Size(), limit-4*mib, limit)
	}

	// A full workspace must recover: deleting works and frees the space.
	if out, err := runIn(t, ws, testUID, testGID, "rm", fill); err != nil {
		t.Fatalf("rm in a full workspace: %v\n%s", err, out)
	}
	again := filepath.Join(ws, "again")
	if out, err := runIn(t, ws, testUID, testGID, "dd", "if=/dev/zero", "of="+again, "bs=1M", "count=10", "conv=fsync"); err != nil {
		t.Fatalf("writing 10 MiB after freeing the space: %v\n%s", err, out)
	}
	syncVolume(t, ws)
	used, err := v.Usage("filler")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Usage after writing 10 MiB: %d", used)
	if used < 10*mib || used > 11*mib {
		t.Errorf("Usage = %d, want about %d", used, 10*mib)
	}
}

func TestDelete(t *testing.T) {
	requireBtrfs(t)
	t.Parallel()
	v := openVolume(t, stateDir(t))

	t.Run("missing", func(t *testing.T) {
		if err := v.Delete("never-created"); err != nil {
			t.Errorf("Delete of a missing workspace: %v", err)
		}
	})

	t.Run("messy", func(t *testing.T) {
		ws, err := v.Create("messy", 200*mib, testUID, testGID)
		if err != nil {
			t.Fatal(err)
		}
		// Deep directories, files of several owners, read-only files in
		// read-only directories.
		deep := ws
		for i := range 300 {
			deep = filepath.Join(deep, "d")
			if err := os.Mkdir(deep, 0o755); err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(deep, "f")
			if err := os.WriteFile(f, []byte("x"), 0o444); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(f, testUID+i%3, testGID); err != nil {
				t.Fatal(err)
			}
		}
		for p := deep; p != ws; p = filepath.Dir(p) {
			if err := os.Chmod(p, 0o555); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Symlink("/etc/passwd", filepath.Join(ws, "link")); err != nil {
			t.Fatal(err)
		}
		// A subvolume nested inside, as code in the sandbox could make,
		// holding data of its own.
		plainSubvolCreate(t, ws, "inner")
		if err := os.WriteFile(filepath.Join(ws, "inner", "data"), make([]byte, 5*mib), 0o600); err != nil {
			t.Fatal(err)
		}
		syncVolume(t, ws)
		used, err := v.Usage("messy")
		if err != nil {
			t.Fatal(err)
		}
		if used < 5*mib {
			t.Errorf("Usage = %d, want at least the 5 MiB in the nested subvolume", used)
		}

		var ids []uint64
		err = v.control(func(fd int) error {
			sub, err := v.openWorkspace(fd, "messy")
			if err != nil {
				return err
			}
			defer unix.Close(sub)
			id, err := subvolID(sub)
			if err != nil {
				return err
			}
			nested, err := descendants(fd, id)
			ids = append(nested, id)
			return err
		})
		if err != nil || len(ids) != 2 {
			t.Fatalf("subvolume ids = %v, %v; want the workspace and one nested", ids, err)
		}

		start := time.Now()
		if err := v.Delete("messy"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		t.Logf("Delete of a 300-deep tree with a nested subvolume: %v", time.Since(start))
		if _, err := os.Lstat(ws); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("workspace still there after Delete: %v", err)
		}
		if _, err := v.Usage("messy"); cove.ErrorCode(err) != cove.CodeNotFound {
			t.Errorf("Usage after Delete: %v, want not_found", err)
		}
		if err := v.Delete("messy"); err != nil {
			t.Errorf("second Delete: %v", err)
		}
		ws2, err := v.Create("messy", 10*mib, testUID, testGID)
		if err != nil {
			t.Fatalf("Create after Delete: %v", err)
		}
		if entries, err := os.ReadDir(ws2); err != nil || len(entries) != 0 {
			t.Errorf("re-created workspace holds %v, %v; want it empty", entries, err)
		}

		// The qgroups of deleted subvolumes must not pile up: the kernel
		// removes them once its cleaner has dropped the subvolumes.
		gone := func() bool {
			var left []uint64
			v.control(func(fd int) error {
				all, err := level0Qgroups(fd)
				for _, id := range ids {
					if slices.Contains(all, id) {
						left = append(left, id)
					}
				}
				return err
			})
			return len(left) == 0
		}
		deadline := time.Now().Add(10 * time.Second)
		for !gone() && time.Now().Before(deadline) {
			cleanNow(t, v.root)
			time.Sleep(50 * time.Millisecond)
		}
		if !gone() {
			t.Errorf("qgroups of deleted subvolumes %v remain", ids)
		}
	})

	t.Run("stale qgroup sweep", func(t *testing.T) {
		// Kernels that forget to drop a deleted subvolume's qgroup are
		// imitated by a qgroup made for a subvolume that never existed.
		const stale = 4242
		err := v.control(func(fd int) error {
			args := &qgroupCreateArgs{create: 1, qgroupid: stale}
			return ioctl(fd, iocQgroupCreate, unsafe.Pointer(args))
		})
		if errors.Is(err, unix.EINVAL) {
			t.Skip("this kernel refuses qgroups for missing subvolumes, so none can go stale")
		}
		if err != nil {
			t.Fatal(err)
		}
		v2 := openVolume(t, filepath.Dir(v.root))
		v2.Close()
		v.control(func(fd int) error {
			ids, err := level0Qgroups(fd)
			if slices.Contains(ids, stale) {
				t.Errorf("stale qgroup 0/%d survived Open", stale)
			}
			return err
		})
	})
}

// cleanNow has btrfs drop deleted subvolumes now rather than at the next
// periodic wakeup of its cleaner thread: BTRFS_IOC_SYNC commits and wakes it.
func cleanNow(tb testing.TB, path string) {
	tb.Helper()
	const iocSync = btrfsMagic<<8 | 8 // _IO(BTRFS_IOCTL_MAGIC, 8) == 0x9408
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := ioctl(int(f.Fd()), iocSync, nil); err != nil {
		tb.Fatal(err)
	}
}

func TestList(t *testing.T) {
	requireBtrfs(t)
	t.Parallel()
	v := openVolume(t, stateDir(t))
	if ids, err := v.List(); err != nil || len(ids) != 0 {
		t.Fatalf("List of a new volume = %v, %v", ids, err)
	}
	for _, id := range []string{"b-2", "a-1", "c-3"} {
		if _, err := v.Create(id, 10*mib, testUID, testGID); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Delete("c-3"); err != nil {
		t.Fatal(err)
	}
	if ids, err := v.List(); err != nil || !slices.Equal(ids, []string{"a-1", "b-2"}) {
		t.Errorf("List = %v, %v; want [a-1 b-2]", ids, err)
	}
}

func TestInvalid(t *testing.T) {
	requireBtrfs(t)
	t.Parallel()
	v := openVolume(t, stateDir(t))
	for _, id := range []string{"", "A", "a_b", "a.b", "..", "a/b", "../x", "é", "a b", strings.Repeat("a", 65)} {
		t.Run(fmt.Sprintf("%q", id), func(t *testing.T) {
			_, err := v.Create(id, 10*mib, testUID, testGID)
			wantCode(t, err, cove.CodeInvalid)
			wantCode(t, v.Delete(id), cove.CodeInvalid)
			_, err = v.Usage(id)
			wantCode(t, err, cove.CodeInvalid)
			if p := v.Path(id); p != "" {
				t.Errorf("Path = %q, want empty", p)
			}
		})
	}
	if _, err := v.Create(strings.Repeat("a", 64), 10*mib, testUID, testGID); err != nil {
		t.Errorf("64-character id: %v", err)
	}
	for _, limit := range []int64{0, -1} {
		_, err := v.Create("limit", limit, testUID, testGID)
		wantCode(t, err, cove.CodeInvalid)
	}
	_, err := v.Create("owner", 10*mib, -1, testGID)
	wantCode(t, err, cove.CodeInvalid)
	// A limit above the host's free space would let one workspace fill
	// the host's disk through the sparse image.
	_, err = v.Create("huge", 1<<60, testUID, testGID)
	wantCode(t, err, cove.CodeInvalid)
	if err == nil || !strings.Contains(err.Error(), "free on the file system of") {
		t.Errorf("huge limit: %v", err)
	}
	if _, err := v.Create("twice", 10*mib, testUID, testGID); err != nil {
		t.Fatal(err)
	}
	_, err = v.Create("twice", 10*mib, testUID, testGID)
	wantCode(t, err, cove.CodeConflict)
	_, err = v.Usage("absent")
	wantCode(t, err, cove.CodeNotFound)
}

func TestClosed(t *testing.T) {
	requireBtrfs(t)
	t.Parallel()
	v := openVolume(t, stateDir(t))
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	_, err := v.Create("late", 10*mib, testUID, testGID)
	wantCode(t, err, cove.CodeUnavailable)
	wantCode(t, v.Delete("late"), cove.CodeUnavailable)
}

func TestOpenErrors(t *testing.T) {
	requireBtrfs(t)
	t.Parallel()
	dir := stateDir(t)
	_, err := Open(t.Context(), dir, Options{ImageSize: 1 << 20})
	wantCode(t, err, cove.CodeInvalid)

	err = createImage(t.Context(), "", filepath.Join(dir, imageName), testImageSize)
	wantCode(t, err, cove.CodeUnavailable)
	if !strings.Contains(cove.ErrorMessage(err), "install btrfs-progs") {
		t.Errorf("error without mkfs.btrfs = %q, want advice to install btrfs-progs", cove.ErrorMessage(err))
	}

	// A lock held elsewhere makes Open wait until its context ends.
	lock, err := lockFile(nil, filepath.Join(dir, lockName))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = Open(ctx, dir, Options{ImageSize: testImageSize})
	wantCode(t, err, cove.CodeTimeout)
}

// TestOpenOnBtrfsHost opens a volume whose state directory is already on
// btrfs: no image, a plain directory, the same workspaces.
func TestOpenOnBtrfsHost(t *testing.T) {
	requireBtrfs(t)
	t.Parallel()
	outer := openVolume(t, stateDir(t))
	dir := filepath.Join(outer.root, "host-state")
	v := openVolume(t, dir)
	if _, err := os.Stat(filepath.Join(dir, imageName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an image was made on a btrfs host: %v", err)
	}
	if mounted, err := isMountRoot(filepath.Join(dir, mountName)); err != nil || mounted {
		t.Errorf("isMountRoot = %v, %v; want a plain directory", mounted, err)
	}
	ws, err := v.Create("onhost", 20*mib, testUID, testGID)
	if err != nil {
		t.Fatal(err)
	}
	out, err := runIn(t, ws, testUID, testGID, "dd", "if=/dev/zero", "of="+filepath.Join(ws, "fill"), "bs=1M", "count=40")
	if err == nil || !strings.Contains(out, "Disk quota exceeded") {
		t.Errorf("dd past the limit: %v\n%s", err, out)
	}
	if err := v.Delete("onhost"); err != nil {
		t.Fatal(err)
	}
	if err := Unmount(dir); err != nil {
		t.Errorf("Unmount of a directory that is no mount: %v", err)
	}
}

func TestSandboxDeniedIoctls(t *testing.T) {
	got := SandboxDeniedIoctls()
	for _, want := range []uint32{0x50009401, 0x5000940e, 0x50009417, 0x50009418} {
		if !slices.Contains(got, want) {
			t.Errorf("SandboxDeniedIoctls() = %#x, missing %#x", got, want)
		}
	}
}

func BenchmarkCreateDelete(b *testing.B) {
	requireBtrfs(b)
	v := openVolume(b, stateDir(b))
	i := 0
	for b.Loop() {
		id := fmt.Sprintf("bench-%d", i)
		i++
		if _, err := v.Create(id, 1<<30, testUID, testGID); err != nil {
			b.Fatal(err)
		}
		if err := v.Delete(id); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCreate(b *testing.B) {
	requireBtrfs(b)
	v := openVolume(b, stateDir(b))
	i := 0
	for b.Loop() {
		if _, err := v.Create(fmt.Sprintf("bench-%d", i), 1<<30, testUID, testGID); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkOpenFirstTime(b *testing.B) {
	requireBtrfs(b)
	for b.Loop() {
		b.StopTimer()
		dir := stateDir(b)
		b.StartTimer()
		v, err := Open(b.Context(), dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		v.Close()
		if err := Unmount(dir); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// TestOpenRemountsReadOnly: btrfs makes itself read-only after a failed
// write (as when the disk under its image fills up), and stays so until
// it is mounted again. Creating a workspace on it says so, and the next
// Open mounts it again, writable, with its workspaces.
func TestOpenRemountsReadOnly(t *testing.T) {
	requireBtrfs(t)
	dir := stateDir(t)
	v, err := Open(t.Context(), dir, Options{ImageSize: testImageSize})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Create("keep", 10*mib, testUID, testGID); err != nil {
		t.Fatal(err)
	}
	syncVolume(t, v.Path("keep"))
	root := filepath.Join(dir, mountName)
	if err := unix.Mount("", root, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remounting read-only: %v", err)
	}
	_, err = v.Create("new", 10*mib, testUID, testGID)
	wantCode(t, err, cove.CodeUnavailable)
	if msg := cove.ErrorMessage(err); !strings.Contains(msg, "read-only") || !strings.Contains(msg, "restart cove") {
		t.Errorf("message %q does not say the volume is read-only and what to do", msg)
	}
	v.Close()

	v = openVolume(t, dir)
	if ro, err := isReadOnly(root); err != nil || ro {
		t.Fatalf("after Open, read-only = %v, %v", ro, err)
	}
	if ids, err := v.List(); err != nil || !slices.Equal(ids, []string{"keep"}) {
		t.Fatalf("List after Open = %v, %v; want [keep]", ids, err)
	}
	if _, err := v.Create("new", 10*mib, testUID, testGID); err != nil {
		t.Fatalf("Create after Open: %v", err)
	}
	if m := mountsUnder(t, dir); len(m) != 1 {
		t.Errorf("mounts under %s: %v, want one", dir, m)
	}
	wantOneLoop(t, dir)
}

// TestCreateOnFullDisk: with no space left on the disk that holds the
// image, a new workspace is refused as unavailable, saying so, before
// anything is written to the volume (a write there that fails makes btrfs
// read-only for every sandbox); it works again once space is back.
func TestCreateOnFullDisk(t *testing.T) {
	requireBtrfs(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=700m,mode=0711"); err != nil {
		t.Skipf("mounting a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := Unmount(dir); err != nil {
			t.Errorf("Unmount: %v", err)
		}
		if m := mountsUnder(t, filepath.Join(dir, mountName)); len(m) > 0 {
			t.Errorf("left behind: mounts %v", m)
		}
		// The loop device, cleared just after the unmount, holds the
		// tmpfs until then; the kernel lets it go a moment later still,
		// longer on a loaded machine.
		deadline := time.Now().Add(10 * time.Second)
		for len(loopsBackedBy(t, dir)) > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		for {
			err := unix.Unmount(dir, 0)
			if err == nil {
				break
			}
			if err != unix.EBUSY || time.Now().After(deadline) {
				t.Errorf("unmounting the tmpfs: %v (loop devices on it: %v)", err, loopsBackedBy(t, dir))
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	v, err := Open(t.Context(), dir, Options{ImageSize: minImageSize})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	syncVolume(t, filepath.Join(dir, mountName))
	ballast := filepath.Join(dir, "ballast")
	f, err := os.Create(ballast)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, mib)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	_, err = v.Create("full", 10*mib, testUID, testGID)
	wantCode(t, err, cove.CodeUnavailable)
	if err == nil {
		v.Delete("full")
	} else if msg := cove.ErrorMessage(err); !strings.Contains(msg, "is full") {
		t.Errorf("message %q does not say the disk is full", msg)
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Create("roomy", 10*mib, testUID, testGID); err != nil {
		t.Fatalf("Create once space is back: %v", err)
	}
	if ro, err := isReadOnly(filepath.Join(dir, mountName)); err != nil || ro {
		t.Errorf("volume read-only = %v, %v", ro, err)
	}
}

// TestWorkspacesAreRootsAlone: on disk a workspace belongs to the sandbox
// user's id inside (1000), which on the host is often a person's. That
// person cannot reach it, even below a state directory open to all.
func TestWorkspacesAreRootsAlone(t *testing.T) {
	requireBtrfs(t)
	dir := stateDir(t)
	v := openVolume(t, dir)
	ws, err := v.Create("private", 20*mib, testUID, testGID)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Delete("private")
	if err := os.WriteFile(filepath.Join(ws, "secret"), []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runAs(t, testUID, testGID, "cat", filepath.Join(ws, "secret"))
	if err == nil || !strings.Contains(out, "Permission denied") {
		t.Fatalf("the host user %d read a workspace file by its path: %v %q", testUID, err, out)
	}
	// Its owner in the sandbox, through its handle, still can.
	if out, err := runIn(t, ws, testUID, testGID, "cat", filepath.Join(ws, "secret")); err != nil || out != "s" {
		t.Fatalf("through the workspace's handle: %v %q", err, out)
	}
}

// TestTrimGivesSpaceBack checks that the space of deleted files goes back
// to the disk that holds the image once the volume is trimmed.
func TestTrimGivesSpaceBack(t *testing.T) {
	requireBtrfs(t)
	t.Parallel()
	dir := stateDir(t)
	v := openVolume(t, dir)
	image := filepath.Join(dir, imageName)
	if _, err := os.Stat(image); err != nil {
		t.Skipf("the volume has no image of its own here (a btrfs host): %v", err)
	}
	onDisk := func() int64 {
		var st unix.Stat_t
		if err := unix.Stat(image, &st); err != nil {
			t.Fatal(err)
		}
		return st.Blocks * 512
	}
	ws, err := v.Create("trim", 200*mib, testUID, testGID)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 64*mib)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(ws, "data"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	syncVolume(t, ws)
	full := onDisk()
	if err := os.Remove(filepath.Join(ws, "data")); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Trim(); err != nil {
		t.Fatal(err)
	}
	if after := onDisk(); after > full-48*mib {
		t.Fatalf("the image holds %d MiB on disk after a 64 MiB file was deleted and the volume trimmed, %d MiB before", after/mib, full/mib)
	}
}
