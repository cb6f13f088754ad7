// Package lang is cove's language registry: it maps language names, aliases
// and file extensions to the languages cove runs, and turns a piece of source
// code into the files to write into a sandbox workspace and the argv to run.
//
// Adding a language means adding one entry to the table in languages; every
// list shown to users (in errors and help) is generated from that table.
package lang

import (
	"bytes"
	"maps"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"unicode"

	"github.com/cove-sandbox/cove"
)

// Language describes one language cove can run.
type Language struct {
	// Name is the canonical, lower-case name ("python").
	Name string
	// Aliases are other lower-case names that select the language ("py").
	Aliases []string
	// Extensions are the lower-case file extensions, with the dot, that
	// select the language when a file is run without naming one.
	Extensions []string
	// SourceName is the file name used in the workspace when the caller
	// gives none.
	SourceName string

	// command is the argv before the file to run.
	command []string
	// env is added to the program's environment.
	env map[string]string
	// contextDriver names the interpreter driver of the language's
	// stateful contexts (internal/agent/kernels); "" when it has none.
	contextDriver string
	// compile, when set, turns the source file into the file node (or
	// another runtime) executes; it returns that file's name and content.
	compile func(name, src string) (out string, code []byte, err error)
}

// Program is what Prepare produces: the files to write into the workspace
// and the command that runs them there.
type Program struct {
	// Files maps paths relative to the workspace to their content. It
	// always holds the source itself, so that tracebacks can show it.
	Files map[string][]byte
	// Argv is the command to run in the workspace; Argv[0] is looked up in
	// the sandbox's PATH.
	Argv []string
	// Env is added to the program's environment, under what the user set.
	Env map[string]string
}

// languages returns the registry's table. It builds fresh values on each
// call so that no caller can change what another one sees.
func languages() []*Language {
	return []*Language{
		{
			Name:       "python",
			Aliases:    []string{"py", "python3"},
			Extensions: []string{".py"},
			SourceName: "main.py",
			// Standard output is line-buffered, as on a terminal, through
			// the sitecustomize of EtcFiles: each line streams as it is
			// printed, in one piece (python3 -u would write a print's
			// parts separately, and a line of standard error could land
			// between them).
			command:       []string{"python3"},
			env:           map[string]string{"PYTHONPATH": PythonSiteDir},
			contextDriver: "python",
		},
		{
			Name:          "javascript",
			Aliases:       []string{"js", "node"},
			Extensions:    []string{".js", ".mjs", ".cjs"},
			SourceName:    "main.js",
			command:       []string{"node"},
			contextDriver: "javascript",
		},
		{
			Name:       "typescript",
			Aliases:    []string{"ts"},
			Extensions: []string{".ts", ".mts", ".cts"},
			SourceName: "main.ts",
			// Stack traces point at TypeScript lines through the inline
			// source map that transpileTS emits.
			command: []string{"node", "--enable-source-maps"},
			compile: transpileTS,
			// Cells are transpiled (TranspileCell) for the Node driver.
			contextDriver: "javascript",
		},
		{
			Name:       "bash",
			Aliases:    []string{"sh", "shell"},
			Extensions: []string{".sh", ".bash"},
			SourceName: "main.sh",
			command:    []string{"bash"},
		},
	}
}

// PythonSiteDir holds the sitecustomize that Python programs get (see
// EtcFiles).
const PythonSiteDir = "/etc/cove/python"

// NodePreload is the module that Node programs load first (see
// EtcFiles), through NODE_OPTIONS.
const NodePreload = "/etc/cove/node/preload.js"

// PipRefusedSystemInstall reports whether a program's output shows pip
// refusing to install into the system's Python because the distribution
// manages it (PEP 668, as Debian and Ubuntu do), which pip says before it
// tries the network: front ends then say to use a virtual environment.
func PipRefusedSystemInstall(output string) bool {
	return strings.Contains(output, "externally-managed-environment")
}

// EtcFiles are files, by path under /etc, that a sandbox's /etc must hold
// for programs to run as their language's entry says.
func EtcFiles() map[string]string {
	return map[string]string{
		// Python's standard output on a pipe is block-buffered, and
		// unbuffered with -u; line buffering is what a terminal gives.
		"cove/python/sitecustomize.py": "import sys\n" +
			"if sys.stdout is not None:\n" +
			"    try:\n" +
			"        sys.stdout.reconfigure(line_buffering=True)\n" +
			"    except (AttributeError, ValueError):\n" +
			"        pass\n",
		// Node writes to a pipe without waiting, and drops what is not
		// written yet when the program calls process.exit(): a program
		// that prints its results and exits lost them whenever the
		// pipe was full. Written as to a file or a terminal, output is
		// whole. And the sandbox has no netlink, through which Node
		// lists network interfaces: os.networkInterfaces(), which
		// libraries call as they load, gives the one the sandbox has,
		// loopback, rather than throw.
		"cove/node/preload.js": "for (const s of [process.stdout, process.stderr]) {\n" +
			"  if (s._handle && typeof s._handle.setBlocking === \"function\") s._handle.setBlocking(true);\n" +
			"}\n" +
			"{\n" +
			"  const os = require(\"os\");\n" +
			"  const list = os.networkInterfaces;\n" +
			"  os.networkInterfaces = function networkInterfaces() {\n" +
			"    try {\n" +
			"      return list.apply(this, arguments);\n" +
			"    } catch {\n" +
			"      return { lo: [\n" +
			"        { address: \"127.0.0.1\", netmask: \"255.0.0.0\", family: \"IPv4\", mac: \"00:00:00:00:00:00\", internal: true, cidr: \"127.0.0.1/8\" },\n" +
			"        { address: \"::1\", netmask: \"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\", family: \"IPv6\", mac: \"00:00:00:00:00:00\", internal: true, cidr: \"::1/128\", scopeid: 0 },\n" +
			"      ] };\n" +
			"    }\n" +
			"  };\n" +
			"}\n",
	}
}

// ContextDriver returns the interpreter driver of the language's stateful
// contexts, and false for a language that has no contexts (bash).
func (l *Language) ContextDriver() (string, bool) {
	return l.contextDriver, l.contextDriver != ""
}

// All returns every language, in the order cove lists them.
func All() []*Language { return languages() }

// Lookup returns the language with the given name or alias, ignoring case
// and surrounding spaces. An unknown name is a cove.CodeInvalid error that
// lists the accepted names.
func Lookup(nameOrAlias string) (*Language, error) {
	key := strings.ToLower(strings.TrimSpace(nameOrAlias))
	for _, l := range languages() {
		if key == l.Name || slices.Contains(l.Aliases, key) {
			return l, nil
		}
	}
	if key == "" {
		return nil, cove.Errorf(cove.CodeInvalid, "no language given: use %s", acceptedNames())
	}
	return nil, cove.Errorf(cove.CodeInvalid, "unknown language %q: use %s", nameOrAlias, acceptedNames())
}

// ForFile returns the language of a file from its extension, ignoring
// case. An unknown or missing extension is a cove.CodeInvalid error that
// lists the accepted extensions.
func ForFile(filename string) (*Language, error) {
	ext := strings.ToLower(filepath.Ext(filename))
	if l := forExtension(ext); ext != "" && l != nil {
		return l, nil
	}
	var exts []string
	for _, l := range languages() {
		exts = append(exts, l.Extensions...)
	}
	hint := "use " + joinOr(exts) + ", begin it with a #! line that names python3, node or bash, or choose the language with -l/--lang"
	if ext == "" {
		return nil, cove.Errorf(cove.CodeInvalid, "cannot tell the language of %q: it has no extension; %s", filename, hint)
	}
	return nil, cove.Errorf(cove.CodeInvalid, "cannot tell the language of %q from its extension %q: %s", filename, ext, hint)
}

// ForProgram returns the language of a program file: from its extension,
// or, when that says none, from its #! line (#!/usr/bin/env python3,
// #!/bin/bash). Errors: as ForFile's.
func ForProgram(filename string, code []byte) (*Language, error) {
	l, err := ForFile(filename)
	if err == nil {
		return l, nil
	}
	if l := forInterpreter(code); l != nil {
		return l, nil
	}
	return nil, err
}

// forInterpreter is the language of the interpreter that code's #! line
// names, or nil.
func forInterpreter(code []byte) *Language {
	line, ok := bytes.CutPrefix(code, []byte("#!"))
	if !ok {
		return nil
	}
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	fields := strings.Fields(string(line))
	if len(fields) == 0 {
		return nil
	}
	prog := path.Base(fields[0])
	if prog == "env" {
		// #!/usr/bin/env [-S] [NAME=VALUE...] PROGRAM
		prog = ""
		for _, f := range fields[1:] {
			if !strings.HasPrefix(f, "-") && !strings.Contains(f, "=") {
				prog = path.Base(f)
				break
			}
		}
	}
	var name string
	switch {
	case prog == "python" || strings.HasPrefix(prog, "python3"):
		name = "python"
	case prog == "node" || prog == "nodejs":
		name = "javascript"
	case prog == "bash" || prog == "sh" || prog == "dash":
		name = "bash"
	default:
		return nil
	}
	l, _ := Lookup(name)
	return l
}

// CompileError is a program that cove compiles before it runs (TypeScript)
// and that does not compile. It is the program's failure, reported as a
// compiler reports it, not a bad request: node reports a JavaScript syntax
// error as the program's, and Python a Python one.
type CompileError struct {
	// Message is the compiler's report: "file:line:col: error: text"
	// lines, each with the offending line and a caret.
	Message string
}

func (e *CompileError) Error() string { return e.Message }

// Prepare turns src into the files to write into the sandbox workspace and
// the argv that runs them. name is the source file's name: a user-given
// one such as "hello.py", or "" for SourceName. A name without one of the
// language's extensions gets its first one ("snippet" runs as
// "snippet.py"). argv are extra program arguments. A name that is not a
// plain file name, or that has another language's extension, is a
// cove.CodeInvalid error; TypeScript that does not compile is a
// *CompileError.
func (l *Language) Prepare(name, src string, argv []string) (*Program, error) {
	file, err := l.fileName(name)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{file: []byte(src)}
	run := file
	if l.compile != nil {
		out, code, err := l.compile(file, src)
		if err != nil {
			return nil, err
		}
		files[out] = code
		run = out
	}
	return &Program{
		Files: files,
		Argv:  slices.Concat(l.command, []string{run}, argv),
		Env:   maps.Clone(l.env),
	}, nil
}

// maxNameLen is Linux's NAME_MAX.
const maxNameLen = 255

// fileName picks the source file's name in the workspace. The name becomes
// a relative path there and an argument of the interpreter, so it must be a
// single path element that cannot be read as an option.
func (l *Language) fileName(name string) (string, error) {
	if name == "" {
		return l.SourceName, nil
	}
	var why string
	switch {
	case strings.ContainsRune(name, '/'):
		why = "it must not contain a slash"
	case strings.Contains(name, ".."):
		why = `it must not contain ".."`
	case strings.HasPrefix(name, "-"):
		why = `it must not start with "-"`
	case strings.ContainsFunc(name, unicode.IsControl):
		why = "it must not contain control characters such as NUL"
	case len(name) > maxNameLen:
		why = "it is longer than 255 bytes"
	}
	if why != "" {
		return "", cove.Errorf(cove.CodeInvalid, "invalid file name %q: %s", name, why)
	}
	ext := strings.ToLower(filepath.Ext(name))
	switch {
	case len(ext) == len(name):
		// A bare extension (".py") has no stem to derive other files from.
		return l.SourceName, nil
	case slices.Contains(l.Extensions, ext):
		return name, nil
	}
	if other := forExtension(ext); other != nil {
		// Running it under another name would hide what the caller
		// asked for; under this one, the interpreter would misread it.
		return "", cove.Errorf(cove.CodeInvalid, "file name %q has the extension of %s, not of %s: name %s code with %s, such as %s",
			name, other.Name, l.Name, l.Name, joinOr(l.Extensions), strings.TrimSuffix(name, filepath.Ext(name))+l.Extensions[0])
	}
	// No extension, or one of no language ("notes.txt"): the language's
	// is added, so that the name the caller chose is the one used.
	full := strings.TrimSuffix(name, ".") + l.Extensions[0]
	if len(full) > maxNameLen {
		return "", cove.Errorf(cove.CodeInvalid, "invalid file name %q: with the extension %s it is longer than 255 bytes", name, l.Extensions[0])
	}
	return full, nil
}

// forExtension returns the language whose extension (lower case, with
// the dot) ext is, or nil.
func forExtension(ext string) *Language {
	for _, l := range languages() {
		if slices.Contains(l.Extensions, ext) {
			return l
		}
	}
	return nil
}

// acceptedNames lists the languages with their aliases for error messages:
// "python (py, python3), ... or bash (sh, shell)".
func acceptedNames() string {
	var names []string
	for _, l := range languages() {
		n := l.Name
		if len(l.Aliases) > 0 {
			n += " (" + strings.Join(l.Aliases, ", ") + ")"
		}
		names = append(names, n)
	}
	return joinOr(names)
}

// joinOr joins items as "a, b, c or d".
func joinOr(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}
