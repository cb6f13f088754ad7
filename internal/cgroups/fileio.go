package cgroups

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// writeFile writes val to the existing cgroup control file at path. It
// never creates the file: a missing control file is an error.
func writeFile(path, val string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(val)
	cerr := f.Close()
	if werr != nil {
		return werr
	}
	return cerr
}

// exists reports whether path exists.
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// parsePids parses the contents of a cgroup.procs or tasks file.
func parsePids(data []byte) ([]int, error) {
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("parsing pid %q: %w", f, err)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// parseInt parses a single-value control file ("12345\n"); "max" is -1.
func parseInt(data []byte) (int64, error) {
	s := string(bytes.TrimSpace(data))
	if s == "max" {
		return -1, nil
	}
	return strconv.ParseInt(s, 10, 64)
}

// parseKeyed returns the value of key in a flat keyed file such as
// memory.events ("oom_kill 3") or cpu.stat ("usage_usec 1500").
func parseKeyed(data []byte, key string) (int64, bool, error) {
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || k != key {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("parsing %s: %w", key, err)
		}
		return n, true, nil
	}
	return 0, false, nil
}

// openAt opens name relative to the directory descriptor dir. It is what
// the agent uses, since it cannot reach the cgroup paths themselves.
func openAt(dir int, name string, flags int) (*os.File, error) {
	for {
		fd, err := unix.Openat(dir, name, flags|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "openat", Path: name, Err: err}
		}
		return os.NewFile(uintptr(fd), name), nil
	}
}

// writeAt writes val to the existing control file name under dir.
func writeAt(dir int, name, val string) error {
	f, err := openAt(dir, name, unix.O_WRONLY|unix.O_TRUNC)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(val)
	cerr := f.Close()
	if werr != nil {
		return werr
	}
	return cerr
}

// readAt reads the control file name under dir.
func readAt(dir int, name string) ([]byte, error) {
	f, err := openAt(dir, name, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
