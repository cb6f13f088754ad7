package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
)

// mcpCommand is `cove mcp` as a subprocess (the test binary acting as
// cove), with extra environment variables.
func mcpCommand(c *cli, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "mcp")
	cmd.Env = append(os.Environ(), append([]string{"COVE_TEST_AS_CLI=1", "COVE_DATA_DIR=" + c.data, "COVE_RUN_DIR=" + c.run}, env...)...)
	return cmd
}

// mcpSession connects the Go SDK's client to t.
func mcpSession(t *testing.T, tr mcp.Transport) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "cove-cli-test", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs, err := client.Connect(ctx, tr, nil)
	if err != nil {
		t.Fatalf("connecting to cove mcp: %v", err)
	}
	return cs
}

// callTool calls a tool that must succeed and decodes its structured
// content into out.
func callTool(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any, out any) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if res.IsError {
		t.Fatalf("%s failed: %v", name, res.Content)
	}
	if out != nil {
		b, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: %s: %v", name, b, err)
		}
	}
	return res
}

type mcpRun struct {
	SandboxID string `json:"sandbox_id"`
	Verdict   string `json:"verdict"`
	ExitCode  int    `json:"exit_code"`
	Stdout    string `json:"stdout"`
}

// TestMCPStdio runs `cove mcp` as an agent's host does: a subprocess
// speaking MCP on its standard input and output, with an in-process
// service, its logs (at debug level) on standard error only.
func TestMCPStdio(t *testing.T) {
	c := newCLI(t)
	cmd := mcpCommand(c, "COVE_LOG_LEVEL=debug")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cs := mcpSession(t, &mcp.CommandTransport{Command: cmd})

	tools, err := cs.ListTools(context.Background(), nil)
	if err != nil || len(tools.Tools) != 16 {
		t.Fatalf("tools: %v %v", tools, err)
	}
	var run mcpRun
	callTool(t, cs, "run_code", map[string]any{"language": "python", "code": "print(6 * 7)"}, &run)
	if run.Verdict != "ok" || run.Stdout != "42\n" {
		t.Errorf("run_code: %+v", run)
	}
	var sb struct {
		SandboxID string `json:"sandbox_id"`
	}
	callTool(t, cs, "create_sandbox", map[string]any{}, &sb)
	callTool(t, cs, "exec_command", map[string]any{"sandbox_id": sb.SandboxID, "command": "echo hi > f && cat f"}, &run)
	if run.Stdout != "hi\n" {
		t.Errorf("exec_command: %+v", run)
	}

	// Closing standard input ends the session and the process.
	if err := cs.Close(); err != nil {
		t.Fatalf("closing: %v\n%s", err, stderr.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("cove mcp exited with %d:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "level=") {
		t.Errorf("no logs on standard error: %q", stderr.String())
	}
}

// TestMCPStdioInProcess checks what `cove mcp` without a server does
// with the lifetimes of its in-process sandboxes: a TTL is enforced, keep
// is refused, and the stopped sandbox of a cove server sharing the data
// directory is left alone.
func TestMCPStdioInProcess(t *testing.T) {
	c := newCLI(t)
	srv := startServe(t, c, freeAddr(t))
	admin := adminClient(t, c, srv.url)
	ctx := context.Background()
	stopped, err := admin.CreateSandbox(ctx, cove.SandboxSpec{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.WriteFile(ctx, stopped.ID, "kept.txt", strings.NewReader("kept"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.StopSandbox(ctx, stopped.ID); err != nil {
		t.Fatal(err)
	}

	cmd := mcpCommand(c)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cs := mcpSession(t, &mcp.CommandTransport{Command: cmd})
	if got := cs.InitializeResult().Instructions; !strings.Contains(got, "own process") {
		t.Errorf("instructions: %q", got)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "create_sandbox", Arguments: map[string]any{"keep": true}})
	if err != nil || !res.IsError {
		t.Fatalf("keep: %v %+v", err, res)
	}
	if b, _ := json.Marshal(res.Content); !strings.Contains(string(b), "COVE_URL") {
		t.Errorf("keep refused without saying how to keep sandboxes: %s", b)
	}
	var sb struct {
		SandboxID string `json:"sandbox_id"`
	}
	callTool(t, cs, "create_sandbox", map[string]any{"ttl_seconds": 1}, &sb)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var l struct {
			Sandboxes []struct {
				SandboxID string `json:"sandbox_id"`
			} `json:"sandboxes"`
		}
		callTool(t, cs, "list_sandboxes", map[string]any{}, &l)
		if len(l.Sandboxes) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sandbox %s outlived its TTL of 1s: %+v\n%s", sb.SandboxID, l, stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := cs.Close(); err != nil {
		t.Fatalf("closing: %v\n%s", err, stderr.String())
	}

	if _, err := admin.StartSandbox(ctx, stopped.ID); err != nil {
		t.Fatalf("the server's stopped sandbox did not survive cove mcp: %v\n%s", err, stderr.String())
	}
	rc, _, err := admin.ReadFile(ctx, stopped.ID, "kept.txt")
	if err != nil {
		t.Fatalf("the server's sandbox lost its file: %v", err)
	}
	defer rc.Close()
	if got, err := io.ReadAll(rc); err != nil || string(got) != "kept" {
		t.Errorf("the server's sandbox's file holds %q (%v)", got, err)
	}
}

// TestMCPStdioRemote runs `cove mcp` against a cove server (COVE_URL and
// COVE_API_KEY): the sandboxes it makes are the server's, and those the
// session did not keep are deleted when standard input closes.
// TestMCPStdioPiped sends requests to `cove mcp` and closes its standard
// input at once, as `printf ... | cove mcp` does: every request still gets
// its response before cove mcp exits.
func TestMCPStdioPiped(t *testing.T) {
	c := newCLI(t)
	cmd := mcpCommand(c)
	cmd.Stdin = strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"pipe","version":"1"}}}
{"jsonrpc":"2.0","method":"notifications/initialized"}
{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"run_code","arguments":{"language":"python","code":"import time; time.sleep(0.3); print(6*7)"}}}
{"jsonrpc":"2.0","id":"three","method":"tools/list"}
`)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cove mcp: %v\n%s", err, out)
	}
	ids := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var m struct {
			ID     json.RawMessage `json:"id"`
			Result json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil || m.Result == nil {
			t.Fatalf("not a result: %q (%v)", line, err)
		}
		ids[string(m.ID)] = true
	}
	for _, id := range []string{"1", "2", `"three"`} {
		if !ids[id] {
			t.Errorf("no response to request %s in:\n%s", id, out)
		}
	}
	if !strings.Contains(string(out), `42\n`) {
		t.Errorf("run_code's output is not in:\n%s", out)
	}
}

func TestMCPStdioRemote(t *testing.T) {
	srv := newServer(t)
	c := newCLI(t)
	ctx := context.Background()
	key, err := srv.svc.CreateKey(ctx, cove.KeySpec{Name: "agent"})
	if err != nil {
		t.Fatal(err)
	}
	cmd := mcpCommand(c, "COVE_URL="+srv.url, "COVE_API_KEY="+key.Secret)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cs := mcpSession(t, &mcp.CommandTransport{Command: cmd})

	var temp, kept struct {
		SandboxID string `json:"sandbox_id"`
	}
	callTool(t, cs, "create_sandbox", map[string]any{}, &temp)
	callTool(t, cs, "create_sandbox", map[string]any{"keep": true}, &kept)
	var run mcpRun
	callTool(t, cs, "run_code", map[string]any{"sandbox_id": temp.SandboxID, "language": "bash", "code": "echo remote"}, &run)
	if run.Stdout != "remote\n" {
		t.Errorf("run_code: %+v", run)
	}
	// Contexts through the SDK: state persists between cells.
	var cell struct {
		SandboxID string `json:"sandbox_id"`
		Result    string `json:"result"`
	}
	callTool(t, cs, "run_in_context", map[string]any{"sandbox_id": temp.SandboxID, "code": "x = 20"}, &cell)
	callTool(t, cs, "run_in_context", map[string]any{"sandbox_id": temp.SandboxID, "code": "x + 22"}, &cell)
	if cell.Result != "42" || cell.SandboxID != temp.SandboxID {
		t.Errorf("run_in_context: %+v", cell)
	}
	got, err := srv.svc.GetSandbox(ctx, kept.SandboxID)
	if err != nil || got.Owner != key.ID {
		t.Fatalf("the server's sandbox %+v belongs to %q, want the key %s: %v", got, got.Owner, key.ID, err)
	}
	if err := cs.Close(); err != nil {
		t.Fatalf("closing: %v\n%s", err, stderr.String())
	}
	if _, err := srv.svc.GetSandbox(ctx, temp.SandboxID); cove.ErrorCode(err) != cove.CodeNotFound {
		t.Errorf("the session's sandbox outlived cove mcp: %v\n%s", err, stderr.String())
	}
	if _, err := srv.svc.GetSandbox(ctx, kept.SandboxID); err != nil {
		t.Errorf("the kept sandbox is gone: %v", err)
	}
}

// bearerTransport adds an API key to every request.
type bearerTransport struct{ key string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return http.DefaultTransport.RoundTrip(r)
}

// TestMCPOverServe uses MCP over streamable HTTP at /mcp of a real
// `cove serve`, with the admin key; without a key it gets 401.
func TestMCPOverServe(t *testing.T) {
	c := newCLI(t)
	srv := startServe(t, c, freeAddr(t))
	admin := adminClient(t, c, srv.url)
	key, err := os.ReadFile(filepath.Join(c.data, "admin.key"))
	if err != nil {
		t.Fatal(err)
	}

	resp, err := http.Post(srv.url+"/mcp", "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/mcp without a key: %d", resp.StatusCode)
	}

	cs := mcpSession(t, &mcp.StreamableClientTransport{
		Endpoint:   srv.url + "/mcp",
		HTTPClient: &http.Client{Transport: bearerTransport{strings.TrimSpace(string(key))}},
	})
	var run mcpRun
	callTool(t, cs, "run_code", map[string]any{"language": "javascript", "code": "console.log(6 * 7)"}, &run)
	if run.Stdout != "42\n" {
		t.Errorf("run_code: %+v", run)
	}
	var sb struct {
		SandboxID string `json:"sandbox_id"`
	}
	callTool(t, cs, "create_sandbox", map[string]any{}, &sb)
	if _, err := admin.GetSandbox(context.Background(), sb.SandboxID); err != nil {
		t.Fatalf("the server does not have the sandbox: %v", err)
	}
	cs.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := admin.GetSandbox(context.Background(), sb.SandboxID)
		if cove.ErrorCode(err) == cove.CodeNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session's sandbox outlived the session: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMCPTypeScriptClient drives `cove mcp` with the official TypeScript
// MCP SDK client from the npm registry, as agents' hosts do. The packages
// are installed once per lock file into a cache directory shared by runs.
func TestMCPTypeScriptClient(t *testing.T) {
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("npm is not installed (scripts/deps.sh installs it): the TypeScript MCP client cannot be fetched")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed (scripts/deps.sh installs it)")
	}
	c := newCLI(t)
	dir := tsClientDir(t, npm)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "client.mjs"), os.Args[0], "mcp")
	cmd.Env = append(os.Environ(), "COVE_TEST_AS_CLI=1", "COVE_DATA_DIR="+c.data, "COVE_RUN_DIR="+c.run)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node client.mjs: %v\n%s", err, stderr.String())
	}
	type content struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	type result struct {
		Content           []content       `json:"content"`
		StructuredContent json.RawMessage `json:"structuredContent"`
		IsError           bool            `json:"isError"`
	}
	var got struct {
		Server struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"server"`
		Tools []struct {
			Name         string `json:"name"`
			OutputSchema bool   `json:"outputSchema"`
		} `json:"tools"`
		Run, Failing, Exec, Missing result
		SandboxID                   string   `json:"sandbox_id"`
		Resources                   []string `json:"resources"`
		Templates                   []string `json:"templates"`
		Parallel                    []string `json:"parallel"`
		Read                        []struct {
			URI  string `json:"uri"`
			Text string `json:"text"`
		} `json:"read"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("client output %s: %v", out, err)
	}
	if got.Server.Name != "cove" || got.Server.Version != cove.Version {
		t.Errorf("server %+v", got.Server)
	}
	var names []string
	for _, tool := range got.Tools {
		names = append(names, tool.Name)
		if !tool.OutputSchema {
			t.Errorf("tool %s has no output schema", tool.Name)
		}
	}
	for _, want := range []string{"run_code", "create_sandbox", "run_in_context", "exec_command", "read_file"} {
		if !slices.Contains(names, want) {
			t.Errorf("tools %v lack %s", names, want)
		}
	}
	var run mcpRun
	json.Unmarshal(got.Run.StructuredContent, &run)
	if got.Run.IsError || run.Stdout != "42\n" || len(got.Run.Content) != 1 || !strings.Contains(got.Run.Content[0].Text, "--- stderr\noops") {
		t.Errorf("run_code: %+v", got.Run)
	}
	json.Unmarshal(got.Failing.StructuredContent, &run)
	if got.Failing.IsError || run.Verdict != "exit_nonzero" || run.ExitCode != 3 {
		t.Errorf("failing run_code: %+v", got.Failing)
	}
	json.Unmarshal(got.Exec.StructuredContent, &run)
	if run.Stdout != "hi from typescript" {
		t.Errorf("exec_command: %+v", got.Exec)
	}
	uri := "cove://sandboxes/" + got.SandboxID + "/files/notes/hello.txt"
	if !slices.Contains(got.Resources, uri) || len(got.Templates) != 1 || len(got.Read) != 1 || got.Read[0].Text != "hi from typescript" {
		t.Errorf("resources %v, templates %v, read %+v", got.Resources, got.Templates, got.Read)
	}
	if !slices.Equal(got.Parallel, []string{"7\n", "14\n", "21\n"}) {
		t.Errorf("parallel calls: %q", got.Parallel)
	}
	if !got.Missing.IsError || len(got.Missing.Content) == 0 || !strings.Contains(got.Missing.Content[0].Text, "error (not_found)") {
		t.Errorf("a missing sandbox: %+v", got.Missing)
	}
}

// tsClientDir returns a directory with the TypeScript client and its
// packages, installed with npm ci into a cache keyed by the lock file,
// so that later runs (and CI) skip the download.
func tsClientDir(t *testing.T, npm string) string {
	t.Helper()
	src := filepath.Join("..", "..", "internal", "mcpserver", "testdata", "tsclient")
	lock, err := os.ReadFile(filepath.Join(src, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lock)
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		base = "/var/cache"
		if os.Geteuid() != 0 {
			if base, err = os.UserCacheDir(); err != nil {
				base = os.TempDir()
			}
		}
	}
	root := filepath.Join(base, "cove-test")
	dir := filepath.Join(root, "tsclient-"+hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// One test process at a time installs.
	lk, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	if err := unix.Flock(int(lk.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"package.json", "package-lock.json", "client.mjs"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	done := filepath.Join(dir, "node_modules", ".cove-installed")
	if _, err := os.Stat(done); err == nil {
		return dir
	}
	cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "npm_config_cache="+filepath.Join(root, "npm"), "npm_config_update_notifier=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestMCPStdioNotJSON: a client that sends what is not JSON gets JSON-RPC's
// parse error, and the person who started cove mcp a line saying why it
// ended, with the exit status of bad input, instead of a silent exit 0.
func TestMCPStdioNotJSON(t *testing.T) {
	c := newCLI(t)
	cmd := mcpCommand(c)
	cmd.Stdin = strings.NewReader("garbage\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, _ := cmd.Output()
	var answer struct {
		ID    json.RawMessage `json:"id"`
		Error struct {
			Code int `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(out, &answer); err != nil || answer.Error.Code != -32700 || string(answer.ID) != "null" {
		t.Errorf("answer %q (%v), want a JSON-RPC parse error", out, err)
	}
	if code := cmd.ProcessState.ExitCode(); code != 125 || !strings.Contains(stderr.String(), "cove: the MCP client sent a line that is not JSON-RPC") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}
