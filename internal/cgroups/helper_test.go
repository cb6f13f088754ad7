package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The test binary doubles as the sandbox agent and as a memory hog, in
// child processes started with these environment variables.
const (
	helperEnv      = "COVE_CGROUPS_TEST_HELPER" // "agent" or "alloc"
	helperFilesEnv = "COVE_CGROUPS_TEST_FILES"  // agent: number of delegated directories from fd 3
	helperMiBEnv   = "COVE_CGROUPS_TEST_MIB"    // alloc: MiB to allocate and touch
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "agent":
		os.Exit(helperAgent())
	case "alloc":
		os.Exit(helperAlloc())
	}
	before := parentsPresent()
	code := m.Run()
	// Remove the parents the tests created, if empty (rmdir fails
	// otherwise, for example while other cove processes use them).
	for p := range parentsPresent() {
		if !before[p] {
			os.Remove(p)
		}
	}
	os.Exit(code)
}

// parentsPresent returns the real cgroup parent directories that exist.
func parentsPresent() map[string]bool {
	ps, _ := filepath.Glob(filepath.Join(DefaultRoot, "*", DefaultParent))
	out := map[string]bool{}
	for _, p := range ps {
		out[p] = true
	}
	return out
}

// helperAlloc allocates and touches memory until it has the amount asked
// for (or the kernel kills it).
func helperAlloc() int {
	mib, _ := strconv.Atoi(os.Getenv(helperMiBEnv))
	var keep [][]byte
	for range mib {
		b := make([]byte, 1<<20)
		for j := 0; j < len(b); j += 4096 {
			b[j] = 1
		}
		keep = append(keep, b)
	}
	fmt.Fprintf(os.Stderr, "allocated %d MiB\n", len(keep))
	runtime.KeepAlive(keep)
	return 0
}

// helperAgent plays the agent: it runs inside a user namespace with the
// delegated directories from fd 3 on and answers line commands on stdin
// with "ok ..." or "err ..." lines on stdout. The children it starts
// write to its stderr.
func helperAgent() int {
	n, _ := strconv.Atoi(os.Getenv(helperFilesEnv))
	files := make([]*os.File, n)
	for i := range files {
		files[i] = os.NewFile(uintptr(3+i), "cgroup"+strconv.Itoa(i))
	}
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() || in.Text() != "go" {
		return 2
	}
	onForkThread(func() { serveAgent(in, files) })
	return 0
}

// serveAgent runs on the agent's fork thread.
func serveAgent(in *bufio.Scanner, files []*os.File) {
	reply := func(v string, err error) {
		if err != nil {
			fmt.Printf("err %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
			return
		}
		fmt.Printf("ok %s\n", v)
	}
	d, err := OpenDelegated(V1, files)
	if err != nil {
		reply("", err)
		return
	}
	if err := d.PrepareForkThread(); err != nil {
		reply("", err)
		return
	}
	reply(strconv.Itoa(os.Getpid())+" "+strconv.Itoa(unix.Gettid()), nil)

	execs := map[int]*Exec{}
	cmds := map[int]*exec.Cmd{}
	start := func(n int, cmd *exec.Cmd) (string, error) {
		e, err := d.NewExec(n)
		if err != nil {
			return "", err
		}
		execs[n] = e
		if err := e.EnterThread(); err != nil {
			return "", err
		}
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			return "", err
		}
		cmds[n] = cmd
		return strconv.Itoa(cmd.Process.Pid), nil
	}
	for in.Scan() {
		f := strings.SplitN(in.Text(), " ", 3)
		n := -1
		if len(f) > 1 {
			n, _ = strconv.Atoi(f[1])
		}
		switch f[0] {
		case "exec": // exec <n> <shell command>
			reply(start(n, exec.Command("/bin/sh", "-c", f[2])))
		case "alloc": // alloc <n> <MiB>
			cmd := exec.Command("/proc/self/exe")
			cmd.Env = []string{helperEnv + "=alloc", helperMiBEnv + "=" + f[2]}
			reply(start(n, cmd))
		case "wait":
			err := cmds[n].Wait()
			if _, ok := err.(*exec.ExitError); ok || err == nil {
				reply(cmds[n].ProcessState.String(), nil)
			} else {
				reply("", err)
			}
		case "pids":
			pids, err := execs[n].Pids()
			reply(strings.Trim(fmt.Sprint(pids), "[]"), err)
		case "kill":
			reply("", execs[n].Kill())
		case "remove":
			reply("", execs[n].Remove())
		case "park":
			reply("", d.ParkThread())
		case "stats":
			s, err := d.Stats()
			reply(fmt.Sprintf("%d %d %d %d %d", s.MemoryCurrent, s.MemoryPeak, s.OOMKills, s.CPUUsage, s.Pids), err)
		case "tamper": // tries to lift limits or leave the user subtree
			var done []string
			for _, w := range []struct{ ctrl, name, val string }{
				{ctrlMemory, "memory.limit_in_bytes", "9223372036854771712"},
				{ctrlMemory, "memory.memsw.limit_in_bytes", "9223372036854771712"},
				{ctrlPids, "pids.max", "max"},
				{ctrlCPU, "cpu.cfs_quota_us", "-1"},
				{ctrlPids, "../pids.max", "1"},
				{ctrlMemory, "../tasks", "0"},
				{ctrlMemory, "../../tasks", "0"},
				{ctrlPids, "../../../tasks", "0"},
			} {
				// Only a permission error counts as refused: any other
				// answer means the probe missed its file.
				if err := writeAt(d.fds[w.ctrl], w.name, w.val); !errors.Is(err, unix.EACCES) {
					done = append(done, fmt.Sprintf("%s/%s (%v)", w.ctrl, w.name, err))
				}
			}
			reply(strings.Join(done, " "), nil)
		case "resetpeak":
			reply("", d.ResetPeak())
		default:
			reply("", fmt.Errorf("unknown command %q", in.Text()))
		}
	}
}

// skipUnlessRoot skips tests that create real cgroups.
func skipUnlessRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root to create real cgroups")
	}
}
