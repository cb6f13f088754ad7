package lang

import (
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/evanw/esbuild/pkg/api"
)

// esmPrelude gives an ES module snippet the CommonJS globals that snippets
// commonly use. They are set on globalThis rather than declared, so that a
// snippet that declares its own require or __dirname (a common ES module
// idiom) shadows them instead of failing with a redeclaration.
const esmPrelude = `import{createRequire as __coveCreateRequire}from"node:module";` +
	`import{fileURLToPath as __coveFileURLToPath}from"node:url";` +
	`import{dirname as __coveDirname}from"node:path";` +
	`globalThis.require??=__coveCreateRequire(import.meta.url);` +
	`globalThis.__filename??=__coveFileURLToPath(import.meta.url);` +
	`globalThis.__dirname??=__coveDirname(globalThis.__filename);`

// transpileTS compiles a TypeScript file to JavaScript that node 20 runs
// (node 20 cannot strip types itself), with an inline source map so that
// node --enable-source-maps reports TypeScript lines.
//
// A .ts snippet becomes CommonJS, like a plain node script: require,
// __dirname and module work, and import statements become require calls.
// CommonJS cannot express top-level await, and import.meta is empty in it,
// so a .ts snippet that uses either becomes an ES module instead. A .mts
// file is always an ES module and a .cts file always CommonJS, as in tsc.
// The output is named .cjs or .mjs so that its module system never depends
// on a package.json the user may have put in the workspace.
func transpileTS(name, src string) (string, []byte, error) {
	ext := filepath.Ext(name)
	stem := name[:len(name)-len(ext)]
	esm := strings.EqualFold(ext, ".mts")

	res := transformTS(name, src, esm)
	if strings.EqualFold(ext, ".ts") && !esm && needsESM(res) {
		esm = true
		res = transformTS(name, src, esm)
	}
	if len(res.Errors) > 0 {
		return "", nil, &CompileError{Message: formatMessages(res.Errors)}
	}
	out := stem + ".cjs"
	if esm {
		out = stem + ".mjs"
	}
	return out, res.Code, nil
}

func transformTS(name, src string, esm bool) api.TransformResult {
	opts := api.TransformOptions{
		Loader:     api.LoaderTS,
		Format:     api.FormatCommonJS,
		Platform:   api.PlatformNode,
		Engines:    []api.Engine{{Name: api.EngineNode, Version: "20"}},
		Sourcemap:  api.SourceMapInline,
		Sourcefile: name,
	}
	if esm {
		opts.Format = api.FormatESModule
		opts.Banner = esmPrelude
	}
	return api.Transform(src, opts)
}

// needsESM reports whether a CommonJS transform failed or degraded only
// because the code needs ES module semantics. esbuild gives the top-level
// await error no message ID, so it is recognised by its text; the tests
// pin that text for the esbuild version in go.mod.
func needsESM(res api.TransformResult) bool {
	for _, m := range res.Errors {
		if strings.HasPrefix(m.Text, "Top-level await is currently not supported") {
			return true
		}
	}
	for _, m := range res.Warnings {
		if m.ID == "empty-import-meta" {
			return true
		}
	}
	return false
}

// formatMessages renders esbuild errors the way compilers do, one per
// line as "file:line:column: error: text" with 1-based columns, each
// followed by the offending source line and a caret under the spot.
func formatMessages(msgs []api.Message) string {
	var b strings.Builder
	for i, m := range msgs {
		if i > 0 {
			b.WriteByte('\n')
		}
		writeMessage(&b, "error", m.Text, m.Location)
		for _, n := range m.Notes {
			b.WriteByte('\n')
			writeMessage(&b, "note", n.Text, n.Location)
		}
	}
	return b.String()
}

func writeMessage(b *strings.Builder, kind, text string, loc *api.Location) {
	if loc == nil {
		fmt.Fprintf(b, "%s: %s", kind, text)
		return
	}
	// esbuild's column is a 0-based byte offset; editors expect 1-based
	// characters.
	col := min(max(loc.Column, 0), len(loc.LineText))
	fmt.Fprintf(b, "%s:%d:%d: %s: %s", loc.File, loc.Line, utf8.RuneCountInString(loc.LineText[:col])+1, kind, text)
	if loc.LineText == "" {
		return
	}
	b.WriteString("\n    ")
	b.WriteString(loc.LineText)
	b.WriteString("\n    ")
	// Copy tabs so that the caret lines up however tabs are displayed.
	for _, r := range loc.LineText[:col] {
		if r == '\t' {
			b.WriteByte('\t')
		} else {
			b.WriteByte(' ')
		}
	}
	b.WriteByte('^')
	end := min(col+max(loc.Length, 0), len(loc.LineText))
	if n := utf8.RuneCountInString(loc.LineText[col:end]); n > 1 {
		b.WriteString(strings.Repeat("~", n-1))
	}
}
