package kernels

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// tracebackTail is what a traceback shows under its last "File" line:
// the source line, the carets if any, and the error.
func tracebackTail(tb string) string {
	i := strings.LastIndex(tb, "  File ")
	if i < 0 {
		return tb
	}
	tail := tb[i:]
	return tail[strings.Index(tail, "\n")+1:]
}

// TestPythonTracebacksLineUp checks that a cell's traceback shows its
// line and carets exactly as the same interpreter shows them for the
// same code in a file: neither the last line without a newline nor a
// form feed in the code moves them.
func TestPythonTracebacksLineUp(t *testing.T) {
	d := startDriver(t, "python")
	argv, _ := Argv("python")
	for _, code := range []string{
		"x = 1/0",
		"x = 1/0\n",
		"def f():\n    return 1/0\nf()",
		"s = '\f'\ny = [1, 2]\nx = y[0] + y[5]",
		"a = 1\r\nb = a.nope",
	} {
		ms := d.run(code)
		ex := only(ms, "exception")
		if len(ex) != 1 {
			t.Fatalf("%q: exceptions %+v", code, ms)
		}
		got := tracebackTail(strings.Join(ex[0].Traceback, ""))
		file := filepath.Join(t.TempDir(), "cell.py")
		if err := os.WriteFile(file, []byte(code), 0o644); err != nil {
			t.Fatal(err)
		}
		out, _ := exec.Command(argv[0], "-I", file).CombinedOutput()
		want := tracebackTail(string(out))
		if got != want {
			t.Errorf("%q: the cell's traceback ends\n%s\nplain %s shows\n%s", code, got, argv[0], want)
		}
	}
}
