package kernels

import (
	"bytes"
	"encoding/base64"
	"image/png"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// hasModule reports whether the driver's interpreter can import module.
func hasModule(t *testing.T, module string) bool {
	t.Helper()
	argv, _ := Argv("python")
	return exec.Command(argv[0], "-c", "import "+module).Run() == nil
}

// only returns the messages of type typ.
func only(ms []message, typ string) []message {
	var out []message
	for _, m := range ms {
		if m.Type == typ {
			out = append(out, m)
		}
	}
	return out
}

// stdout joins the stdout text of ms.
func stdout(ms []message) string {
	var b strings.Builder
	for _, m := range only(ms, "stdout") {
		b.WriteString(m.Text)
	}
	return b.String()
}

// wantDone checks the last message is done with status.
func wantDone(t *testing.T, ms []message, status string) {
	t.Helper()
	last := ms[len(ms)-1]
	if last.Type != "done" || last.Status != status {
		t.Fatalf("cell ended with %+v, want done %q; messages: %+v", last, status, ms)
	}
}

// result returns the text/plain of the cell's one result.
func result(t *testing.T, ms []message) string {
	t.Helper()
	rs := only(ms, "result")
	if len(rs) != 1 {
		t.Fatalf("got %d results, want 1: %+v", len(rs), ms)
	}
	return rs[0].Bundle["text/plain"]
}

// TestPythonCommandLine: the driver comes on python's standard input,
// not on its command line; the cells see an empty sys.argv[0], the
// working directory first on sys.path, and standard input at its end.
func TestPythonCommandLine(t *testing.T) {
	argv, _ := Argv("python")
	if n := len(strings.Join(argv, " ")); n > 100 {
		t.Errorf("the driver's command line is %d bytes long: %q", n, argv)
	}
	d := startDriver(t, "python")
	ms := d.run("import sys\nsys.argv, sys.path[0], sys.stdin.read()")
	wantDone(t, ms, "ok")
	if got := result(t, ms); got != "([''], '', '')" {
		t.Errorf("sys.argv, sys.path[0], sys.stdin.read(): %s", got)
	}
}

func TestPythonPersistenceAndResults(t *testing.T) {
	d := startDriver(t, "python")
	ms := d.run("import math\nx = 41\ndef f(y):\n    return y * 2\nfh = open('notes.txt', 'w')")
	wantDone(t, ms, "ok")
	if len(only(ms, "result")) != 0 {
		t.Errorf("a cell ending in an assignment sent a result: %+v", ms)
	}
	ms = d.run("fh.write('kept open'); fh.flush()\nx + 1")
	wantDone(t, ms, "ok")
	if got := result(t, ms); got != "42" {
		t.Errorf("x + 1 = %q, want 42", got)
	}
	ms = d.run("f(x), math.pi > 3, __name__, open('notes.txt').read()")
	wantDone(t, ms, "ok")
	if got := result(t, ms); got != "(82, True, '__main__', 'kept open')" {
		t.Errorf("result %q", got)
	}
	// None shows nothing; the value of the last expression is also _.
	ms = d.run("None")
	if len(only(ms, "result")) != 0 {
		t.Errorf("None sent a result: %+v", ms)
	}
	d.run("'a' * 3\n")
	ms = d.run("_ + '!'")
	if got := result(t, ms); got != "'aaa!'" {
		t.Errorf("_ + '!' = %q", got)
	}
	// Objects with IPython's representation methods.
	ms = d.run(`class Rich:
    def _repr_html_(self):
        return "<b>rich</b>"
    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/markdown": "**rich**"}
    def __repr__(self):
        return "Rich()"
Rich()`)
	wantDone(t, ms, "ok")
	b := only(ms, "result")[0].Bundle
	if b["text/html"] != "<b>rich</b>" || b["text/markdown"] != "**rich**" || b["text/plain"] != "Rich()" {
		t.Errorf("bundle %v", b)
	}
	// Top-level await.
	ms = d.run("import asyncio\nawait asyncio.sleep(0)\nawait asyncio.sleep(0, result=7)")
	wantDone(t, ms, "ok")
	if got := result(t, ms); got != "7" {
		t.Errorf("await result %q", got)
	}
}

func TestPythonOutputOrder(t *testing.T) {
	d := startDriver(t, "python")
	ms := d.run("import sys\nprint('one')\ndisplay(3)\nprint('two', end='')\nsys.stderr.write('err\\n')\nprint('three')\n'last'")
	wantDone(t, ms, "ok")
	var seq []string
	for _, m := range ms {
		switch m.Type {
		case "stdout", "stderr":
			seq = append(seq, m.Type+":"+m.Text)
		case "display", "result":
			seq = append(seq, m.Type+":"+m.Bundle["text/plain"])
		}
	}
	want := "stdout:one\n|display:3|stdout:two|stderr:err\n|stdout:three\n|result:'last'"
	if got := strings.Join(seq, "|"); got != want {
		t.Errorf("order:\n got %q\nwant %q", got, want)
	}
	// Invalid UTF-8 written through sys.stdout.buffer and lone surrogates
	// still make valid messages (the harness fails on malformed JSON).
	ms = d.run("import os\nsys.stdout.buffer.write(b'a\\xffb\\n')\nprint(os.fsdecode(b'\\xfe'))\n'\\udcff'")
	wantDone(t, ms, "ok")
	if got := stdout(ms); got != "a\uFFFDb\n\uFFFD\n" {
		t.Errorf("stdout %q", got)
	}
	// What subprocesses write to fds 1 and 2 goes to the real pipes.
	ms = d.run("import subprocess\nsubprocess.run(['echo', 'from a child'])\nprint('mine')")
	wantDone(t, ms, "ok")
	if got := stdout(ms); got != "mine\n" {
		t.Errorf("stdout %q", got)
	}
}

func TestPythonExceptions(t *testing.T) {
	d := startDriver(t, "python")
	ms := d.run("def g():\n    return 1 / 0\n\nx = 5\ng()")
	wantDone(t, ms, "error")
	ex := only(ms, "exception")
	if len(ex) != 1 {
		t.Fatalf("exceptions: %+v", ms)
	}
	e := ex[0]
	// The line is the innermost frame's of the cell: in g.
	if e.Name != "ZeroDivisionError" || e.Message != "division by zero" || e.Line != 2 {
		t.Errorf("exception %+v, want ZeroDivisionError at line 2", e)
	}
	tb := strings.Join(e.Traceback, "")
	for _, want := range []string{`File "<cell>", line 5, in <module>`, "    g()", `File "<cell>", line 2, in g`, "    return 1 / 0", "ZeroDivisionError: division by zero"} {
		if !strings.Contains(tb, want) {
			t.Errorf("traceback lacks %q:\n%s", want, tb)
		}
	}
	if strings.Contains(tb, "<string>") || strings.Contains(tb, "<stdin>") || strings.Contains(tb, "_run") || strings.Contains(tb, "_cell") {
		t.Errorf("traceback shows the driver's frames:\n%s", tb)
	}
	// An error raised in a library points at the cell's line that
	// called it.
	ms = d.run("import json\n\njson.loads('{')")
	wantDone(t, ms, "error")
	if e := only(ms, "exception"); len(e) != 1 || e[0].Name != "JSONDecodeError" || e[0].Line != 3 || !strings.Contains(strings.Join(e[0].Traceback, ""), "json/decoder.py") {
		t.Errorf("error in a library: %+v", ms)
	}
	// The cell's statements before the error ran.
	if got := result(t, d.run("x")); got != "5" {
		t.Errorf("x = %q", got)
	}

	ms = d.run("a = 1\nb = (\nc = 3")
	wantDone(t, ms, "error")
	e = only(ms, "exception")[0]
	if e.Name != "SyntaxError" || e.Line != 2 {
		t.Errorf("syntax error %+v, want SyntaxError at line 2", e)
	}

	ms = d.run("import sys\nsys.exit(3)")
	wantDone(t, ms, "error")
	if e := only(ms, "exception"); len(e) != 1 || e[0].Name != "SystemExit" || e[0].Message != "3" {
		t.Errorf("sys.exit: %+v", ms)
	}
	ms = d.run("raise SystemExit")
	wantDone(t, ms, "error")
	ms = d.run("input('name? ')")
	wantDone(t, ms, "error")
	if e := only(ms, "exception"); len(e) != 1 || e[0].Name != "EOFError" || !strings.Contains(e[0].Message, "standard input") {
		t.Errorf("input(): %+v", ms)
	}
	// A representation that fails is reported and the text still shown.
	ms = d.run("class Bad:\n    def _repr_html_(self):\n        raise ValueError('no html')\nBad()")
	wantDone(t, ms, "ok")
	if rs := only(ms, "result"); len(rs) != 1 || !strings.HasPrefix(rs[0].Bundle["text/plain"], "<__main__.Bad object") {
		t.Errorf("result of Bad(): %+v", ms)
	}
	if got := only(ms, "stderr"); len(got) == 0 || !strings.Contains(got[0].Text, "no html") {
		t.Errorf("the failing representation was not reported: %+v", ms)
	}
	// Still alive.
	if got := result(t, d.run("x * 2")); got != "10" {
		t.Errorf("after the errors x * 2 = %q", got)
	}
}

func TestPythonInterrupt(t *testing.T) {
	d := startDriver(t, "python")
	wantDone(t, d.run("kept = 'yes'"), "ok")
	// SIGINT between cells does nothing.
	d.interrupt()
	time.Sleep(50 * time.Millisecond)
	// A cell that prints all the time is interrupted between whole
	// messages (the harness fails on a malformed one).
	for _, code := range []string{"while True:\n    pass", "import time\nprint('sleeping')\ntime.sleep(100)", "while True:\n    print('y' * 5000)"} {
		d.send(map[string]any{"type": "run", "code": code, "filename": "<cell 2>"})
		if strings.Contains(code, "print") {
			// Wait until the cell runs.
			if m := d.next(); m.Type != "stdout" {
				t.Fatalf("first message %+v", m)
			}
		}
		time.Sleep(300 * time.Millisecond)
		start := time.Now()
		d.interrupt()
		ms := d.collect()
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("the interrupt took %v", took)
		}
		wantDone(t, ms, "interrupted")
		e := only(ms, "exception")
		if len(e) != 1 || e[0].Name != "KeyboardInterrupt" || e[0].Line == 0 {
			t.Errorf("interrupt of %q: %+v", code, ms)
		}
		if len(e) == 1 && strings.Contains(strings.Join(e[0].Traceback, ""), "_on_sigint") {
			t.Errorf("the traceback shows the driver's handler: %q", e[0].Traceback)
		}
		if got := result(t, d.run("kept")); got != "'yes'" {
			t.Errorf("after the interrupt kept = %q", got)
		}
	}
}

func TestPythonMatplotlib(t *testing.T) {
	if !hasModule(t, "matplotlib") {
		t.Skip("matplotlib is not installed for /usr/bin/python3")
	}
	d := startDriver(t, "python")
	ms := d.run("import matplotlib.pyplot as plt\nfig = plt.figure(figsize=(4, 3), dpi=100)\nplt.plot([1, 2, 3], [1, 4, 9])\nprint('before')\nplt.show()\nprint('after')")
	wantDone(t, ms, "ok")
	var seq []string
	for _, m := range ms {
		seq = append(seq, m.Type)
	}
	if got := strings.Join(seq, " "); got != "stdout display stdout done" {
		t.Fatalf("messages: %s", got)
	}
	ds := only(ms, "display")
	checkPNG(t, ds[0].Bundle, 400, 300)
	if got := ds[0].Bundle["text/plain"]; got != "<Figure size 400x300 with 1 Axes>" {
		t.Errorf("text/plain %q", got)
	}
	// Figures left open at the end of a cell are shown and closed.
	ms = d.run("plt.figure(figsize=(2, 1), dpi=50)\nplt.bar([1], [2]);\nplt.figure(figsize=(3, 2), dpi=100); 7")
	wantDone(t, ms, "ok")
	ds = only(ms, "display")
	if len(ds) != 2 {
		t.Fatalf("displays: %+v", ms)
	}
	checkPNG(t, ds[0].Bundle, 100, 50)
	checkPNG(t, ds[1].Bundle, 300, 200)
	if got := result(t, d.run("len(plt.get_fignums())")); got != "0" {
		t.Errorf("open figures after the cell: %s", got)
	}
}

// checkPNG decodes b's image/png and checks its size.
func checkPNG(t *testing.T, b map[string]string, w, h int) {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b["image/png"])
	if err != nil {
		t.Fatalf("image/png is not base64: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("image/png is not a PNG: %v", err)
	}
	if got := img.Bounds().Size(); got.X != w || got.Y != h {
		t.Errorf("image is %dx%d, want %dx%d", got.X, got.Y, w, h)
	}
}

func TestPythonPandas(t *testing.T) {
	if !hasModule(t, "pandas") {
		t.Skip("pandas is not installed for /usr/bin/python3")
	}
	d := startDriver(t, "python")
	ms := d.run("import pandas as pd\ndf = pd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})\ndf")
	wantDone(t, ms, "ok")
	b := only(ms, "result")
	if len(b) != 1 || !strings.Contains(b[0].Bundle["text/html"], "<table") || !strings.Contains(b[0].Bundle["text/plain"], "a  b") {
		t.Errorf("DataFrame bundle: %+v", ms)
	}
	ms = d.run("display(df.a)\nNone")
	if ds := only(ms, "display"); len(ds) != 1 || !strings.Contains(ds[0].Bundle["text/plain"], "Name: a") {
		t.Errorf("display of a Series: %+v", ms)
	}
}

// TestPythonCellSpeed checks that a trivial cell is quick: the median
// round trip through the pipes bounds the time the driver spends on it.
func TestPythonCellSpeed(t *testing.T) {
	d := startDriver(t, "python")
	d.run("x = 1")
	const n = 400
	times := make([]time.Duration, n)
	for i := range times {
		start := time.Now()
		ms := d.run("x + 1")
		times[i] = time.Since(start)
		if len(ms) != 2 || ms[0].Bundle["text/plain"] != "2" {
			t.Fatalf("x + 1: %+v", ms)
		}
	}
	slices.Sort(times)
	median := times[n/2]
	t.Logf("trivial cell round trip: median %v, fastest %v", median, times[0])
	if median > time.Millisecond {
		t.Errorf("a trivial cell takes %v (median round trip), want well under 1 ms", median)
	}
}
