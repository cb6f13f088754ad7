package cgroups

import (
	"path/filepath"
	"strconv"

	cove "github.com/cove-sandbox/cove"
)

// createV1 creates <mount>/<parent>/<id>/user in every hierarchy, writes
// the limits to the user directories and delegates the user subtree.
func (c *creation) createV1(id string, l cove.Limits, uid, gid int) error {
	m := c.m
	users := make([]string, len(m.hiers))
	for i, h := range m.hiers {
		dir, err := c.mkdirSandbox(h.mount, id, nil)
		if err != nil {
			return err
		}
		users[i] = filepath.Join(dir, userDir)
		if err := c.mkdir(users[i]); err != nil {
			return cove.Errorf(cove.CodeUnavailable, "creating cgroup %s: %w", users[i], err)
		}
	}

	for i, h := range m.hiers {
		user := users[i]
		if h.has(ctrlMemory) {
			mem := strconv.FormatInt(l.MemoryBytes, 10)
			// The memory limit first: memsw must never be below it.
			if err := setLimit(filepath.Join(user, "memory.limit_in_bytes"), mem); err != nil {
				return err
			}
			// Without swap accounting there is no memsw file, and the
			// memory limit alone bounds the group.
			if memsw := filepath.Join(user, "memory.memsw.limit_in_bytes"); exists(memsw) {
				if err := setLimit(memsw, mem); err != nil {
					return err
				}
			}
			// Socket buffers: cgroup v1 counts a group's TCP and UDP
			// buffers apart from its memory, and only once a limit is
			// written here. Without one they were counted nowhere but in
			// the host's net.ipv4.tcp_mem: a sandbox limited to 256 MiB
			// held over 1 GiB in loopback connections it did not read,
			// and could have pushed the whole host's TCP into memory
			// pressure. Cgroup v2 counts them in the memory limit.
			if tcp := filepath.Join(user, "memory.kmem.tcp.limit_in_bytes"); exists(tcp) {
				if err := setLimit(tcp, mem); err != nil {
					return err
				}
			}
			if sw := filepath.Join(user, "memory.swappiness"); exists(sw) {
				if err := writeFile(sw, "0"); err != nil {
					m.log.Debug("memory.swappiness not writable", "dir", user, "err", err)
				}
			}
		}
		if h.has(ctrlPids) {
			if err := setLimit(filepath.Join(user, "pids.max"), strconv.Itoa(l.Pids)); err != nil {
				return err
			}
		}
		if h.has(ctrlCPU) {
			// The sandbox's directory first (a child's quota may not
			// exceed its parent's): the limit bounds the agent's work
			// for the sandbox too, such as listing a deep tree.
			for _, d := range []string{filepath.Dir(user), user} {
				if err := setLimit(filepath.Join(d, "cpu.cfs_period_us"), strconv.Itoa(cfsPeriod)); err != nil {
					return err
				}
				if err := setLimit(filepath.Join(d, "cpu.cfs_quota_us"), strconv.FormatInt(cpuQuota(l.CPUs), 10)); err != nil {
					return err
				}
			}
		}
	}

	// Delegation: the agent moves its own fork thread through the tasks
	// files, creates and removes the per-execution pids cgroups, and resets
	// the memory high-water mark. Limit files stay root's.
	for i, h := range m.hiers {
		user := users[i]
		paths := []string{filepath.Join(user, "tasks"), filepath.Join(user, "cgroup.procs")}
		if h.has(ctrlPids) {
			paths = append(paths, user)
		}
		if h.has(ctrlMemory) {
			paths = append(paths, filepath.Join(user, "memory.max_usage_in_bytes"))
		}
		for _, p := range paths {
			if err := delegate(p, uid, gid); err != nil {
				return err
			}
		}
	}
	return nil
}
