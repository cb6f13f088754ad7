package compiled_test

import (
	"bytes"
	"testing"

	"github.com/cove-sandbox/cove/internal/seccomp"
	"github.com/cove-sandbox/cove/internal/seccomp/compiled"
	"github.com/cove-sandbox/cove/internal/seccomp/sockfilter"
)

// TestEmbeddedMatchPolicy fails while the embedded programs are not what
// the policy in package seccomp builds now.
func TestEmbeddedMatchPolicy(t *testing.T) {
	for _, v := range compiled.Variants {
		t.Run(compiled.Name(v.GOARCH, v.AllowClone3), func(t *testing.T) {
			want, err := seccomp.Encoded(v.GOARCH, seccomp.Options{AllowClone3: v.AllowClone3})
			if err != nil {
				t.Fatal(err)
			}
			got, err := compiled.ProgramFor(v.GOARCH, v.AllowClone3)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("the embedded seccomp filter is stale (%d bytes, the policy builds %d): run make seccomp", len(got), len(want))
			}
			if _, err := sockfilter.Decode(got); err != nil {
				t.Fatalf("embedded filter: %v", err)
			}
		})
	}
}

// TestVariantsDiffer guards against one program standing in for another.
func TestVariantsDiffer(t *testing.T) {
	seen := map[string]string{}
	for _, v := range compiled.Variants {
		b, err := compiled.ProgramFor(v.GOARCH, v.AllowClone3)
		if err != nil {
			t.Fatal(err)
		}
		name := compiled.Name(v.GOARCH, v.AllowClone3)
		if other, ok := seen[string(b)]; ok {
			t.Errorf("%s and %s are the same program", name, other)
		}
		seen[string(b)] = name
	}
}

func TestUnknownArchitecture(t *testing.T) {
	if _, err := compiled.ProgramFor("mips", false); err == nil {
		t.Fatal("ProgramFor(mips) succeeded")
	}
}
