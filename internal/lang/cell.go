package lang

import (
	"github.com/evanw/esbuild/pkg/api"
)

// CellSyntaxError is a TypeScript cell that does not parse.
type CellSyntaxError struct {
	// Message is esbuild's report, "file:line:col: error: text" with the
	// offending line and a caret.
	Message string
	// Text is the error alone, and Line its 1-based line in the cell.
	Text string
	Line int
}

func (e *CellSyntaxError) Error() string { return e.Message }

// TranspileCell turns a TypeScript cell of a stateful context into
// JavaScript for the context's Node driver, with a source map (JSON) that
// maps it back to the cell's lines. Unlike transpileTS it keeps the cell
// an ES module fragment: import statements stay (every one, even when
// unused in this cell, since later cells may use what they bind) and
// top-level await stays, for the driver to evaluate as Node's REPL does.
// A cell that does not parse gives a *CellSyntaxError.
func TranspileCell(name, src string) (code, sourceMap string, err error) {
	res := api.Transform(src, api.TransformOptions{
		Loader:      api.LoaderTS,
		Format:      api.FormatDefault,
		Platform:    api.PlatformNode,
		Engines:     []api.Engine{{Name: api.EngineNode, Version: "20"}},
		Sourcemap:   api.SourceMapExternal,
		Sourcefile:  name,
		TsconfigRaw: `{"compilerOptions":{"verbatimModuleSyntax":true}}`,
	})
	if len(res.Errors) > 0 {
		e := &CellSyntaxError{Message: formatMessages(res.Errors), Text: res.Errors[0].Text}
		if loc := res.Errors[0].Location; loc != nil {
			e.Line = loc.Line
		}
		return "", "", e
	}
	return string(res.Code), string(res.Map), nil
}
