package agent

import (
	"errors"
	"fmt"
	"os"
)

// Arg is the first command-line argument that makes the cove binary run as
// a sandbox's agent instead of the CLI.
const Arg = "__cove_agent"

// fdConn is the agent's connection to the host. Two boot messages come on
// it: the BootConfig, then the BootResources with their descriptors.
const fdConn = 3

// BootConfig is the first message on the connection: everything the agent
// needs to finish isolating the sandbox from the inside.
type BootConfig struct {
	// RootDir is an empty host directory over which the new root is built.
	RootDir string `json:"root_dir"`
	// Hostname is the sandbox's host name.
	Hostname string `json:"hostname"`
	// UID and GID are the ids user code runs as inside the sandbox.
	UID int `json:"uid"`
	GID int `json:"gid"`
	// TmpBytes sizes /tmp and /dev/shm.
	TmpBytes int64 `json:"tmp_bytes"`
	// NoFile and FSize are the rlimits of user processes.
	NoFile uint64 `json:"nofile"`
	FSize  uint64 `json:"fsize"`
	// CgroupVersion is 1 or 2.
	CgroupVersion int `json:"cgroup_version"`
	// Landlock enables Landlock when the kernel has it.
	Landlock bool `json:"landlock"`
	// Seccomp is the sandbox's seccomp filter, compiled by the host (see
	// package sockfilter). The agent refuses to start without one.
	Seccomp []byte `json:"seccomp"`
	// ReadOnlyBinds are extra host paths bound read-only at the same path.
	ReadOnlyBinds []string `json:"read_only_binds,omitempty"`
}

// BootResources is the second boot message. It carries descriptors: the
// workspace and the sandbox's /etc as detached mounts (open_tree), then
// CgroupFiles delegated cgroup directories.
type BootResources struct {
	CgroupFiles int `json:"cgroup_files"`
}

// BootReply is the agent's answer to the BootConfig.
type BootReply struct {
	OK bool `json:"ok"`
	// Layer names the isolation layer that failed ("mount /proc").
	Layer string `json:"layer,omitempty"`
	Error string `json:"error,omitempty"`
	// Landlock reports the Landlock ABI in force (0: none).
	Landlock int `json:"landlock"`
	// StartMicros is how long the agent took from its start to reading
	// the boot config; Steps time each isolation step after it.
	StartMicros int64  `json:"start_us"`
	Steps       []Step `json:"steps,omitempty"`
}

// Step is one timed isolation step of the agent's boot.
type Step struct {
	Name   string `json:"name"`
	Micros int64  `json:"us"`
}

// SetupError says which isolation layer could not be set up.
type SetupError struct {
	Layer string
	Err   error
}

func (e *SetupError) Error() string { return fmt.Sprintf("setting up %s: %v", e.Layer, e.Err) }

// Unwrap returns the cause.
func (e *SetupError) Unwrap() error { return e.Err }

func layerErr(layer string, err error) error {
	if err == nil {
		return nil
	}
	var se *SetupError
	if errors.As(err, &se) {
		return err
	}
	return &SetupError{Layer: layer, Err: err}
}

// IsAgentInvocation reports whether this process was started as an agent.
func IsAgentInvocation() bool {
	return len(os.Args) > 1 && os.Args[1] == Arg
}
