package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Time bounds of killing and removing.
const (
	killTimeout   = 2 * time.Second        // until every process of a group is gone
	freezeTimeout = 200 * time.Millisecond // until a v1 freezer reports FROZEN
	rmdirTimeout  = time.Second            // retrying EBUSY from rmdir
)

// Kill sends SIGKILL to every process in the sandbox's whole subtree, the
// agent included, and returns once none is left (zombies do not count:
// the kernel drops them from their cgroups). On v2 it uses cgroup.kill. On
// v1 it freezes the subtree through the freezer (when mounted) so that
// nothing forks or exits while the pids are read and killed, then thaws it
// so that the killed processes die. It gives up after about two seconds.
// A group that does not exist has nothing to kill.
func (g *Group) Kill() error {
	dirs := g.dirs()
	list := func() ([]int, error) { return procsInTrees(dirs) }
	if pids, err := list(); err == nil && len(pids) == 0 && g.m.version == V1 {
		// The usual case when a sandbox is destroyed: killing its PID 1
		// already took every process with it, and the freezer round trip
		// can be skipped.
		return nil
	}
	k := killer{list: list}
	switch g.m.version {
	case V2:
		dir := dirs[0]
		err := writeFile(filepath.Join(dir, "cgroup.kill"), "1")
		if errors.Is(err, fs.ErrNotExist) && exists(dir) {
			// Before Linux 5.14 there is no cgroup.kill: freeze instead.
			k.freeze = func() error { return writeFile(filepath.Join(dir, "cgroup.freeze"), "1") }
			k.thaw = func() error { return writeFile(filepath.Join(dir, "cgroup.freeze"), "0") }
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			g.m.log.Warn("cgroup.kill failed; killing one by one", "id", g.id, "err", err)
		}
	case V1:
		if i := g.m.hierOf(ctrlFreezer); i >= 0 {
			state := filepath.Join(dirs[i], "freezer.state")
			k.freeze = func() error { return freezeV1(state) }
			k.thaw = func() error { return writeFile(state, "THAWED") }
		}
	}
	if err := k.run(); err != nil {
		return fmt.Errorf("killing the processes of sandbox %s: %w", g.id, err)
	}
	return nil
}

// freezeV1 freezes a v1 freezer cgroup and waits, briefly, until every
// task in it is frozen.
func freezeV1(state string) error {
	if err := writeFile(state, "FROZEN"); err != nil {
		return err
	}
	deadline := time.Now().Add(freezeTimeout)
	for {
		data, err := os.ReadFile(state)
		if err != nil {
			return err
		}
		if strings.TrimSpace(string(data)) == "FROZEN" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("freezer still %s after %s", strings.TrimSpace(string(data)), freezeTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// killer kills every process list returns until it returns none.
type killer struct {
	list   func() ([]int, error)
	freeze func() error // optional; stops forks and exits during the first round
	thaw   func() error
}

// run does the killing. It never signals the calling process itself (on v1
// the agent's fork thread may sit in the group being killed).
func (k killer) run() error {
	self := os.Getpid()
	deadline := time.Now().Add(killTimeout)
	frozen := false
	if k.freeze != nil {
		frozen = k.freeze() == nil
		if !frozen {
			// A partly frozen group must not stay frozen.
			k.thaw()
		}
	}
	defer func() {
		if frozen {
			k.thaw()
		}
	}()
	delay := 500 * time.Microsecond
	for {
		pids, err := k.list()
		if err != nil {
			return err
		}
		pids = slices.DeleteFunc(pids, func(p int) bool { return p <= 0 || p == self })
		if len(pids) == 0 {
			return nil
		}
		if frozen {
			// Frozen processes cannot exit, but one that was already
			// exiting can, and its pid be reused by a process of another
			// sandbox: kill through pidfds here too.
			if err := killListed(pids, k.list); err != nil {
				return err
			}
			if err := k.thaw(); err != nil {
				return fmt.Errorf("thawing: %w", err)
			}
			frozen = false
		} else if err := killListed(pids, k.list); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d processes still running after %s (pids %v)", len(pids), killTimeout, pids)
		}
		time.Sleep(delay)
		delay = min(2*delay, 20*time.Millisecond)
	}
}

// killListed kills pids without risking a pid that was reused in between:
// it pins each process with a pidfd, reads the group again, and signals
// only the pinned processes that are still listed.
func killListed(pids []int, list func() ([]int, error)) error {
	fds := make(map[int]int, len(pids))
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, p := range pids {
		fd, err := unix.PidfdOpen(p, 0)
		if errors.Is(err, unix.ENOSYS) {
			// Before Linux 5.3: no pidfds; plain kill.
			for _, p := range pids {
				unix.Kill(p, unix.SIGKILL)
			}
			return nil
		}
		if err == nil {
			fds[p] = fd
		}
	}
	again, err := list()
	if err != nil {
		return err
	}
	for _, p := range again {
		if fd, ok := fds[p]; ok {
			unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		}
	}
	return nil
}

// procsInTrees returns the processes in the cgroups at and below each of
// roots; missing cgroups have none.
func procsInTrees(roots []string) ([]int, error) {
	var all []int
	for _, root := range roots {
		dirs, err := cgroupTree(root)
		if err != nil {
			return nil, err
		}
		for _, d := range dirs {
			data, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("listing processes: %w", err)
			}
			pids, err := parsePids(data)
			if err != nil {
				return nil, fmt.Errorf("listing processes of %s: %w", d, err)
			}
			all = append(all, pids...)
		}
	}
	slices.Sort(all)
	return slices.Compact(all), nil
}

// cgroupTree returns root and the cgroups below it, children before their
// parents, or nothing when root does not exist.
func cgroupTree(root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading cgroup %s: %w", root, err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		sub, err := cgroupTree(filepath.Join(root, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, sub...)
	}
	return append(out, root), nil
}

// Destroy kills every process of the sandbox and removes its cgroups in
// every hierarchy, children first. It is idempotent: what is missing
// already is fine. The parent directory stays.
func (g *Group) Destroy() error {
	// Usually every process is gone already (killing a sandbox's PID 1
	// takes its whole pid namespace), and the cgroups can go without
	// listing processes first: the kernel refuses to remove a cgroup that
	// still has a process in it (EBUSY), and then they are killed.
	if g.removeOnce() {
		g.m.log.Debug("cgroup destroyed", "id", g.id)
		return nil
	}
	errs := []error{g.Kill()}
	for _, root := range g.dirs() {
		dirs, err := cgroupTree(root)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, d := range dirs {
			if err := rmdirRetry(g.m.ops.rmdir, d); err != nil {
				errs = append(errs, fmt.Errorf("removing cgroup: %w", err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("destroying cgroups of sandbox %s: %w", g.id, err)
	}
	g.m.log.Debug("cgroup destroyed", "id", g.id)
	return nil
}

// removeOnce tries once to remove the group's cgroups in every hierarchy,
// children first, and says whether none is left. It removes the
// directories Create made without reading any directory; only a cgroup
// the kernel refuses to remove (one with children of its own, such as an
// execution's leftover cgroup) makes it walk that tree.
func (g *Group) removeOnce() bool {
	for _, root := range g.dirs() {
		if g.removeKnown(root) {
			continue
		}
		dirs, err := cgroupTree(root)
		if err != nil {
			return false
		}
		for _, d := range dirs {
			if err := g.m.ops.rmdir(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return false
			}
		}
	}
	return true
}

// removeKnown removes root and the children Create made in it, and says
// whether that worked.
func (g *Group) removeKnown(root string) bool {
	children := []string{userDir}
	if g.m.version == V2 {
		children = append(children, agentDir)
	}
	for _, c := range children {
		if err := g.m.ops.rmdir(filepath.Join(root, c)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false
		}
	}
	err := g.m.ops.rmdir(root)
	return err == nil || errors.Is(err, fs.ErrNotExist)
}

// rmdirRetry removes an empty cgroup, retrying while the kernel still
// reports it busy (tasks that are exiting); a missing cgroup is fine.
func rmdirRetry(rmdir func(string) error, dir string) error {
	deadline := time.Now().Add(rmdirTimeout)
	for {
		err := rmdir(dir)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
}
