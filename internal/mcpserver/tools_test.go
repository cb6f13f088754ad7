package mcpserver

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cove-sandbox/cove"
)

// TestToolsGolden compares the tool list, with descriptions and schemas,
// with testdata/tools.golden.json: a change to what models see is a
// deliberate one (go test -update rewrites the file).
func TestToolsGolden(t *testing.T) {
	c := connect(t, New(nil, Options{}))
	res, err := c.cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(res.Tools, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "tools.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./internal/mcpserver -update creates it)", err)
	}
	if string(got) != string(want) {
		t.Fatalf("the tool list differs from %s (go test ./internal/mcpserver -update rewrites it):\n%s", path, got)
	}
}

// TestToolsForModels checks what every tool offers a model: a
// description, a title, an object schema that describes each property,
// and an output schema.
func TestToolsForModels(t *testing.T) {
	c := connect(t, New(nil, Options{}))
	res, err := c.cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
		t.Run(tool.Name, func(t *testing.T) {
			if len(tool.Description) < 60 || tool.Title == "" || tool.Annotations == nil {
				t.Errorf("description %q, title %q, annotations %v", tool.Description, tool.Title, tool.Annotations)
			}
			var in struct {
				Type       string `json:"type"`
				Properties map[string]struct {
					Description string `json:"description"`
				} `json:"properties"`
				AdditionalProperties *bool `json:"additionalProperties"`
			}
			b, _ := json.Marshal(tool.InputSchema)
			if err := json.Unmarshal(b, &in); err != nil || in.Type != "object" {
				t.Fatalf("input schema %s: %v", b, err)
			}
			for name, p := range in.Properties {
				if p.Description == "" {
					t.Errorf("property %s has no description", name)
				}
			}
			if in.AdditionalProperties == nil || *in.AdditionalProperties {
				t.Errorf("input schema allows unknown properties: %s", b)
			}
			if tool.OutputSchema == nil {
				t.Errorf("no output schema")
			}
		})
	}
	want := []string{"create_sandbox", "delete_file", "delete_sandbox", "exec_command", "kill_process", "list_files", "list_processes",
		"list_sandboxes", "process_logs", "read_file", "run_code", "run_in_context", "start_process", "start_sandbox", "wait_process", "write_file"}
	slices.Sort(names)
	if !slices.Equal(names, want) {
		t.Errorf("tools %v, want %v", names, want)
	}
	tmpls, err := c.cs.ListResourceTemplates(context.Background(), nil)
	if err != nil || len(tmpls.ResourceTemplates) != 1 || tmpls.ResourceTemplates[0].URITemplate != fileTemplate {
		t.Errorf("resource templates %+v, %v", tmpls, err)
	}
}

// TestBadArguments checks that arguments the schema refuses come back as
// tool errors a model can correct, not as protocol failures.
func TestBadArguments(t *testing.T) {
	c := connect(t, New(nil, Options{}))
	for _, tc := range []struct {
		tool string
		args map[string]any
		want string
	}{
		{"run_code", map[string]any{"language": "cobol", "code": "x"}, "language"},
		{"run_code", map[string]any{"code": "print(1)"}, "language"},
		{"run_code", map[string]any{"language": "python", "code": "1", "memory_mb": 1}, "memory_mb"},
		{"run_code", map[string]any{"language": "python", "code": "1", "bogus": true}, "bogus"},
		{"exec_command", map[string]any{"command": "ls"}, "sandbox_id"},
		{"exec_command", map[string]any{"sandbox_id": "", "command": "ls"}, "argument sandbox_id is empty: give the id of a sandbox"},
		{"read_file", map[string]any{"sandbox_id": " ", "path": "a"}, "argument sandbox_id is empty"},
		{"run_in_context", map[string]any{"context_id": "ctx-nope", "code": "1"}, "error (not_found): this session made no context ctx-nope\nhint: if another session made it, give its sandbox_id too; otherwise leave context_id out"},
		{"read_file", map[string]any{"sandbox_id": "x", "path": "a", "max_bytes": 0}, "max_bytes"},
		{"kill_process", map[string]any{"sandbox_id": "x", "pid": 1, "signal": "SIGSTOP"}, "signal"},
		{"wait_process", map[string]any{"sandbox_id": "x", "pid": 1, "timeout_seconds": 601}, "timeout_seconds"},
		{"wait_process", map[string]any{"sandbox_id": "x", "pid": 1, "timeout_seconds": 0}, "timeout_seconds"},
	} {
		t.Run(tc.tool, func(t *testing.T) {
			res, err := c.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tc.tool, Arguments: tc.args})
			if err != nil {
				t.Fatalf("protocol error: %v", err)
			}
			if !res.IsError {
				t.Fatalf("accepted %v: %s", tc.args, text(res))
			}
			if got := text(res); !strings.Contains(strings.ToLower(got), strings.ToLower(tc.want)) {
				t.Errorf("error %q does not mention %q", got, tc.want)
			}
		})
	}
}

// TestNetworkDescribed checks that what models read about the network
// matches the network argument: sandboxes reach nothing unless they are
// made with one, and the instructions and tool descriptions say so
// rather than that there is no network access at all.
func TestNetworkDescribed(t *testing.T) {
	c := connect(t, New(nil, Options{}))
	texts := map[string]string{"instructions": c.cs.InitializeResult().Instructions}
	res, err := c.cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range res.Tools {
		texts[tool.Name] = tool.Description
	}
	for _, name := range []string{"instructions", "run_code", "create_sandbox"} {
		d := strings.ToLower(texts[name])
		if !strings.Contains(d, "network") || !strings.Contains(d, "pypi.org") {
			t.Errorf("%s does not say how to give a sandbox network access: %q", name, texts[name])
		}
	}
	for name, d := range texts {
		for _, wrong := range []string{"there is no network access", "no network access (", "cannot download anything", "made with network, the hosts"} {
			if strings.Contains(strings.ToLower(d), wrong) {
				t.Errorf("%s says %q, though a network argument gives access: %q", name, wrong, d)
			}
		}
	}
}

// TestArgumentErrors checks that arguments that do not fit a tool's
// schema come back as an error (invalid) that names each wrong argument,
// says what it takes, and what to do, all at once.
func TestArgumentErrors(t *testing.T) {
	c := connect(t, New(nil, Options{}))
	for _, tc := range []struct {
		name string
		tool string
		args map[string]any
		want []string
	}{
		{"string for a number", "run_code", map[string]any{"language": "python", "code": "1", "timeout_seconds": "10"},
			[]string{`argument timeout_seconds must be a number (from 0.001 to 86400), not the string "10": wall-clock limit in seconds`}},
		{"out of range", "run_code", map[string]any{"language": "python", "code": "1", "timeout_seconds": -1},
			[]string{"argument timeout_seconds is -1, out of range: give a value from 0.001 to 86400"}},
		{"fraction for a whole number", "process_logs", map[string]any{"sandbox_id": "x", "pid": 1.5},
			[]string{"argument pid must be a whole number, not 1.5"}},
		{"typo", "run_code", map[string]any{"language": "pyhton", "code": "1"},
			[]string{`argument language is the string "pyhton", which is not one of python, javascript, typescript, bash (did you mean "python"?)`}},
		{"typo of another language", "create_sandbox", map[string]any{"language": "javscript"},
			[]string{`(did you mean "javascript"?)`}},
		{"typo of an alias", "run_code", map[string]any{"language": "pyton3", "code": "1"},
			[]string{`(did you mean "python"?)`}},
		{"typo in capitals", "run_code", map[string]any{"language": "TypeScirpt", "code": "1"},
			[]string{`(did you mean "typescript"?)`}},
		{"typo of a signal", "kill_process", map[string]any{"sandbox_id": "x", "pid": 1, "signal": "SIGTREM"},
			[]string{`argument signal is the string "SIGTREM", which is not one of SIGTERM, SIGKILL, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 (did you mean "SIGTERM"?)`}},
		{"missing", "read_file", map[string]any{"sandbox_id": "x"},
			[]string{"argument path is missing: the file's path, relative to /workspace"}},
		{"map of numbers", "create_sandbox", map[string]any{"labels": map[string]any{"team": 7}},
			[]string{`argument labels must map names to strings, but "team" is 7`}},
		{"list of numbers", "run_code", map[string]any{"language": "python", "code": "1", "args": []any{"a", 2}},
			[]string{"argument args must be a list of strings, but item 1 is 2"}},
		{"null for a required argument", "exec_command", map[string]any{"sandbox_id": nil, "command": "ls"},
			[]string{"argument sandbox_id must be a string, not null"}},
		{"several at once", "run_code", map[string]any{"code": 123, "bogus": true, "other": 1},
			[]string{"argument code must be a string, not 123", `unknown arguments "bogus", "other": run_code takes args, code, env,`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tc.tool, Arguments: tc.args})
			if err != nil {
				t.Fatalf("protocol error: %v", err)
			}
			got := text(res)
			if !res.IsError || !strings.HasPrefix(got, "error (invalid): ") || !strings.Contains(got, "\nhint: "+argumentsHint) {
				t.Fatalf("%s(%v) = %v %q, want an error (invalid) with a hint", tc.tool, tc.args, res.IsError, got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("error %q does not say %q", got, w)
				}
			}
		})
	}
}

// TestNoSuggestion checks that a value far from every accepted one, or
// an alias of a language the tool does not take, gets no guess.
func TestNoSuggestion(t *testing.T) {
	c := connect(t, New(nil, Options{}))
	for _, tc := range []struct {
		tool string
		args map[string]any
		want string
	}{
		{"run_code", map[string]any{"language": "cobol", "code": "1"}, `argument language is the string "cobol", which is not one of python, javascript, typescript, bash`},
		{"run_code", map[string]any{"language": "go", "code": "1"}, `argument language is the string "go", which is not one of`},
		{"run_code", map[string]any{"language": "jsx", "code": "1"}, `argument language is the string "jsx", which is not one of`},
		// bash has no contexts; its alias is not taken for another language.
		{"run_in_context", map[string]any{"language": "sh", "code": "1"}, `argument language is the string "sh", which is not one of python, javascript, typescript`},
	} {
		got := c.fails(tc.tool, tc.args, tc.want)
		if strings.Contains(got, "did you mean") {
			t.Errorf("%s(%v) guessed: %s", tc.tool, tc.args, got)
		}
	}
}

// TestLanguageDescribed checks that the schemas of the language
// arguments, which list the canonical names, name the aliases the tools
// also take.
func TestLanguageDescribed(t *testing.T) {
	srv := New(nil, Options{})
	for tool, aliases := range map[string][]string{
		"run_code":       {"py", "python3", "js", "node", "ts", "sh", "shell"},
		"create_sandbox": {"py", "python3", "js", "node", "ts", "sh", "shell"},
		"run_in_context": {"py", "python3", "js", "node", "ts"},
	} {
		d := srv.inputs[tool].Properties["language"].Description
		for _, a := range aliases {
			if !strings.Contains(d, a) {
				t.Errorf("%s: the language's description does not name %s: %q", tool, a, d)
			}
		}
		if tool == "run_in_context" && strings.Contains(d, "shell") {
			t.Errorf("%s: the language's description names an alias of bash, which has no contexts: %q", tool, d)
		}
	}
}

// TestErrorHints checks that a tool error of every code, and of a call
// cancelled or out of time, says what to do next.
func TestErrorHints(t *testing.T) {
	srv := New(nil, Options{})
	for code := range cove.Codes {
		got := srv.fail("list_sandboxes", cove.Errorf(code, "something went wrong")).Error()
		if !strings.HasPrefix(got, "error ("+string(code)+"): ") || !strings.Contains(got, "\nhint: ") {
			t.Errorf("%s: %q has no hint", code, got)
		}
	}
	for _, err := range []error{context.Canceled, context.DeadlineExceeded} {
		if got := srv.fail("run_code", err).Error(); !strings.Contains(got, "\nhint: ") {
			t.Errorf("%v: %q has no hint", err, got)
		}
	}
	// Only a server that cannot be reached is the configuration's fault.
	got := srv.fail("run_code", cove.Errorf(cove.CodeUnavailable, "cove is shutting down")).Error()
	if strings.Contains(got, "COVE_URL") || strings.Contains(got, "cove serve") {
		t.Errorf("a service shutting down: %q", got)
	}
}

// TestNullArguments checks that an optional argument given as null is
// taken as left out, and a required one is not.
func TestNullArguments(t *testing.T) {
	srv := New(nil, Options{})
	schema := srv.inputs["run_code"]
	args, problems := argumentProblems("run_code", schema, json.RawMessage(`{"language":"python","code":"1","sandbox_id":null,"args":null}`))
	if len(problems) > 0 {
		t.Fatalf("problems %q", problems)
	}
	var got map[string]any
	if err := json.Unmarshal(args, &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got["sandbox_id"]; ok || len(got) != 2 {
		t.Errorf("arguments %s still hold the nulls", args)
	}
	if _, problems := argumentProblems("run_code", schema, json.RawMessage(`{"language":"python","code":null}`)); len(problems) != 1 {
		t.Errorf("a null code gave %q, want one problem", problems)
	}
	if _, problems := argumentProblems("run_code", schema, json.RawMessage(`[1]`)); len(problems) != 1 || !strings.Contains(problems[0], "JSON object") {
		t.Errorf("a list of arguments gave %q", problems)
	}
}

// TestInProcess checks a server whose sandboxes end with its process
// (cove mcp without a cove server): the instructions and the keep
// arguments say so, keep is refused with what to do instead, and the
// server's own mode still offers keep.
func TestInProcess(t *testing.T) {
	svc := newService(t)
	c := connect(t, New(svc, Options{InProcess: true}))
	if got := c.cs.InitializeResult().Instructions; !strings.Contains(got, "last as long as it") || strings.Contains(got, "unless created with keep") {
		t.Errorf("instructions: %q", got)
	}
	res, err := c.cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range res.Tools {
		if tool.Name != "run_code" && tool.Name != "create_sandbox" {
			continue
		}
		b, _ := json.Marshal(tool)
		if strings.Contains(string(b), "after this MCP session") || strings.Contains(tool.Description, "unless keep is true") {
			t.Errorf("%s promises keep: %s", tool.Name, b)
		}
		if !strings.Contains(string(b), "own process") {
			t.Errorf("%s does not say that sandboxes end with the process: %s", tool.Name, b)
		}
	}
	calls := map[string]map[string]any{
		"create_sandbox": {"keep": true},
		"run_code":       {"language": "python", "code": "print(1)", "keep": true},
	}
	for tool, args := range calls {
		msg := c.fails(tool, args, "error (invalid): keep is not available here")
		if !strings.Contains(msg, "COVE_URL") || !strings.Contains(msg, "hint: leave keep out") {
			t.Errorf("%s: %s", tool, msg)
		}
	}
	if l, err := svc.ListSandboxes(context.Background(), cove.ListOptions{}); err != nil || len(l.Sandboxes) != 0 {
		t.Errorf("keep refused, yet sandboxes were made: %+v %v", l, err)
	}

	// A server's MCP keeps sandboxes.
	c = connect(t, New(svc, Options{}))
	var sb sandboxOutput
	c.ok("create_sandbox", map[string]any{"keep": true}, &sb)
	if sb.Session != "kept after this session" {
		t.Errorf("keep on a server: %+v", sb)
	}
	c.ok("delete_sandbox", map[string]any{"sandbox_id": sb.SandboxID}, nil)
}

// TestBoundsInFigures checks that the bounds an argument error gives are
// written as numbers are, not in exponent notation.
func TestBoundsInFigures(t *testing.T) {
	c := connect(t, New(nil, Options{}))
	msg := c.fails("create_sandbox", map[string]any{"memory_mb": 1 << 30, "ttl_seconds": 1e9, "cpus": 1000}, "error (invalid)")
	for _, want := range []string{"from 8 to 1048576", "from 1 to 31536000", "from 0.01 to "} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "e+") {
		t.Errorf("a bound in exponent notation: %q", msg)
	}
}

// TestExitSchema checks that how a background process ended is described
// without output fields of its own, which it would carry empty: its
// output is process_logs' (at the top level).
func TestExitSchema(t *testing.T) {
	c := connect(t, New(nil, Options{}))
	res, err := c.cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range res.Tools {
		b, err := json.Marshal(tool.OutputSchema)
		if err != nil {
			t.Fatal(err)
		}
		var schema struct {
			Properties map[string]struct {
				Properties map[string]any `json:"properties"`
				Required   []string       `json:"required"`
				Items      *struct {
					Properties map[string]struct {
						Properties map[string]any `json:"properties"`
					} `json:"properties"`
				} `json:"items"`
			} `json:"properties"`
		}
		if err := json.Unmarshal(b, &schema); err != nil {
			t.Fatal(err)
		}
		exits := []map[string]any{schema.Properties["exit"].Properties}
		if ps := schema.Properties["processes"].Items; ps != nil {
			exits = append(exits, ps.Properties["exit"].Properties)
		}
		for _, exit := range exits {
			if exit == nil {
				continue
			}
			if _, ok := exit["verdict"]; !ok {
				t.Errorf("%s: exit has no verdict: %s", tool.Name, b)
			}
			for _, field := range []string{"stdout", "stderr", "sandbox_id"} {
				if _, ok := exit[field]; ok {
					t.Errorf("%s: exit has %s: %s", tool.Name, field, b)
				}
			}
		}
	}
}
