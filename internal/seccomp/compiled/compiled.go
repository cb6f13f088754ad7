// Package compiled holds cove's seccomp filter ready to install: the
// programs package seccomp builds, assembled ahead of time for each
// architecture and option and embedded here. cove hands them to the
// sandboxes' agents without building syscall tables or assembling BPF, and
// without linking the code that does.
//
// After changing the policy in package seccomp, run
//
//	go generate ./internal/seccomp/compiled
//
// (or make seccomp); a test fails while the embedded programs differ from
// what the policy builds.
package compiled

//go:generate go run ./gen

import (
	"embed"
	"fmt"
	"runtime"
)

//go:embed bpf/*.bpf
var programs embed.FS

// Variants lists the programs embedded, by file name: one per architecture
// and value of allowClone3.
var Variants = []struct {
	GOARCH      string
	AllowClone3 bool
}{
	{"amd64", false}, {"amd64", true},
	{"arm64", false}, {"arm64", true},
}

// Name is the file name of a variant under bpf/.
func Name(goarch string, allowClone3 bool) string {
	if allowClone3 {
		return goarch + "-clone3.bpf"
	}
	return goarch + ".bpf"
}

// Program returns the filter for the running architecture, encoded as
// package sockfilter reads it. allowClone3 is seccomp.Options.AllowClone3.
func Program(allowClone3 bool) ([]byte, error) {
	return ProgramFor(runtime.GOARCH, allowClone3)
}

// ProgramFor returns the filter for a Go architecture name.
func ProgramFor(goarch string, allowClone3 bool) ([]byte, error) {
	b, err := programs.ReadFile("bpf/" + Name(goarch, allowClone3))
	if err != nil {
		return nil, fmt.Errorf("no seccomp filter for architecture %s", goarch)
	}
	return b, nil
}
