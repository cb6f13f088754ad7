package native

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Each sandbox owns a slot: a lock file held (flock) by the cove process
// that created the sandbox, for the sandbox's whole life. The slot number
// picks the sandbox's host uid/gid range, so no two live sandboxes share
// ids, and a slot whose lock can be taken belongs to a dead process: its
// sandbox's leftovers may be swept. The kernel drops the lock when the
// process dies, even by SIGKILL.
type slots struct {
	dir string
	max int
	// data is the absolute data directory of this process's workspaces,
	// recorded in each slot: the slot directory is the machine's, shared
	// by every cove whatever its data directory, and only a cove with the
	// same one may remove a dead sandbox's workspace.
	data string

	// held are the slots this process holds: acquire skips them without
	// opening their files, so that taking a slot does not cost a system
	// call or three per sandbox already running.
	mu   sync.Mutex
	held map[int]bool
}

// ephemeralMark follows the id in the slot file of an ephemeral sandbox.
const ephemeralMark = " ephemeral"

// dataMark comes before the data directory in a slot file.
const dataMark = "\ndata "

// deadSandbox is what a dead owner's slot says.
type deadSandbox struct {
	id        string
	ephemeral bool
	// data is the owner's data directory ("" in slots written before it
	// was recorded).
	data string
}

// parseRecord reads a slot file's record: "<id>[ ephemeral][\ndata <dir>]".
func parseRecord(rec string) deadSandbox {
	rec, data, _ := strings.Cut(rec, dataMark)
	id, ephemeral := strings.CutSuffix(rec, ephemeralMark)
	return deadSandbox{id: id, ephemeral: ephemeral, data: data}
}

type slot struct {
	n  int
	f  *os.File
	of *slots
}

func (s *slots) path(n int) string { return filepath.Join(s.dir, strconv.Itoa(n)+".lock") }

// acquire takes the lowest free slot, so that the slot directory stays as
// small as the peak number of sandboxes.
func (s *slots) acquire(id string, ephemeral bool) (*slot, error) {
	record := id
	if ephemeral {
		record += ephemeralMark
	}
	if s.data != "" {
		record += dataMark + s.data
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil {
		s.held = map[int]bool{}
	}
	for n := 0; n < s.max; n++ {
		if s.held[n] {
			continue
		}
		f, err := os.OpenFile(s.path(n), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("opening slot lock: %w", err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		// A slot that still names a sandbox belongs to one whose owner
		// died: it stays taken until Sweep has removed its leftovers.
		if fi, err := f.Stat(); err != nil || fi.Size() > 0 {
			f.Close()
			continue
		}
		err = f.Truncate(0)
		if err == nil {
			_, err = f.WriteAt([]byte(record), 0)
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("writing slot lock: %w", err)
		}
		s.held[n] = true
		return &slot{n: n, f: f, of: s}, nil
	}
	return nil, fmt.Errorf("all %d sandbox slots are in use", s.max)
}

func (sl *slot) release() {
	if sl == nil || sl.f == nil {
		return
	}
	sl.f.Truncate(0)
	sl.f.Close()
	sl.f = nil
	if sl.of != nil {
		sl.of.mu.Lock()
		delete(sl.of.held, sl.n)
		sl.of.mu.Unlock()
	}
}

// scan returns the ids of sandboxes whose owning process is alive, and
// those of sandboxes whose owner died, by slot number. It also removes the
// lock files of free slots that name no sandbox: the directory would
// otherwise keep the size of its busiest moment, and every scan after it
// would pay for every file. The caller must hold the sweep lock
// exclusively, so that no one is between opening a slot's file and
// locking it (acquire runs under the shared lock).
func (s *slots) scan() (live map[string]bool, dead map[int]deadSandbox, err error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, nil, err
	}
	live, dead = map[string]bool{}, map[int]deadSandbox{}
	for _, e := range ents {
		n, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".lock"))
		if err != nil || !strings.HasSuffix(e.Name(), ".lock") {
			continue
		}
		f, err := os.OpenFile(filepath.Join(s.dir, e.Name()), os.O_RDWR, 0)
		if err != nil {
			continue
		}
		buf := make([]byte, 64+unix.PathMax)
		k, _ := f.ReadAt(buf, 0)
		rec := parseRecord(string(buf[:k]))
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			if rec.id != "" {
				live[rec.id] = true
			}
		} else if rec.id != "" {
			dead[n] = rec
		} else {
			// Free and empty, and locked by us until the close.
			os.Remove(filepath.Join(s.dir, e.Name()))
		}
		f.Close()
	}
	return live, dead, nil
}

// clear forgets the sandbox recorded in slot n, if no one holds it.
func (s *slots) clear(n int) {
	f, err := os.OpenFile(s.path(n), os.O_RDWR, 0)
	if err != nil {
		return
	}
	defer f.Close()
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
		f.Truncate(0)
	}
}
