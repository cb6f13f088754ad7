package lang

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cove-sandbox/cove"
)

func TestLookup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string
	}{
		{"python", "python"}, {"py", "python"}, {"python3", "python"}, {"PYTHON", "python"}, {"Py", "python"},
		{"javascript", "javascript"}, {"js", "javascript"}, {"node", "javascript"}, {"JavaScript", "javascript"}, {"NODE", "javascript"},
		{"typescript", "typescript"}, {"ts", "typescript"}, {"TypeScript", "typescript"}, {"TS", "typescript"},
		{"bash", "bash"}, {"sh", "bash"}, {"shell", "bash"}, {"Bash", "bash"}, {" sh ", "bash"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			l, err := Lookup(tt.in)
			if err != nil {
				t.Fatalf("Lookup(%q): %v", tt.in, err)
			}
			if l.Name != tt.want {
				t.Errorf("Lookup(%q) = %s, want %s", tt.in, l.Name, tt.want)
			}
		})
	}
}

func TestLookupUnknown(t *testing.T) {
	t.Parallel()
	const list = "python (py, python3), javascript (js, node), typescript (ts) or bash (sh, shell)"
	tests := []struct {
		name, in, want string
	}{
		{"cobol", "cobol", `unknown language "cobol": use ` + list},
		{"empty", "", "no language given: use " + list},
		{"extension is not a name", ".py", `unknown language ".py": use ` + list},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, err := Lookup(tt.in)
			if err == nil {
				t.Fatalf("Lookup(%q) = %s, want an error", tt.in, l.Name)
			}
			if code := cove.ErrorCode(err); code != cove.CodeInvalid {
				t.Errorf("code = %s, want %s", code, cove.CodeInvalid)
			}
			if got := cove.ErrorMessage(err); got != tt.want {
				t.Errorf("message = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestForFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file, want string
	}{
		{"main.py", "python"}, {"dir/hello.PY", "python"},
		{"a.js", "javascript"}, {"a.mjs", "javascript"}, {"a.cjs", "javascript"},
		{"a.ts", "typescript"}, {"a.mts", "typescript"}, {"/abs/path/a.cts", "typescript"},
		{"a.sh", "bash"}, {"a.bash", "bash"}, {"x.tar.sh", "bash"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			l, err := ForFile(tt.file)
			if err != nil {
				t.Fatalf("ForFile(%q): %v", tt.file, err)
			}
			if l.Name != tt.want {
				t.Errorf("ForFile(%q) = %s, want %s", tt.file, l.Name, tt.want)
			}
		})
	}
}

func TestForFileUnknown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, want string
	}{
		{"unknown extension", "hello.rb", `"hello.rb" from its extension ".rb"`},
		{"no extension", "Makefile", `"Makefile": it has no extension`},
		{"dot in directory only", "dir.py/run", `"dir.py/run": it has no extension`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ForFile(tt.file)
			if err == nil {
				t.Fatalf("ForFile(%q) succeeded, want an error", tt.file)
			}
			if code := cove.ErrorCode(err); code != cove.CodeInvalid {
				t.Errorf("code = %s, want %s", code, cove.CodeInvalid)
			}
			msg := cove.ErrorMessage(err)
			for _, want := range []string{tt.want, ".py, .js, .mjs, .cjs, .ts, .mts, .cts, .sh or .bash", "-l/--lang"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not contain %q", msg, want)
				}
			}
		})
	}
}

// TestForProgram checks that a file without a known extension gets the
// language of the interpreter its #! line names.
func TestForProgram(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		file, code, want string
	}{
		{"tool", "#!/usr/bin/env python3\nprint(1)\n", "python"},
		{"tool", "#!/usr/bin/python3.11 -u\n", "python"},
		{"tool", "#!/usr/bin/env -S PYTHONHASHSEED=0 python3 -X dev\n", "python"},
		{"tool", "#! /usr/bin/env node\n", "javascript"},
		{"tool.cgi", "#!/bin/bash\necho\n", "bash"},
		{"tool", "#!/bin/sh", "bash"},
		{"tool.py", "#!/bin/bash\n", "python"}, // the extension first
		{"tool", "#!/usr/bin/perl\n", ""},
		{"tool", "#!/usr/bin/env\n", ""},
		{"tool", "print(1) #!python3\n", ""},
		{"tool", "", ""},
	} {
		l, err := ForProgram(tt.file, []byte(tt.code))
		switch {
		case tt.want == "" && (err == nil || !strings.Contains(cove.ErrorMessage(err), "a #! line that names python3, node or bash")):
			t.Errorf("%s %q: %v, %v; want the error that says what is accepted", tt.file, tt.code, l, err)
		case tt.want != "" && (err != nil || l.Name != tt.want):
			t.Errorf("%s %q: %v, %v; want %s", tt.file, tt.code, l, err, tt.want)
		}
	}
}

func TestAll(t *testing.T) {
	t.Parallel()
	var names []string
	seen := map[string]bool{}
	for _, l := range All() {
		names = append(names, l.Name)
		for _, key := range append([]string{l.Name}, l.Aliases...) {
			if seen[key] {
				t.Errorf("name or alias %q is used twice", key)
			}
			seen[key] = true
		}
		for _, ext := range l.Extensions {
			if seen[ext] {
				t.Errorf("extension %q is used twice", ext)
			}
			seen[ext] = true
		}
		if got, _ := ForFile(l.SourceName); got == nil || got.Name != l.Name {
			t.Errorf("%s: SourceName %q does not map back to the language", l.Name, l.SourceName)
		}
	}
	if want := []string{"python", "javascript", "typescript", "bash"}; !slices.Equal(names, want) {
		t.Errorf("All() = %v, want %v", names, want)
	}
	// Callers get their own values.
	All()[0].Aliases[0] = "changed"
	if l, err := Lookup("py"); err != nil || l.Name != "python" {
		t.Errorf("changing All's result changed the registry: %v, %v", l, err)
	}
}

func TestPrepare(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		lang      string
		file      string
		argv      []string
		wantArgv  []string
		wantFiles []string
	}{
		{"python default", "python", "", []string{"a", "b c"}, []string{"python3", "main.py", "a", "b c"}, []string{"main.py"}},
		{"python own name", "py", "hello.py", nil, []string{"python3", "hello.py"}, []string{"hello.py"}},
		{"python no extension", "py", "snippet", nil, []string{"python3", "snippet.py"}, []string{"snippet.py"}},
		{"python upper case extension", "py", "Hello.PY", nil, []string{"python3", "Hello.PY"}, []string{"Hello.PY"}},
		{"python other extension", "py", "notes.txt", nil, []string{"python3", "notes.txt.py"}, []string{"notes.txt.py"}},
		{"python trailing dot", "py", "snippet.", nil, []string{"python3", "snippet.py"}, []string{"snippet.py"}},
		{"python bare extension", "py", ".py", nil, []string{"python3", "main.py"}, []string{"main.py"}},
		{"javascript default", "js", "", []string{"x"}, []string{"node", "main.js", "x"}, []string{"main.js"}},
		{"javascript mjs", "node", "m.mjs", nil, []string{"node", "m.mjs"}, []string{"m.mjs"}},
		{"javascript no extension", "javascript", "script", nil, []string{"node", "script.js"}, []string{"script.js"}},
		{"typescript no extension", "ts", "app", nil, []string{"node", "--enable-source-maps", "app.cjs"}, []string{"app.cjs", "app.ts"}},
		{"bash no extension", "bash", "setup", nil, []string{"bash", "setup.sh"}, []string{"setup.sh"}},
		{"typescript default", "ts", "", []string{"1"}, []string{"node", "--enable-source-maps", "main.cjs", "1"}, []string{"main.cjs", "main.ts"}},
		{"typescript own name", "ts", "app.ts", nil, []string{"node", "--enable-source-maps", "app.cjs"}, []string{"app.cjs", "app.ts"}},
		{"typescript mts", "ts", "app.mts", nil, []string{"node", "--enable-source-maps", "app.mjs"}, []string{"app.mjs", "app.mts"}},
		{"typescript cts", "ts", "app.cts", nil, []string{"node", "--enable-source-maps", "app.cjs"}, []string{"app.cjs", "app.cts"}},
		{"bash default", "sh", "", []string{"-x"}, []string{"bash", "main.sh", "-x"}, []string{"main.sh"}},
		{"bash own name", "bash", "run.bash", nil, []string{"bash", "run.bash"}, []string{"run.bash"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, err := Lookup(tt.lang)
			if err != nil {
				t.Fatal(err)
			}
			p, err := l.Prepare(tt.file, "1\n", tt.argv)
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if !slices.Equal(p.Argv, tt.wantArgv) {
				t.Errorf("Argv = %q, want %q", p.Argv, tt.wantArgv)
			}
			files := slices.Sorted(func(yield func(string) bool) {
				for k := range p.Files {
					if !yield(k) {
						return
					}
				}
			})
			if !slices.Equal(files, tt.wantFiles) {
				t.Errorf("Files = %q, want %q", files, tt.wantFiles)
			}
			src := tt.wantFiles[len(tt.wantFiles)-1]
			if l.Name != "typescript" {
				src = tt.wantFiles[0]
			}
			if got := string(p.Files[src]); got != "1\n" {
				t.Errorf("Files[%q] = %q, want the source", src, got)
			}
		})
	}
}

func TestPrepareBadName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, want string
	}{
		{"slash", "dir/main.py", "slash"},
		{"absolute", "/etc/main.py", "slash"},
		{"dot dot", "..", `".."`},
		{"dot dot in name", "a..py", `".."`},
		{"option", "-c.py", `start with "-"`},
		{"nul", "main\x00.py", "control characters"},
		{"newline", "main\n.py", "control characters"},
		{"too long", strings.Repeat("a", 253) + ".py", "longer than 255"},
		{"too long with the extension", strings.Repeat("a", 254), "longer than 255"},
	}
	l, err := Lookup("python")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := l.Prepare(tt.file, "print(1)", nil)
			if err == nil {
				t.Fatalf("Prepare(%q) = %v, want an error", tt.file, p.Argv)
			}
			if code := cove.ErrorCode(err); code != cove.CodeInvalid {
				t.Errorf("code = %s, want %s", code, cove.CodeInvalid)
			}
			if msg := cove.ErrorMessage(err); !strings.Contains(msg, tt.want) || !strings.Contains(msg, "invalid file name") {
				t.Errorf("message %q does not contain %q", msg, tt.want)
			}
		})
	}
}

// TestPrepareOtherLanguageExtension checks that a name with another
// language's extension is refused, naming the extensions to use, rather
// than replaced by the language's main file.
func TestPrepareOtherLanguageExtension(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, lang, file string
		want             []string
	}{
		{"python as javascript", "python", "snippet.js", []string{`"snippet.js"`, "javascript", "python", ".py", "snippet.py"}},
		{"javascript as python", "js", "app.PY", []string{"python", ".js, .mjs or .cjs", "app.js"}},
		{"typescript as javascript", "ts", "app.cjs", []string{"javascript", ".ts, .mts or .cts", "app.ts"}},
		{"bash as python", "bash", "run.py", []string{"python", ".sh or .bash", "run.sh"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, err := Lookup(tt.lang)
			if err != nil {
				t.Fatal(err)
			}
			p, err := l.Prepare(tt.file, "1", nil)
			if err == nil {
				t.Fatalf("Prepare(%q) = %v, want an error", tt.file, p.Argv)
			}
			if code := cove.ErrorCode(err); code != cove.CodeInvalid {
				t.Errorf("code = %s, want %s", code, cove.CodeInvalid)
			}
			for _, w := range tt.want {
				if msg := cove.ErrorMessage(err); !strings.Contains(msg, w) {
					t.Errorf("message %q does not contain %q", msg, w)
				}
			}
		})
	}
}

// run writes p's files into a fresh directory and runs p.Argv there with a
// clean environment, as the sandbox does. It skips when the interpreter is
// not installed.
func run(t *testing.T, p *Program) (stdout, stderr string, err error) {
	t.Helper()
	const path = "/usr/bin:/bin"
	if _, err := exec.LookPath("/usr/bin/" + p.Argv[0]); err != nil {
		if _, err := exec.LookPath("/bin/" + p.Argv[0]); err != nil {
			t.Skipf("%s is not installed in %s", p.Argv[0], path)
		}
	}
	dir := t.TempDir()
	for name, content := range p.Files {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("/usr/bin/env", append([]string{"-i", "PATH=" + path}, p.Argv...)...)
	cmd.Dir = dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

func TestRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, lang, file, src string
		argv                  []string
		want                  string
	}{
		{"python", "python", "", "import sys\nprint('hi', sys.argv[1:])\n", []string{"a"}, "hi ['a']\n"},
		{"javascript", "js", "", "console.log('hi', process.argv.slice(2))\n", []string{"a"}, "hi [ 'a' ]\n"},
		{"javascript esm", "js", "m.mjs", "const x = await Promise.resolve(1); console.log(x)\n", nil, "1\n"},
		{"bash", "bash", "", `echo "hi $1"` + "\n", []string{"a"}, "hi a\n"},
		{
			"typescript types interfaces enums", "ts", "",
			`interface Point { x: number; y: number }
enum Color { Red = 1, Green, Blue }
type Pair<T> = [T, T];
class Box<T> {
  constructor(private readonly value: T) {}
  get(): T { return this.value }
}
function sum(p: Point): number { return p.x + p.y }
const pair: Pair<string> = ["a", "b"];
const b = new Box<Color>(Color.Blue);
console.log(sum({ x: 2, y: 3 } as Point), Color[b.get()], pair.join(""), process.argv[2]);
`, []string{"arg"}, "5 Blue ab arg\n",
		},
		{
			"typescript imports and require", "ts", "",
			`import { join } from "node:path";
import * as os from "os";
const fs = require("fs");
console.log(join("a", "b"), typeof os.cpus, typeof fs.readFileSync, typeof __dirname);
`, nil, "a/b function function string\n",
		},
		{
			"typescript top-level await", "ts", "",
			"const x: number = await Promise.resolve(42)\nconsole.log(x)\n", nil, "42\n",
		},
		{
			"typescript top-level await with require and imports", "ts", "",
			`import { basename } from "node:path";
const fs = require("fs");
const x = await Promise.resolve<number>(42);
console.log(x, typeof fs.readFileSync, basename(__filename), basename(__dirname) !== "");
`, nil, "42 function main.mjs true\n",
		},
		{
			"typescript own require declaration in esm", "ts", "",
			`import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
console.log(await Promise.resolve(typeof require("os").cpus));
`, nil, "function\n",
		},
		{
			"typescript import.meta", "ts", "",
			"console.log(import.meta.url.endsWith('/main.mjs'))\n", nil, "true\n",
		},
		{
			"typescript mts", "ts", "x.mts",
			"export const v: number = 1\nconsole.log(v + 1)\n", nil, "2\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, err := Lookup(tt.lang)
			if err != nil {
				t.Fatal(err)
			}
			p, err := l.Prepare(tt.file, tt.src, tt.argv)
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			stdout, stderr, err := run(t, p)
			if err != nil {
				t.Fatalf("%q: %v\nstderr: %s", p.Argv, err, stderr)
			}
			if stdout != tt.want {
				t.Errorf("stdout = %q, want %q (stderr: %s)", stdout, tt.want, stderr)
			}
		})
	}
}

func TestTypeScriptStackTrace(t *testing.T) {
	t.Parallel()
	// The throw is on line 5 in both; type-only lines vanish from the
	// JavaScript, so only the source map can get the line right.
	tests := []struct {
		name, src, wantRun string
	}{
		{"commonjs", `interface A { a: number }
type B = A & { b: string }
const a: A = { a: 1 }
console.log(a.a)
if (a.a) throw new Error("boom")
`, "main.cjs"},
		{"esm", `interface A { a: number }
type B = A & { b: string }
const a: A = await Promise.resolve({ a: 1 })
console.log(a.a)
if (a.a) throw new Error("boom")
`, "main.mjs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, _ := Lookup("ts")
			p, err := l.Prepare("main.ts", tt.src, nil)
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if got := p.Argv[2]; got != tt.wantRun {
				t.Errorf("runs %s, want %s", got, tt.wantRun)
			}
			stdout, stderr, err := run(t, p)
			if err == nil {
				t.Fatalf("the program succeeded, want it to throw; stdout: %s", stdout)
			}
			if !strings.Contains(stderr, "Error: boom") || !strings.Contains(stderr, "main.ts:5:") {
				t.Errorf("stack trace does not point at main.ts:5:\n%s", stderr)
			}
		})
	}
}

func TestTypeScriptSyntaxError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, src string
		want            []string
	}{
		{
			"missing semicolon", "main.ts", "let a: number = 1\nlet b = 2\nconst c x = 3\n",
			[]string{"main.ts:3:9: error: Expected \";\" but found \"x\"\n    const c x = 3\n            ^"},
		},
		{
			"own file name and wide characters", "hello.ts", "const é = 1\n\tconst s = é é\n",
			[]string{"hello.ts:2:14: error: Expected \";\" but found \"é\"\n    \tconst s = é é\n    \t            ^"},
		},
		{
			"several errors", "main.ts", "const a = 1\nconst a = 2\nconst b = 1\nconst b = 2\n",
			[]string{
				`main.ts:2:7: error: The symbol "a" has already been declared`,
				`main.ts:4:7: error: The symbol "b" has already been declared`,
				`main.ts:1:7: note: The symbol "a" was originally declared here:`,
			},
		},
		{
			"top-level await in cts", "main.cts", "await 1\n",
			[]string{`main.cts:1:1: error: Top-level await is currently not supported with the "cjs" output format`, "^~~~~"},
		},
		{
			"syntax error after top-level await", "main.ts", "await 1\nlet x y\n",
			[]string{`main.ts:2:7: error: Expected ";" but found "y"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, _ := Lookup("ts")
			p, err := l.Prepare(tt.file, tt.src, nil)
			if err == nil {
				t.Fatalf("Prepare succeeded with %q, want an error", p.Argv)
			}
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T %v, want a *CompileError", err, err)
			}
			msg := ce.Message
			for _, want := range tt.want {
				if !strings.Contains(msg, want) {
					t.Errorf("message:\n%s\ndoes not contain:\n%s", msg, want)
				}
			}
			if strings.Contains(msg, "Top-level await") && tt.file == "main.ts" {
				t.Errorf("a .ts file with top-level await was compiled as CommonJS:\n%s", msg)
			}
		})
	}
}

func BenchmarkTransformTS(b *testing.B) {
	const src = `interface User { name: string; age: number }
enum Role { Admin, User }
function greet(u: User, r: Role): string {
  return ` + "`${u.name} (${u.age}) is ${Role[r]}`" + `
}
console.log(greet({ name: "Ada", age: 36 }, Role.Admin))
`
	l, err := Lookup("ts")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := l.Prepare("main.ts", src, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTransformTSTopLevelAwait(b *testing.B) {
	const src = "const x: number = await Promise.resolve(42)\nconsole.log(x)\n"
	l, err := Lookup("ts")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := l.Prepare("main.ts", src, nil); err != nil {
			b.Fatal(err)
		}
	}
}
