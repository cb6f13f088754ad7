package native

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSlots takes the lowest free slot, skips the ones this process holds
// without opening them, reuses a released one, and respects the locks of
// another holder (a second slots value locks through its own open files,
// as another cove process would).
func TestSlots(t *testing.T) {
	dir := t.TempDir()
	mine := &slots{dir: dir, max: 8}
	var got []*slot
	for i := range 3 {
		sl, err := mine.acquire("sb"+string(rune('a'+i)), false)
		if err != nil {
			t.Fatal(err)
		}
		if sl.n != i {
			t.Fatalf("slot %d, want %d", sl.n, i)
		}
		got = append(got, sl)
	}
	got[1].release()
	sl, err := mine.acquire("sbd", true)
	if err != nil {
		t.Fatal(err)
	}
	if sl.n != 1 {
		t.Fatalf("after releasing slot 1, got slot %d", sl.n)
	}
	other := &slots{dir: dir, max: 8}
	osl, err := other.acquire("sbe", false)
	if err != nil {
		t.Fatal(err)
	}
	if osl.n != 3 {
		t.Fatalf("another holder got slot %d, want 3", osl.n)
	}
	live, dead, err := mine.scan()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"sba", "sbc", "sbd", "sbe"} {
		if !live[id] {
			t.Errorf("scan does not see %s as live: %v", id, live)
		}
	}
	if len(dead) != 0 {
		t.Errorf("dead slots %v", dead)
	}
	full := &slots{dir: dir, max: 4}
	if _, err := full.acquire("sbf", false); err == nil {
		t.Error("a fifth sandbox got one of four slots")
	}
	for _, s := range append(got, sl, osl) {
		s.release()
	}
	// A scan removes the files of free slots, so that the directory does
	// not keep the size of its busiest moment.
	if _, _, err := mine.scan(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("slot files left after a scan with every slot free: %v", ents)
	}
	again, err := mine.acquire("sbg", false)
	if err != nil {
		t.Fatal(err)
	}
	if again.n != 0 {
		t.Errorf("after the scan, got slot %d, want 0", again.n)
	}
	again.release()
}

// TestSlotRecordNotWritten: a slot whose record cannot be written (a full
// run directory) is not taken, since a sweep after a crash could not tell
// whose leftovers it holds.
func TestSlotRecordNotWritten(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=4k"); err != nil {
		t.Fatalf("mounting a small tmpfs: %v", err)
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	// Fill it: the slot's lock file can be made, its record not written.
	os.WriteFile(filepath.Join(dir, "fill"), make([]byte, 64<<10), 0o600)
	s := &slots{dir: dir, max: 2}
	if sl, err := s.acquire("sb", false); err == nil {
		t.Fatalf("took slot %d without writing its record", sl.n)
	}
}
