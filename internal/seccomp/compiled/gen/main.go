// Command gen writes the programs package compiled embeds, from the policy
// in package seccomp. Run it with go generate in internal/seccomp/compiled.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/cove-sandbox/cove/internal/seccomp"
	"github.com/cove-sandbox/cove/internal/seccomp/compiled"
)

func main() {
	for _, v := range compiled.Variants {
		b, err := seccomp.Encoded(v.GOARCH, seccomp.Options{AllowClone3: v.AllowClone3})
		if err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
		if err := os.WriteFile(filepath.Join("bpf", compiled.Name(v.GOARCH, v.AllowClone3)), b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
	}
}
