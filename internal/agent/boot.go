package agent

import (
	"errors"
	"fmt"
	"os"
)

// Arg is the first command-line argument that makes the cove binary run as
// a sandbox's agent instead of the CLI.
const Arg = "__cove_agent"

// Well-known file descriptors of the agent process.
const (
	fdConn        = 3 // the host connection
	fdWorkspace   = 4 // the workspace as a detached mount (open_tree), moved to /workspace
	fdFirstCgroup = 5 // delegated cgroup directories follow
)

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
	// CgroupVersion is 1 or 2; CgroupFiles is how many delegated cgroup
	// directory descriptors follow fdFirstCgroup.
	CgroupVersion int `json:"cgroup_version"`
	CgroupFiles   int `json:"cgroup_files"`
	// Landlock enables Landlock when the kernel has it.
	Landlock bool `json:"landlock"`
	// ReadOnlyBinds are extra host paths bound read-only at the same path.
	ReadOnlyBinds []string `json:"read_only_binds,omitempty"`
}

// BootReply is the agent's answer to the BootConfig.
type BootReply struct {
	OK bool `json:"ok"`
	// Layer names the isolation layer that failed ("mount /proc").
	Layer string `json:"layer,omitempty"`
	Error string `json:"error,omitempty"`
	// Landlock reports the Landlock ABI in force (0: none).
	Landlock int `json:"landlock"`
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
