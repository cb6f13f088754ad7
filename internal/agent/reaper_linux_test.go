package agent

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReaperSeesChildrenThatEndedBeforeIt: a child that ends before the
// agent listens for SIGCHLD sends its signal to no one. The reaper must
// reap it all the same, or its execution waits for an exit that never
// comes (an exec of /bin/echo hung this way, now and then, when the
// agent's goroutines started slowly).
//
// The reaper waits for any child, so the scenario runs in a process of its
// own, where it cannot take the children of other tests.
func TestReaperSeesChildrenThatEndedBeforeIt(t *testing.T) {
	if os.Getenv("COVE_TEST_REAPER") == "1" {
		reaperScenario(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReaperSeesChildrenThatEndedBeforeIt$", "-test.v")
	cmd.Env = append(os.Environ(), "COVE_TEST_REAPER=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "reaped") {
		t.Fatalf("the scenario failed: %v\n%s", err, out)
	}
}

func reaperScenario(t *testing.T) {
	s := newServer(&BootConfig{}, nil)
	pid, err := syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	exit := make(chan exitInfo, 1)
	s.reapMu.Lock()
	s.procs[pid] = exit
	s.reapMu.Unlock()
	// The child ends, and its SIGCHLD goes, before the reaper starts.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		if f := strings.Fields(string(stat)); len(f) > 2 && f[2] == "Z" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/bin/true did not end")
		}
	}
	s.startReaper()
	select {
	case e := <-exit:
		if !e.status.Exited() || e.status.ExitStatus() != 0 {
			t.Fatalf("exit status %v", e.status)
		}
		t.Log("reaped")
	case <-time.After(5 * time.Second):
		t.Fatal("the child that ended before the reaper started was not reaped")
	}
}
