package agent

import "runtime"

// The agent's main goroutine must run on the process's main thread: on
// cgroup v1 the process's memory is charged to the main thread's cgroup,
// and the fork thread, which moves into the user's cgroups, must be another
// one. main.main can start on any thread, so lock it here, during package
// initialization, when the runtime still runs the main goroutine on the
// main thread; Main locks again, which only nests.
func init() {
	if IsAgentInvocation() {
		runtime.LockOSThread()
	}
}
