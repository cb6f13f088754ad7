package kernels

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evanw/esbuild/pkg/api"
)

// nodeOfType returns the messages of type typ.
func nodeOfType(ms []message, typ string) []message {
	var out []message
	for _, m := range ms {
		if m.Type == typ {
			out = append(out, m)
		}
	}
	return out
}

// nodeStatus returns the status of the done message that ends ms.
func nodeStatus(ms []message) string {
	return ms[len(ms)-1].Status
}

// nodeOK runs code and fails the test unless it ends ok; it returns the
// cell's messages.
func nodeOK(d *driver, code string) []message {
	d.t.Helper()
	ms := d.run(code)
	if nodeStatus(ms) != "ok" {
		d.t.Fatalf("cell %q: %+v", code, ms)
	}
	return ms
}

// nodeResult runs code and returns the text/plain of its result ("" for none).
func nodeResult(d *driver, code string) string {
	d.t.Helper()
	rs := nodeOfType(nodeOK(d, code), "result")
	if len(rs) == 0 {
		return ""
	}
	if len(rs) > 1 {
		d.t.Fatalf("cell %q: %d results", code, len(rs))
	}
	return rs[0].Bundle["text/plain"]
}

// nodeException runs code, expects it to end with status, and returns its
// exception.
func nodeException(d *driver, code, wantStatus string) message {
	d.t.Helper()
	ms := d.run(code)
	if nodeStatus(ms) != wantStatus {
		d.t.Fatalf("cell %q: status %q, want %q: %+v", code, nodeStatus(ms), wantStatus, ms)
	}
	es := nodeOfType(ms, "exception")
	if len(es) != 1 {
		d.t.Fatalf("cell %q: %d exceptions: %+v", code, len(es), ms)
	}
	return es[0]
}

// nodeRunAs runs code as a cell named filename.
func nodeRunAs(d *driver, code, filename string) []message {
	d.t.Helper()
	d.send(map[string]any{"type": "run", "code": code, "filename": filename})
	return d.collect()
}

// nodeStdout joins the stdout texts of ms.
func nodeStdout(ms []message) string {
	var b strings.Builder
	for _, m := range nodeOfType(ms, "stdout") {
		b.WriteString(m.Text)
	}
	return b.String()
}

func TestNodePersistence(t *testing.T) {
	t.Parallel()
	d := startDriver(t, "javascript")
	nodeOK(d, "let a = 40\nconst b = 2\nvar c = 'c'")
	nodeOK(d, "function add(x, y) { return x + y }\nclass Box { constructor(v) { this.v = v } get twice() { return 2 * this.v } }")
	if got := nodeResult(d, "[add(a, b), c, new Box(21).twice]"); got != "[ 42, 'c', 42 ]" {
		t.Errorf("result %q", got)
	}
	nodeOK(d, "a += 1")
	if got := nodeResult(d, "a"); got != "41" {
		t.Errorf("a = %q after a += 1", got)
	}
	// The REPL's _ holds the last result.
	if got := nodeResult(d, "_ * 2"); got != "82" {
		t.Errorf("_ * 2 = %q", got)
	}
}

func TestNodeResult(t *testing.T) {
	t.Parallel()
	d := startDriver(t, "javascript")
	for _, tc := range []struct{ code, want string }{
		{"1 + 1", "2"},
		{"'text'", "'text'"},
		{"({ a: 1, b: [1, 2] })", "{ a: 1, b: [ 1, 2 ] }"},
		{"{ a: 1 }", "{ a: 1 }"},
		{"new Map([['k', 1]])", "Map(1) { 'k' => 1 }"},
		{"null", "null"},
		{"undefined", ""},
		{"let unused = 3", ""},
		{"console.log('x')", ""},
		{"const v = 7; v * 6 // a comment", "42"},
	} {
		if got := nodeResult(d, tc.code); got != tc.want {
			t.Errorf("%q: result %q, want %q", tc.code, got, tc.want)
		}
	}
}

func TestNodeOutputOrder(t *testing.T) {
	t.Parallel()
	d := startDriver(t, "javascript")
	ms := nodeOK(d, `console.log('one', 1)
process.stdout.write('two\n')
console.error('three')
console.info({ four: 4 })
process.stderr.write(Buffer.from('five\n'))
console.warn('six')
console.table([{ a: 1 }])
display('seven')
'eight'`)
	var got []string
	for _, m := range ms {
		switch m.Type {
		case "stdout", "stderr":
			got = append(got, m.Type+":"+m.Text)
		case "display", "result":
			got = append(got, m.Type+":"+m.Bundle["text/plain"])
		case "done":
		default:
			t.Errorf("unexpected message %+v", m)
		}
	}
	table := "┌─────────┬───┐\n│ (index) │ a │\n├─────────┼───┤\n│ 0       │ 1 │\n└─────────┴───┘\n"
	want := []string{"stdout:one 1\n", "stdout:two\n", "stderr:three\n", "stdout:{ four: 4 }\n",
		"stderr:five\n", "stderr:six\n", "stdout:" + table, "display:'seven'", "result:'eight'"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		// console.table's layout varies between Node versions: compare
		// the rest exactly and the table loosely.
		if len(got) != len(want) || !strings.Contains(got[6], "(index)") {
			t.Fatalf("messages\n%q\nwant\n%q", got, want)
		}
		got[6] = want[6]
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("messages\n%q\nwant\n%q", got, want)
		}
	}
	// A lone surrogate still makes a valid JSON line (next would fail).
	if out := nodeStdout(nodeOK(d, `console.log('a\ud800b')`)); out != "a\ufffdb\n" {
		t.Errorf("lone surrogate: %q", out)
	}
}

func TestNodeTopLevelAwait(t *testing.T) {
	t.Parallel()
	d := startDriver(t, "javascript")
	start := time.Now()
	nodeOK(d, "await new Promise(r => setTimeout(r, 10))")
	if el := time.Since(start); el < 10*time.Millisecond {
		t.Errorf("awaited a 10 ms timer in %v", el)
	}
	if got := nodeResult(d, "const v = await Promise.resolve(5)"); got != "" {
		t.Errorf("declaration result %q", got)
	}
	if got := nodeResult(d, "v"); got != "5" {
		t.Errorf("v = %q", got)
	}
	if got := nodeResult(d, "(await Promise.resolve({ n: 1 })).n + v"); got != "6" {
		t.Errorf("expression with await = %q", got)
	}
	ms := nodeOK(d, "console.log('before'); await null; console.log('after'); function later() { return v }")
	if out := nodeStdout(ms); out != "before\nafter\n" {
		t.Errorf("stdout %q", out)
	}
	if got := nodeResult(d, "later()"); got != "5" {
		t.Errorf("function declared in an await cell: %q", got)
	}
	e := nodeException(d, "await null\nawait Promise.reject(new RangeError('nope'))", "error")
	if e.Name != "RangeError" || e.Message != "nope" || e.Line != 2 {
		t.Errorf("rejection: %+v", e)
	}
}

func TestNodeImportAndRequire(t *testing.T) {
	t.Parallel()
	d := startDriver(t, "javascript")
	files := map[string]string{
		"m.mjs":                          "export default 'def'\nexport const y = 'why'\nexport function f() { return 'eff' }\n",
		"c.js":                           "module.exports = { name: 'cjs', twice: (n) => 2 * n }\n",
		"side.mjs":                       "globalThis.sideEffect = (globalThis.sideEffect || 0) + 1\n",
		"data.json":                      `{"k": [1, 2]}`,
		"node_modules/pkgx/package.json": `{"name": "pkgx", "main": "main.js"}`,
		"node_modules/pkgx/main.js":      "exports.hello = () => 'hello from pkgx'\n",
	}
	for name, src := range files {
		path := filepath.Join(d.cmd.Dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ code, want string }{
		{"import fs from 'fs'\ntypeof fs.readFileSync", "'function'"},
		{"import * as path from 'node:path'\npath.join('a', 'b')", "'a/b'"},
		{"import { readFileSync as r } from 'fs'\nr('data.json', 'utf8')", `'{"k": [1, 2]}'`},
		{"import x, { y, f as g } from './m.mjs'; [x, y, g()]", "[ 'def', 'why', 'eff' ]"},
		{"import './side.mjs'\nsideEffect", "1"},
		{"import c, { twice } from './c.js'\n[c.name, twice(21)]", "[ 'cjs', 42 ]"},
		{"import {\n  y as y2,\n} from './m.mjs'\nconst here = new Error().stack.split('\\n')[1]; [y2, here]", "[ 'why', '    at <cell>:4:14' ]"},
		{"import data from './data.json' with { type: 'json' }\ndata.k", "[ 1, 2 ]"},
		// Running an import cell again works; the names persist.
		{"import fs from 'fs'\nimport * as path from 'node:path'", ""},
		{"[typeof fs.statSync, path.sep, x, r === fs.readFileSync]", "[ 'function', '/', 'def', true ]"},
		// Strings, comments, templates and calls named import are no imports.
		{"const s = \"import q from 'nowhere'\"; // import z from 'z'\n`import ${'t'} from`.length + s.length", "36"},
		{"const m2 = await import('./m.mjs'); m2.y", "'why'"},
		{"const lazy = import('./m.mjs'); typeof lazy.then", "'function'"},
		{"(await lazy).f()", "'eff'"},
		{"const c2 = require('./c.js'); [c2 === c, require('fs') === fs]", "[ true, true ]"},
		{"require('pkgx').hello()", "'hello from pkgx'"},
		{"import { hello } from 'pkgx'\nhello()", "'hello from pkgx'"},
	} {
		if got := nodeResult(d, tc.code); got != tc.want {
			t.Errorf("%q: result %q, want %q", tc.code, got, tc.want)
		}
	}
	e := nodeException(d, "const ok = 1\nexport const z = 1", "error")
	if e.Name != "SyntaxError" || e.Line != 2 || !strings.Contains(e.Message, "export") {
		t.Errorf("export: %+v", e)
	}
	e = nodeException(d, "import { nothing } from './m.mjs'", "error")
	if e.Name != "SyntaxError" || !strings.Contains(e.Message, "nothing") || e.Line != 1 {
		t.Errorf("missing export: %+v", e)
	}
	e = nodeException(d, "1\nimport q from './absent.mjs'", "error")
	if !strings.Contains(e.Message, "absent.mjs") || e.Line != 2 {
		t.Errorf("absent module: %+v", e)
	}
	// The cwd file is found through require too.
	if got := nodeResult(d, "require('./c.js').twice(4)"); got != "8" {
		t.Errorf("require of a cwd file: %q", got)
	}
}

// nodeNoInternalFrames fails the test when e's traceback shows a frame of
// the driver or of Node itself.
func nodeNoInternalFrames(t *testing.T, e message) {
	t.Helper()
	for _, l := range e.Traceback {
		if strings.Contains(l, "node:") || strings.Contains(l, "[eval]") || strings.Contains(l, "[stdin]") || strings.Contains(l, "REPL") {
			t.Errorf("traceback has an internal frame %q: %q", l, e.Traceback)
		}
	}
}

func TestNodeExceptions(t *testing.T) {
	t.Parallel()
	d := startDriver(t, "javascript")
	// The agent names cells apart, so frames of an earlier cell are told
	// from the current one's.
	if ms := nodeRunAs(d, "function inner(o) {\n  return o.missing.field\n}", "<cell 1>"); nodeStatus(ms) != "ok" {
		t.Fatalf("messages %+v", ms)
	}
	ms := nodeRunAs(d, "const a = 1\n\nfunction outer() { return inner({}) }\nouter()", "<cell 2>")
	es := nodeOfType(ms, "exception")
	if nodeStatus(ms) != "error" || len(es) != 1 {
		t.Fatalf("messages %+v", ms)
	}
	e := es[0]
	// The line is that of the innermost frame of the current cell.
	if e.Name != "TypeError" || !strings.Contains(e.Message, "reading 'field'") || e.Line != 3 {
		t.Errorf("exception %+v", e)
	}
	tb := strings.Join(e.Traceback, "\n")
	if !strings.HasPrefix(tb, "TypeError: Cannot read properties of undefined (reading 'field')\n") ||
		!strings.Contains(tb, "at inner (<cell 1>:2:") || !strings.Contains(tb, "at outer (<cell 2>:3:") ||
		!strings.Contains(tb, "at <cell 2>:4:") {
		t.Errorf("traceback %q", e.Traceback)
	}
	nodeNoInternalFrames(t, e)

	e = nodeException(d, "throw 'plain string'", "error")
	if e.Name != "Error" || e.Message != "'plain string'" {
		t.Errorf("thrown string: %+v", e)
	}
	e = nodeException(d, "class MyError extends Error { constructor(m) { super(m); this.name = 'MyError' } }\n\nthrow new MyError('mine')", "error")
	if e.Name != "MyError" || e.Message != "mine" || e.Line != 3 {
		t.Errorf("custom error: %+v", e)
	}
	// State survives an error.
	if got := nodeResult(d, "a"); got != "1" {
		t.Errorf("a = %q after an error", got)
	}
	// require of a module that throws keeps the module's frame.
	os.WriteFile(filepath.Join(d.cmd.Dir, "bad.js"), []byte("\nthrow new Error('bad module')\n"), 0o644)
	e = nodeException(d, "\nrequire('./bad.js')", "error")
	if e.Line != 2 || !strings.Contains(strings.Join(e.Traceback, "\n"), "bad.js:2:") {
		t.Errorf("throwing module: %+v", e)
	}
	nodeNoInternalFrames(t, e)
}

func TestNodeSyntaxError(t *testing.T) {
	t.Parallel()
	d := startDriver(t, "javascript")
	for _, tc := range []struct {
		code string
		line int
	}{
		{"let ok = 1\nlet bad = = 2\n", 2},
		{"const x = await Promise.resolve(1)\n\nfoo bar", 3},
		{"function f() {\n  return 1\n", 3},
		{"let dup = 1", 0},
		{"1\nlet dup = 2", 2},
	} {
		ms := d.run(tc.code)
		es := nodeOfType(ms, "exception")
		if tc.line == 0 {
			if nodeStatus(ms) != "ok" {
				t.Errorf("%q: %+v", tc.code, ms)
			}
			continue
		}
		if nodeStatus(ms) != "error" || len(es) != 1 {
			t.Errorf("%q: %+v", tc.code, ms)
			continue
		}
		if es[0].Name != "SyntaxError" || es[0].Line != tc.line {
			t.Errorf("%q: %+v, want line %d", tc.code, es[0], tc.line)
		}
		nodeNoInternalFrames(t, es[0])
	}
}

// nodeTranspile turns TypeScript into JavaScript and a source map as the host
// does for cells.
func nodeTranspile(t *testing.T, name, src string) (code, sourceMap string) {
	t.Helper()
	res := api.Transform(src, api.TransformOptions{
		Loader:      api.LoaderTS,
		Sourcemap:   api.SourceMapExternal,
		Sourcefile:  name,
		TsconfigRaw: `{"compilerOptions":{"verbatimModuleSyntax":true}}`,
	})
	if len(res.Errors) > 0 {
		t.Fatalf("esbuild: %+v", res.Errors)
	}
	return string(res.Code), string(res.Map)
}

func TestNodeTypeScriptSourceMap(t *testing.T) {
	t.Parallel()
	d := startDriver(t, "javascript")
	runTS := func(name, ts string) (string, []message) {
		t.Helper()
		code, sm := nodeTranspile(t, name, ts)
		d.send(map[string]any{"type": "run", "code": code, "filename": name, "source_map": sm})
		return code, d.collect()
	}
	// Imports stay (verbatimModuleSyntax) and bind names for later cells.
	_, ms := runTS("cell1.ts", "import type { Stats } from 'node:fs';\nimport * as path from 'node:path';\nconst none: Stats | null = null;\npath.basename('/a/b')\n")
	if rs := nodeOfType(ms, "result"); nodeStatus(ms) != "ok" || len(rs) != 1 || rs[0].Bundle["text/plain"] != "'b'" {
		t.Fatalf("import cell: %+v", ms)
	}

	ts := `interface Point {
  x: number;
}
type N = number;
function fail(p: Point): never { throw new TypeError(path.basename('/a/b') + p.x) }
const q: Point = { x: 1 as N };

fail(q);
`
	code, ms := runTS("cell2.ts", ts)
	if strings.Contains(code, "interface") || strings.Count(code, "\n") >= strings.Count(ts, "\n") {
		t.Fatalf("esbuild kept the type-only lines:\n%s", code)
	}
	es := nodeOfType(ms, "exception")
	if nodeStatus(ms) != "error" || len(es) != 1 {
		t.Fatalf("messages %+v", ms)
	}
	e := es[0]
	if e.Name != "TypeError" || e.Message != "b1" || e.Line != 5 {
		t.Errorf("exception %+v, want TypeError b1 on line 5\nJavaScript:\n%s", e, code)
	}
	tb := strings.Join(e.Traceback, "\n")
	if !strings.Contains(tb, "at fail (cell2.ts:5:") || !strings.Contains(tb, "at cell2.ts:8:") {
		t.Errorf("traceback not mapped to TypeScript lines:\n%s\nJavaScript:\n%s", tb, code)
	}
	nodeNoInternalFrames(t, e)

	// A later cell (with top-level await) calls the function: frames of
	// both cells map through their own maps.
	ts2 := `type T = number;
const v: T = await Promise.resolve(3);

fail({ x: v });
`
	code2, ms := runTS("cell3.ts", ts2)
	es = nodeOfType(ms, "exception")
	if len(es) != 1 || es[0].Line != 4 || es[0].Message != "b3" {
		t.Fatalf("second cell: %+v\nJavaScript:\n%s", ms, code2)
	}
	tb = strings.Join(es[0].Traceback, "\n")
	if !strings.Contains(tb, "at fail (cell2.ts:5:") || !strings.Contains(tb, "cell3.ts:4:") {
		t.Errorf("traceback of the second cell:\n%s", tb)
	}
	if got := nodeResult(d, "v"); got != "3" {
		t.Errorf("v = %q", got)
	}
}

func TestNodeInterrupt(t *testing.T) {
	t.Parallel()
	d := startDriver(t, "javascript")
	nodeOK(d, "let kept = 'state'")
	// The cells that await say "started" once they await: a SIGINT that
	// lands just as the synchronous part of a cell ends can be lost (vm's
	// watchdog drops it), which would make the test flaky.
	for _, code := range []string{
		"console.log('started'); while (true) {}",
		"await null; console.log('started'); await new Promise(() => {})",
		"await null; console.log('started'); for (;;) await new Promise(r => setTimeout(r, 5))",
	} {
		d.send(map[string]any{"type": "run", "code": code, "filename": "<cell>"})
		if m := d.next(); m.Type != "stdout" || m.Text != "started\n" {
			t.Fatalf("%q: first message %+v", code, m)
		}
		time.Sleep(20 * time.Millisecond)
		d.interrupt()
		ms := d.collect()
		es := nodeOfType(ms, "exception")
		if nodeStatus(ms) != "interrupted" || len(es) != 1 || es[0].Name != "Interrupted" || es[0].Message != "the cell was interrupted" {
			t.Errorf("%q: %+v", code, ms)
		}
		if got := nodeResult(d, "kept"); got != "'state'" {
			t.Errorf("after %q: kept = %q", code, got)
		}
	}
	// SIGINT between cells is ignored.
	d.interrupt()
	time.Sleep(50 * time.Millisecond)
	if got := nodeResult(d, "kept + 1"); got != "'state1'" {
		t.Errorf("after SIGINT between cells: %q", got)
	}
}

func TestNodeEscapedErrors(t *testing.T) {
	t.Parallel()
	d := startDriver(t, "javascript")
	nodeOK(d, "Promise.reject(new Error('nobody awaits')); setTimeout(() => { throw new TypeError('later') }, 1); undefined")
	// The reports come on their own, between cells.
	var got []string
	for len(got) < 2 {
		m := d.next()
		if m.Type != "stderr" {
			t.Fatalf("unexpected %+v", m)
		}
		got = append(got, m.Text)
	}
	all := strings.Join(got, "")
	if !strings.Contains(all, "Uncaught (in promise) Error: nobody awaits") || !strings.Contains(all, "Uncaught TypeError: later") {
		t.Errorf("stderr %q", got)
	}
	if got := nodeResult(d, "'alive'"); got != "'alive'" {
		t.Errorf("after escaped errors: %q", got)
	}
}

func TestNodeDisplay(t *testing.T) {
	t.Parallel()
	d := startDriver(t, "javascript")
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, 3, 2))); err != nil {
		t.Fatal(err)
	}
	enc := base64.StdEncoding.EncodeToString(buf.Bytes())
	ms := nodeOK(d, "display(Buffer.from('"+enc+"', 'base64'))\ndisplay({ 'text/html': '<b>hi</b>', 'text/plain': 'hi' }, { raw: true })\ndisplay([1])")
	ds := nodeOfType(ms, "display")
	if len(ds) != 3 {
		t.Fatalf("messages %+v", ms)
	}
	if ds[0].Bundle["image/png"] != enc || !strings.Contains(ds[0].Bundle["text/plain"], "3x2") {
		t.Errorf("PNG bundle %+v", ds[0].Bundle)
	}
	if ds[1].Bundle["text/html"] != "<b>hi</b>" || ds[1].Bundle["text/plain"] != "hi" || len(ds[1].Bundle) != 2 {
		t.Errorf("raw bundle %+v", ds[1].Bundle)
	}
	if ds[2].Bundle["text/plain"] != "[ 1 ]" {
		t.Errorf("value bundle %+v", ds[2].Bundle)
	}
}

func TestNodeExitFlushes(t *testing.T) {
	t.Parallel()
	d := startDriver(t, "javascript")
	d.send(map[string]any{"type": "run", "code": "console.log('bye'); process.exit(3)", "filename": "<cell>"})
	if m := d.next(); m.Type != "stdout" || m.Text != "bye\n" {
		t.Fatalf("message %+v", m)
	}
	if d.msgs.Scan() {
		t.Fatalf("message after exit: %s", d.msgs.Bytes())
	}
	if err := d.cmd.Wait(); err == nil || d.cmd.ProcessState.ExitCode() != 3 {
		t.Errorf("exit: %v", err)
	}
}

// TestNodeTiming is not parallel: the other tests would slow it down.
func TestNodeTiming(t *testing.T) {
	d := startDriver(t, "javascript")
	nodeOK(d, "let x = 1")
	for i := 0; i < 20; i++ { // warm up
		nodeResult(d, "x + 1")
	}
	const n = 200
	start := time.Now()
	for i := 0; i < n; i++ {
		if got := nodeResult(d, "x + 1"); got != "2" {
			t.Fatalf("x + 1 = %q", got)
		}
	}
	per := time.Since(start) / n
	t.Logf("trivial cell: %v per round trip", per)
	if per > 2*time.Millisecond {
		t.Errorf("trivial cell took %v per round trip", per)
	}
}

// TestNodeCommandLine: the driver comes on node's standard input, not on
// its command line, and what the command line has for it (the "-" and
// the label) is not in the cells' process.argv, which holds node alone
// as under node -e; require, module and dynamic import work as there.
func TestNodeCommandLine(t *testing.T) {
	t.Parallel()
	argv, _ := Argv("javascript")
	if n := len(strings.Join(argv, " ")); n > 100 {
		t.Errorf("the driver's command line is %d bytes long: %q", n, argv)
	}
	d := startDriver(t, "javascript")
	if got := nodeResult(d, "[process.argv.length, typeof require, typeof module]"); got != "[ 1, 'function', 'object' ]" {
		t.Errorf("process.argv.length, typeof require, typeof module: %q", got)
	}
	if got := nodeResult(d, "(await import('node:path')).basename('/a/b.js')"); got != "'b.js'" {
		t.Errorf("a dynamic import: %q", got)
	}
}
