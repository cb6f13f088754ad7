package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Stats are the resource counters of a sandbox's user subtree.
type Stats struct {
	// MemoryCurrent is the memory in use now, in bytes.
	MemoryCurrent int64
	// MemoryPeak is the high-water mark of memory use, in bytes, since the
	// group was created or the peak was last reset (0 when the kernel does
	// not report it).
	MemoryPeak int64
	// OOMKills counts the processes the kernel killed for exceeding the
	// memory limit.
	OOMKills int64
	// CPUUsage is the CPU time used (0 on v1 without cpuacct).
	CPUUsage time.Duration
	// Pids is the number of processes and threads now.
	Pids int64
}

// constError is an error that can be a constant.
type constError string

func (e constError) Error() string { return string(e) }

// errNoController is returned by a statReader for a controller that is
// not mounted.
const errNoController constError = "controller not mounted"

// statReader reads control file name of the user directory of the
// hierarchy carrying controller ctrl (v1) or of the user directory (v2).
type statReader func(ctrl, name string) ([]byte, error)

// readStats reads Stats in the layout of version v.
func readStats(v Version, read statReader) (Stats, error) {
	var s Stats
	if v == V2 {
		return s, readStatsV2(&s, read)
	}
	return s, readStatsV1(&s, read)
}

// readStatsV1 reads Stats from v1 control files.
func readStatsV1(s *Stats, read statReader) error {
	var err error
	if s.MemoryCurrent, err = readValue(read, ctrlMemory, "memory.usage_in_bytes"); err != nil {
		return err
	}
	if s.MemoryPeak, err = readValue(read, ctrlMemory, "memory.max_usage_in_bytes"); err != nil {
		return err
	}
	if s.OOMKills, err = readKey(read, ctrlMemory, "memory.oom_control", "oom_kill"); err != nil {
		return err
	}
	if s.Pids, err = readValue(read, ctrlPids, "pids.current"); err != nil {
		return err
	}
	ns, err := readValue(read, ctrlCPUAcct, "cpuacct.usage")
	if err != nil && !errors.Is(err, errNoController) {
		return err
	}
	s.CPUUsage = time.Duration(ns)
	return nil
}

// readStatsV2 reads Stats from v2 control files.
func readStatsV2(s *Stats, read statReader) error {
	var err error
	if s.MemoryCurrent, err = readValue(read, ctrlMemory, "memory.current"); err != nil {
		return err
	}
	// memory.peak appeared in Linux 5.19.
	if s.MemoryPeak, err = readValue(read, ctrlMemory, "memory.peak"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if s.OOMKills, err = readKey(read, ctrlMemory, "memory.events", "oom_kill"); err != nil {
		return err
	}
	if s.Pids, err = readValue(read, ctrlPids, "pids.current"); err != nil {
		return err
	}
	usec, err := readKey(read, ctrlCPU, "cpu.stat", "usage_usec")
	if err != nil {
		return err
	}
	s.CPUUsage = time.Duration(usec) * time.Microsecond
	return nil
}

// readValue reads a single-value file.
func readValue(read statReader, ctrl, name string) (int64, error) {
	data, err := read(ctrl, name)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", name, err)
	}
	n, err := parseInt(data)
	if err != nil {
		return 0, fmt.Errorf("parsing %s: %w", name, err)
	}
	return n, nil
}

// readKey reads key from a flat keyed file; a missing key is 0 (older
// kernels lack oom_kill).
func readKey(read statReader, ctrl, name, key string) (int64, error) {
	data, err := read(ctrl, name)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", name, err)
	}
	n, _, err := parseKeyed(data, key)
	if err != nil {
		return 0, fmt.Errorf("parsing %s: %w", name, err)
	}
	return n, nil
}

// Stats reads the counters of the sandbox's user subtree.
func (g *Group) Stats() (Stats, error) {
	s, err := readStats(g.m.version, func(ctrl, name string) ([]byte, error) {
		dir := g.userDirOf(ctrl)
		if dir == "" {
			return nil, errNoController
		}
		return os.ReadFile(filepath.Join(dir, name))
	})
	if err != nil {
		return s, fmt.Errorf("reading cgroup stats of sandbox %s: %w", g.id, err)
	}
	return s, nil
}
