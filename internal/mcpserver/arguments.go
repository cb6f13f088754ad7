package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/spelling"
)

// argumentsHint says what to do about arguments that do not fit a tool.
const argumentsHint = "correct the arguments named above and call the tool again; the tool's input schema describes each argument"

// checkArguments is a receiving middleware that checks the arguments of a
// tool call against the tool's input schema before the SDK does, so that
// a model reads what was wrong with each argument and how to give it, as
// an error (invalid) like any other, rather than a validator's trace. An
// optional argument given as null is taken as left out, as models often
// send it, and so is an optional sandbox_id given empty. What this check
// lets through, the SDK's validation still sees.
func (s *Server) checkArguments(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		r, ok := req.(*mcp.CallToolRequest)
		if !ok || method != "tools/call" || r.Params == nil {
			return next(ctx, method, req)
		}
		schema := s.inputs[r.Params.Name]
		if schema == nil {
			return next(ctx, method, req)
		}
		args, problems := argumentProblems(r.Params.Name, schema, r.Params.Arguments)
		if len(problems) > 0 {
			err := s.failHint(r.Params.Name, cove.Errorf(cove.CodeInvalid, "%s", strings.Join(problems, "; ")), argumentsHint)
			res := &mcp.CallToolResult{}
			res.SetError(err)
			return res, nil
		}
		r.Params.Arguments = args
		return next(ctx, method, req)
	}
}

// argumentProblems checks raw arguments against a tool's input schema. It
// returns the arguments without optional ones given as null, and what is
// wrong with them, one sentence each.
func argumentProblems(tool string, schema *jsonschema.Schema, raw json.RawMessage) (json.RawMessage, []string) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		raw = json.RawMessage("{}")
	}
	var args map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&args); err != nil {
		return raw, []string{fmt.Sprintf("the arguments must be a JSON object of named arguments (%v)", err)}
	}
	var problems, unknown []string
	changed := false
	for _, name := range slices.Sorted(maps.Keys(args)) {
		v := args[name]
		p, known := schema.Properties[name]
		switch {
		case !known:
			unknown = append(unknown, strconv.Quote(name))
		case (v == nil || name == sandboxArgumentName && isBlank(v)) && !slices.Contains(schema.Required, name):
			delete(args, name)
			changed = true
		default:
			if c, ok := languageAlias(name, p, v); ok {
				args[name], v = c, c
				changed = true
			}
			if c, ok := signalAlias(name, p, v); ok {
				args[name], v = c, c
				changed = true
			}
			if problem := valueProblem(name, p, v); problem != "" {
				problems = append(problems, problem)
			} else if name == sandboxArgumentName && isBlank(v) && slices.Contains(schema.Required, name) {
				problems = append(problems, "argument sandbox_id is empty: give the id of a sandbox (list_sandboxes lists yours; create_sandbox makes one)")
			}
		}
	}
	for _, name := range schema.Required {
		if _, ok := args[name]; !ok {
			problems = append(problems, fmt.Sprintf("argument %s is missing: %s", name, schema.Properties[name].Description))
		}
	}
	if len(unknown) > 0 {
		word := "argument"
		if len(unknown) > 1 {
			word = "arguments"
		}
		problems = append(problems, fmt.Sprintf("unknown %s %s: %s takes %s", word, strings.Join(unknown, ", "), tool,
			strings.Join(slices.Sorted(maps.Keys(schema.Properties)), ", ")))
	}
	if len(problems) > 0 || !changed {
		return raw, problems
	}
	b, err := json.Marshal(args)
	if err != nil {
		return raw, []string{err.Error()}
	}
	return b, nil
}

// sandboxArgumentName is the argument that names a sandbox. Where it
// is optional, the tools take it empty as left out (a fresh sandbox, or
// the session's); where it is required, an empty one is named as such
// rather than looked up as the sandbox "".
const sandboxArgumentName = "sandbox_id"

// isBlank reports whether v is a string of nothing but spaces.
func isBlank(v any) bool {
	s, ok := v.(string)
	return ok && strings.TrimSpace(s) == ""
}

// valueProblem says what is wrong with the value v of argument name, or
// "" when it fits p.
func valueProblem(name string, p *jsonschema.Schema, v any) string {
	want := p.Type
	if want == "" {
		// A nullable type, such as ["null", "array"]: the other one.
		for _, t := range p.Types {
			if t != "null" {
				want = t
			}
		}
	}
	if v == nil && slices.Contains(p.Types, "null") {
		return ""
	}
	if !isJSONType(v, want) {
		return fmt.Sprintf("argument %s must be %s, not %s: %s", name, typeName(p, want), describe(v), p.Description)
	}
	switch want {
	case "object":
		if p.AdditionalProperties != nil && p.AdditionalProperties.Type != "" {
			m := v.(map[string]any)
			for _, k := range slices.Sorted(maps.Keys(m)) {
				if !isJSONType(m[k], p.AdditionalProperties.Type) {
					return fmt.Sprintf("argument %s must map names to %ss, but %q is %s", name, p.AdditionalProperties.Type, k, describe(m[k]))
				}
			}
		}
	case "array":
		if p.Items != nil && p.Items.Type != "" {
			for i, item := range v.([]any) {
				if !isJSONType(item, p.Items.Type) {
					return fmt.Sprintf("argument %s must be a list of %ss, but item %d is %s", name, p.Items.Type, i, describe(item))
				}
			}
		}
	case "number", "integer":
		f, _ := v.(json.Number).Float64()
		if (p.Minimum != nil && f < *p.Minimum) || (p.Maximum != nil && f > *p.Maximum) {
			return fmt.Sprintf("argument %s is %s, out of range: give a value %s", name, v, rangeOf(p))
		}
	}
	if len(p.Enum) > 0 && !slices.Contains(p.Enum, v) {
		var names []string
		for _, e := range p.Enum {
			names = append(names, fmt.Sprint(e))
		}
		problem := fmt.Sprintf("argument %s is %s, which is not one of %s", name, describe(v), strings.Join(names, ", "))
		if s, ok := v.(string); ok {
			spellings := map[string]string{}
			for _, n := range names {
				spellings[n] = n
			}
			switch name {
			case languageArgument:
				maps.Copy(spellings, languageSpellings(names))
			case signalArgument:
				maps.Copy(spellings, signalSpellings(names))
			}
			if near := nearest(s, spellings); near != "" {
				problem += fmt.Sprintf(" (did you mean %q?)", near)
			} else if l, ok := canonicalLanguage(s); ok && name == languageArgument {
				// A language of cove's that this tool does not take:
				// bash, which has no stateful contexts.
				problem += fmt.Sprintf(" (%s has no stateful contexts: for shell commands use exec_command, or run_code with language %s)", l, l)
			}
		}
		return problem
	}
	return ""
}

// nearest returns what spellings maps the spelling closest to s to, when
// one is close enough to be a slip rather than another word: the same
// but for case and surrounding spaces, or at most two edits away, and
// fewer edits than half the spelling's letters (so that "go" is not
// taken for "js"). "" means no guess.
func nearest(s string, spellings map[string]string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	best, bestDist := "", 3
	for _, sp := range slices.Sorted(maps.Keys(spellings)) {
		d := spelling.Distance(s, strings.ToLower(sp))
		if d < bestDist && 2*d < len([]rune(sp)) {
			best, bestDist = spellings[sp], d
		}
	}
	return best
}

// isJSONType reports whether a decoded JSON value (numbers as
// json.Number) is of the JSON Schema type t.
func isJSONType(v any, t string) bool {
	switch t {
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "number":
		_, ok := v.(json.Number)
		return ok
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		if _, err := n.Int64(); err == nil {
			return true
		}
		f, err := n.Float64()
		return err == nil && f == float64(int64(f))
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	}
	return true
}

// typeName is the type an argument wants, in words.
func typeName(p *jsonschema.Schema, t string) string {
	switch t {
	case "number", "integer":
		w := "a number"
		if t == "integer" {
			w = "a whole number"
		}
		if p.Minimum != nil || p.Maximum != nil {
			w += " (" + rangeOf(p) + ")"
		}
		return w
	case "boolean":
		return "true or false"
	case "object":
		if p.AdditionalProperties != nil && p.AdditionalProperties.Type != "" {
			return "an object of names to " + p.AdditionalProperties.Type + "s"
		}
		return "an object"
	case "array":
		if p.Items != nil && p.Items.Type != "" {
			return "a list of " + p.Items.Type + "s"
		}
		return "a list"
	}
	return "a " + t
}

// rangeOf says which numbers an argument takes.
func rangeOf(p *jsonschema.Schema) string {
	switch {
	case p.Minimum != nil && p.Maximum != nil:
		return fmt.Sprintf("from %s to %s", number(*p.Minimum), number(*p.Maximum))
	case p.Minimum != nil:
		return fmt.Sprintf("of %s or more", number(*p.Minimum))
	case p.Maximum != nil:
		return fmt.Sprintf("of %s or less", number(*p.Maximum))
	}
	return "of any size"
}

// number is a number as a person writes it: 1048576 and 0.5, never in
// exponent notation as %g writes large ones (1.048576e+06).
func number(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// describe is a JSON value as an error names it: its type and, when
// short, the value.
func describe(v any) string {
	var kind string
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		kind = "the string"
	case bool:
		kind = "the boolean"
	case json.Number:
		return v.String()
	case map[string]any:
		kind = "an object"
	case []any:
		kind = "a list"
	}
	b, _ := json.Marshal(v)
	if len(b) > 40 {
		return kind
	}
	return kind + " " + string(b)
}
