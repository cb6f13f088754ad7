package main

import (
	"bytes"
	"context"
	"flag"

	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove/internal/agent"
	"github.com/cove-sandbox/cove/internal/volume"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestMain(m *testing.M) {
	// The test binary doubles as the agent and, for crash tests, as the
	// cove command itself.
	if agent.IsAgentInvocation() {
		agent.Main()
		return
	}
	if os.Getenv("COVE_TEST_AS_CLI") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// cli runs cove commands in-process against its own data and run
// directories.
type cli struct {
	t    *testing.T
	env  map[string]string
	data string
	run  string
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("cove run needs root (run the tests as root)")
	}
	dir := t.TempDir()
	c := &cli{t: t, data: filepath.Join(dir, "data"), run: filepath.Join(dir, "run")}
	c.env = map[string]string{"COVE_DATA_DIR": c.data, "COVE_RUN_DIR": c.run}
	t.Cleanup(func() {
		unix.Unmount(filepath.Join(c.run, "cgroup-favor"), unix.MNT_DETACH)
		if err := volume.Unmount(c.data); err != nil {
			t.Errorf("unmounting volume: %v", err)
		}
	})
	return c
}

type result struct {
	stdout, stderr string
	code           int
}

func (c *cli) do(stdin string, args ...string) result {
	c.t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb, func(k string) string { return c.env[k] })
	return result{out.String(), errb.String(), code}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/cove -update to create it)", err)
	}
	if string(want) != got {
		t.Fatalf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPrintable checks that what cove prints of a message (which may
// repeat names that code in a sandbox chose) cannot act on the terminal.
func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"plain message: a/b.txt":             "plain message: a/b.txt",
		"tab\tkept, ünïcode kept":            "tab\tkept, ünïcode kept",
		"cannot read u/\x1b]0;HACKED\x07x":   `cannot read u/\x1b]0;HACKED\x07x`,
		"clear \x1b[2J and \x9b1m, del \x7f": `clear \x1b[2J and \x9b1m, del \x7f`,
		"line\nbreak\rback":                  `line\x0abreak\x0dback`,
		"bidi \u202egnp.exe":                 `bidi \u202egnp.exe`,
		"bad \xff byte":                      `bad \xff byte`,
		"c1 as a character \u009b":           `c1 as a character \x9b`,
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}
