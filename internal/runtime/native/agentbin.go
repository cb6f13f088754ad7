package native

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// keepAgentCopies is how many sealed agent binaries stay in the agent
// directory: the current one and a few older ones that running sandboxes of
// other cove versions may still use.
const keepAgentCopies = 3

// sealedAgent returns the path of a private, immutable copy of exe under
// dir, making it on first use. The agent of every sandbox runs from this
// copy: even a process that got hold of the agent's /proc/1/exe could
// neither change the cove binary that root runs nor this copy (the
// directory is root's alone, and the file is read-only).
// The agent is started from a descriptor of the copy, so it needs no
// access to the directory.
// The copy is keyed by exe's size, modification time and inode, so a new
// cove binary gets a new copy; making one costs a few milliseconds, once.
func sealedAgent(dir, exe string) (string, error) {
	fi, err := os.Stat(exe)
	if err != nil {
		return "", err
	}
	st := fi.Sys().(*syscall.Stat_t)
	name := fmt.Sprintf("cove-agent-%d-%d-%d", fi.Size(), fi.ModTime().UnixNano(), st.Ino)
	if cfi, err := os.Stat(filepath.Join(dir, name)); err == nil && cfi.Size() == fi.Size() {
		return filepath.Join(dir, name), nil
	}
	src, err := os.Open(exe)
	if err != nil {
		return "", err
	}
	defer src.Close()
	return writeCopy(dir, name, src)
}

// sealedEmbeddedAgent is sealedAgent for an agent binary held in memory,
// keyed by its SHA-256.
func sealedEmbeddedAgent(dir string, bin []byte, sha string) (string, error) {
	name := "cove-agent-" + sha
	if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.Size() == int64(len(bin)) {
		return filepath.Join(dir, name), nil
	}
	return writeCopy(dir, name, bytes.NewReader(bin))
}

// writeCopy writes src as dir/name, read-only, atomically.
func writeCopy(dir, name string, src io.Reader) (string, error) {
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-agent-")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, src); err != nil {
		tmp.Close()
		return "", fmt.Errorf("writing the agent binary: %w", err)
	}
	if err := tmp.Chmod(0o555); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", err
	}
	tmp.Close()
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	pruneAgents(dir, name)
	return path, nil
}

// pruneAgents removes all but the newest copies.
func pruneAgents(dir, current string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type copyInfo struct {
		name string
		mod  int64
	}
	var copies []copyInfo
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "cove-agent-") || e.Name() == current {
			continue
		}
		if fi, err := e.Info(); err == nil {
			copies = append(copies, copyInfo{e.Name(), fi.ModTime().UnixNano()})
		}
	}
	sort.Slice(copies, func(i, j int) bool { return copies[i].mod > copies[j].mod })
	for i, c := range copies {
		if i < keepAgentCopies-1 {
			continue
		}
		p := filepath.Join(dir, c.name)
		os.Remove(p)
	}
}
