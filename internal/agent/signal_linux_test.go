package agent

import (
	"syscall"
	"testing"
	"time"
)

// TestExitedUnreaped: a child that has exited is seen as exited before it
// is reaped, without reaping it; a running child is not.
func TestExitedUnreaped(t *testing.T) {
	start := func(argv ...string) int {
		pid, err := syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{})
		if err != nil {
			t.Fatalf("starting %v: %v", argv, err)
		}
		return pid
	}
	running := start("/bin/sleep", "30")
	defer func() {
		syscall.Kill(running, syscall.SIGKILL)
		syscall.Wait4(running, nil, 0, nil)
	}()
	exited := start("/bin/true")
	deadline := time.Now().Add(10 * time.Second)
	for !exitedUnreaped(exited) {
		if time.Now().After(deadline) {
			t.Fatal("a child that exited is not seen as exited")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// It is still there to reap: looking did not reap it.
	var ws syscall.WaitStatus
	if pid, err := syscall.Wait4(exited, &ws, syscall.WNOHANG, nil); pid != exited || err != nil || ws.ExitStatus() != 0 {
		t.Fatalf("reaping after the look: pid %d (want %d), %v", pid, exited, err)
	}
	if exitedUnreaped(exited) {
		t.Error("a reaped child is seen as exited and unreaped")
	}
	if exitedUnreaped(running) {
		t.Error("a running child is seen as exited")
	}
}
