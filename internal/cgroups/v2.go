package cgroups

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	cove "github.com/cove-sandbox/cove"
)

// v2Controllers are the controllers cove enables for the children of each
// cgroup on the way down to the user subtree, in the form written to
// cgroup.subtree_control.
const v2Controllers = "+memory +pids +cpu"

// enableControllers makes sure dir's cgroup.subtree_control enables memory,
// pids and cpu for its children, writing only when one is missing.
func enableControllers(dir string) error {
	path := filepath.Join(dir, "cgroup.subtree_control")
	data, err := os.ReadFile(path)
	if err != nil {
		return cove.Errorf(cove.CodeUnavailable, "enabling cgroup controllers in %s: %w", dir, err)
	}
	have := strings.Fields(string(data))
	if slices.Contains(have, ctrlMemory) && slices.Contains(have, ctrlPids) && slices.Contains(have, ctrlCPU) {
		return nil
	}
	if err := writeFile(path, v2Controllers); err != nil {
		return cove.Errorf(cove.CodeUnavailable, "enabling cgroup controllers in %s: %w", dir, err)
	}
	return nil
}

// createV2 creates <root>/<parent>/<id>/{agent,user}, writes the limits to
// user and delegates the user subtree.
func (c *creation) createV2(id string, l cove.Limits, uid, gid int) error {
	m := c.m
	if err := enableControllers(m.root); err != nil {
		return err
	}
	dir, err := c.mkdirSandbox(m.root, id, enableControllers)
	if err != nil {
		return err
	}
	if err := enableControllers(dir); err != nil {
		return err
	}
	for _, name := range []string{agentDir, userDir} {
		if err := c.mkdir(filepath.Join(dir, name)); err != nil {
			return cove.Errorf(cove.CodeUnavailable, "creating cgroup %s: %w", filepath.Join(dir, name), err)
		}
	}

	user := filepath.Join(dir, userDir)
	if err := setLimit(filepath.Join(user, "memory.max"), strconv.FormatInt(l.MemoryBytes, 10)); err != nil {
		return err
	}
	// Without swap accounting there is no memory.swap.max, and memory.max
	// alone bounds the group.
	if sw := filepath.Join(user, "memory.swap.max"); exists(sw) {
		if err := setLimit(sw, "0"); err != nil {
			return err
		}
	}
	if err := setLimit(filepath.Join(user, "pids.max"), strconv.Itoa(l.Pids)); err != nil {
		return err
	}
	// The CPU limit bounds the whole sandbox, agent included: what the
	// agent does for the sandbox (a listing of a deep tree, an archive) is
	// the sandbox's work too, and must not take more of the machine.
	cpuMax := strconv.FormatInt(cpuQuota(l.CPUs), 10) + " " + strconv.Itoa(cfsPeriod)
	if err := setLimit(filepath.Join(dir, "cpu.max"), cpuMax); err != nil {
		return err
	}
	if err := setLimit(filepath.Join(user, "cpu.max"), cpuMax); err != nil {
		return err
	}
	if err := setLimit(filepath.Join(user, "cgroup.subtree_control"), v2Controllers); err != nil {
		return err
	}

	// Delegation. The agent creates and removes e<N> in user, starts
	// children in them with CLONE_INTO_CGROUP, kills them with cgroup.kill
	// and resets memory.peak. A migration (clone3 into a cgroup included)
	// needs write access to cgroup.procs of the common ancestor of the
	// source (<id>/agent) and the destination (<id>/user/e<N>), which is
	// <id>: that file is delegated too. Processes cannot be put into <id>
	// or user themselves (they have controllers enabled for children), and
	// the agent cannot open agent/cgroup.procs, so nothing can leave the
	// user subtree. Limit files and subtree_control stay root's.
	paths := []string{
		filepath.Join(dir, "cgroup.procs"),
		user,
		filepath.Join(user, "cgroup.procs"),
	}
	for _, opt := range []string{"cgroup.kill", "memory.peak"} {
		if p := filepath.Join(user, opt); exists(p) {
			paths = append(paths, p)
		}
	}
	for _, p := range paths {
		if err := delegate(p, uid, gid); err != nil {
			return err
		}
	}
	return nil
}
