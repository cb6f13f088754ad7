package client_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/client"
	"github.com/cove-sandbox/cove/internal/httpapi"
)

func TestAPIErrors(t *testing.T) {
	e := newEnv(t)
	key := e.adminKey
	sb := e.sandbox(e.admin, cove.SandboxSpec{})
	big := append(append([]byte(`{"env":{"X":"`), bytes.Repeat([]byte("x"), 1<<20)...), `"}}`...)
	var labels []string
	for i := 0; i < 65; i++ {
		labels = append(labels, fmt.Sprintf(`"k%d":"v"`, i))
	}
	manyLabels := `{"labels":{` + strings.Join(labels, ",") + `}}`
	cases := []struct {
		name, method, path, key string
		body                    string
		header                  []string
		status                  int
		code                    cove.Code
		message                 string // part of the message
	}{
		{"no key", "GET", "/v1/sandboxes", "", "", nil, 401, cove.CodeUnauthorized, "Authorization: Bearer"},
		{"basic auth", "GET", "/v1/sandboxes", "", "", []string{"Authorization", "Basic YTpi"}, 401, cove.CodeUnauthorized, "missing API key"},
		{"wrong key", "GET", "/v1/sandboxes", "cove_wrong", "", nil, 401, cove.CodeUnauthorized, "unknown API key"},
		{"unknown sandbox", "GET", "/v1/sandboxes/nope", key, "", nil, 404, cove.CodeNotFound, "nope"},
		{"unknown sandbox exec", "POST", "/v1/sandboxes/nope/exec", key, `{"cmd":["true"]}`, nil, 404, cove.CodeNotFound, "not found"},
		{"unknown sandbox file", "GET", "/v1/sandboxes/nope/files/a.txt", key, "", nil, 404, cove.CodeNotFound, "not found"},
		{"unknown file", "GET", "/v1/sandboxes/" + sb.ID + "/files/nope.txt", key, "", nil, 404, cove.CodeNotFound, "nope.txt"},
		{"truncated JSON", "POST", "/v1/sandboxes", key, `{"language":`, nil, 400, cove.CodeInvalid, "ends in the middle"},
		{"bad JSON", "POST", "/v1/sandboxes", key, `{"language": "python",}`, nil, 400, cove.CodeInvalid, "at byte"},
		{"unknown field", "POST", "/v1/sandboxes", key, `{"langauge":"python"}`, nil, 400, cove.CodeInvalid, `unknown field "langauge"`},
		{"unknown nested field", "POST", "/v1/sandboxes", key, `{"limits":{"memory":1}}`, nil, 400, cove.CodeInvalid, `unknown field "memory"`},
		{"wrong type", "POST", "/v1/sandboxes", key, `{"memory_mb":"lots"}`, nil, 400, cove.CodeInvalid, `"memory_mb" must be a number`},
		{"not an object", "POST", "/v1/sandboxes", key, `[1]`, nil, 400, cove.CodeInvalid, "expected an object"},
		{"trailing data", "POST", "/v1/sandboxes", key, `{} {}`, nil, 400, cove.CodeInvalid, "after the object"},
		{"bad limits", "POST", "/v1/sandboxes", key, `{"memory_mb":1,"pids":2}`, nil, 400, cove.CodeInvalid, "pids 2 is out of range (8 to"},
		{"limits twice", "POST", "/v1/sandboxes", key, `{"memory_mb":100,"limits":{"memory_mb":200}}`, nil, 400, cove.CodeInvalid, "memory_mb is given twice"},
		{"bad duration", "POST", "/v1/sandboxes", key, `{"ttl":"soon"}`, nil, 400, cove.CodeInvalid, `ttl: "soon" is not a duration: use a number of seconds`},
		{"bad language", "POST", "/v1/sandboxes", key, `{"language":"cobol"}`, nil, 400, cove.CodeInvalid, "cobol"},
		{"negative ttl", "POST", "/v1/sandboxes", key, `{"ttl":"-1s"}`, nil, 400, cove.CodeInvalid, `ttl -1s must not be negative: leave it out or give a duration such as "10m"`},
		{"negative idle timeout", "POST", "/v1/sandboxes", key, `{"idle_timeout":"-5m"}`, nil, 400, cove.CodeInvalid, "idle_timeout -5m0s must not be negative"},
		{"file limit over the disk", "POST", "/v1/sandboxes", key, `{"file_mb":64,"disk_mb":32}`, nil, 400, cove.CodeInvalid, "file size limit 64 MiB is larger than the disk limit of 32 MiB"},
		{"cmd and shell", "POST", "/v1/sandboxes/" + sb.ID + "/exec", key, `{"cmd":["echo","a"],"shell":"echo b"}`, nil, 400, cove.CodeInvalid, "give either cmd or shell, not both"},
		{"process cmd and shell", "POST", "/v1/sandboxes/" + sb.ID + "/processes", key, `{"cmd":["sleep","1"],"shell":"sleep 1"}`, nil, 400, cove.CodeInvalid, "give either cmd or shell, not both"},
		{"bad base64", "POST", "/v1/sandboxes/" + sb.ID + "/exec", key, `{"cmd":["cat"],"stdin":"%%%","stdin_encoding":"base64"}`, nil, 400, cove.CodeInvalid, "base64"},
		{"body too large", "POST", "/v1/sandboxes", key, string(big), nil, 413, cove.CodeInvalid, "too large"},
		{"compressed body", "POST", "/v1/sandboxes", key, "\x1f\x8b", []string{"Content-Encoding", "gzip"}, 415, cove.CodeInvalid, "uncompressed"},
		{"bad page size", "GET", "/v1/sandboxes?limit=-1", key, "", nil, 400, cove.CodeInvalid, "limit"},
		{"bad label filter", "GET", "/v1/sandboxes?label=x", key, "", nil, 400, cove.CodeInvalid, "label=key=value"},
		{"sub-millisecond timeout", "POST", "/v1/sandboxes/" + sb.ID + "/exec", key, `{"cmd":["sleep","5"],"timeout":"999us"}`, nil, 400, cove.CodeInvalid, "timeout 999µs is out of range (1ms to"},
		{"sub-millisecond run timeout", "POST", "/v1/run", key, `{"language":"bash","code":"sleep 5","limits":{"timeout":"1us"}}`, nil, 400, cove.CodeInvalid, "timeout 1µs is out of range"},
		{"huge output limit", "POST", "/v1/sandboxes/" + sb.ID + "/exec", key, `{"cmd":["true"],"output_kb":1000000}`, nil, 400, cove.CodeInvalid, "up to 16 MiB per stream"},
		{"huge pids", "POST", "/v1/sandboxes", key, `{"pids":10000000}`, nil, 400, cove.CodeInvalid, "pids 10000000 is out of range"},
		{"put a directory path", "PUT", "/v1/sandboxes/" + sb.ID + "/files/newdir/", key, "x", nil, 400, cove.CodeInvalid, "PUT writes a file"},
		{"empty label key on update", "PATCH", "/v1/sandboxes/" + sb.ID, key, `{"labels":{"":"x"}}`, nil, 400, cove.CodeInvalid, `invalid label ""`},
		{"too many labels", "POST", "/v1/sandboxes", key, manyLabels, nil, 400, cove.CodeInvalid, "65 labels: a sandbox carries up to 64"},
		{"label key with =", "POST", "/v1/sandboxes", key, `{"labels":{"a=b":"c"}}`, nil, 400, cove.CodeInvalid, `invalid label key "a=b": it may not hold "=" (a filter is key=value)`},
		{"label key with a newline", "PATCH", "/v1/sandboxes/" + sb.ID, key, `{"labels":{"a\nb":"c"}}`, nil, 400, cove.CodeInvalid, `invalid label key "a\nb": it may not hold "\n"`},
		{"unknown route", "GET", "/v1/nope", key, "", nil, 404, cove.CodeNotFound, "no such route"},
		{"wrong method", "DELETE", "/v1/version", key, "", nil, 405, cove.CodeInvalid, "not allowed"},
		{"admin only", "GET", "/v1/keys", "", "", nil, 401, cove.CodeUnauthorized, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body []byte
			if c.body != "" {
				body = []byte(c.body)
			}
			resp := e.do(c.method, c.path, c.key, body, c.header...)
			msg := apiError(t, resp, c.status, c.code)
			if !strings.Contains(msg, c.message) {
				t.Fatalf("message %q does not say %q", msg, c.message)
			}
			if c.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("401 without WWW-Authenticate: %v", resp.Header)
			}
			if c.status == 405 && resp.Header.Get("Allow") == "" {
				t.Fatalf("405 without Allow")
			}
		})
	}
	// The same errors through the SDK carry the API's code and message.
	_, err := e.admin.GetSandbox(ctxT(t), "nope")
	wantCode(t, err, cove.CodeNotFound)
	if !strings.Contains(err.Error(), "nope") {
		t.Fatalf("message %q", err)
	}
	_, err = e.admin.CreateSandbox(ctxT(t), cove.SandboxSpec{Limits: cove.Limits{Pids: 2}})
	wantCode(t, err, cove.CodeInvalid)
	_, err = e.client("cove_wrong").ListSandboxes(ctxT(t), cove.ListOptions{})
	wantCode(t, err, cove.CodeUnauthorized)
	// A server that is not there.
	c, _ := client.New("http://127.0.0.1:1", "x")
	_, err = c.ListSandboxes(ctxT(t), cove.ListOptions{})
	wantCode(t, err, cove.CodeUnavailable)
}

func TestPublicRoutes(t *testing.T) {
	e := newEnv(t)
	resp := e.do("GET", "/healthz", "", nil)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != `{"status":"ok"}` {
		t.Fatalf("healthz: %d %s", resp.StatusCode, b)
	}
	resp = e.do("GET", "/v1/openapi.json", "", nil)
	b, _ = io.ReadAll(resp.Body)
	var doc map[string]any
	if resp.StatusCode != 200 || json.Unmarshal(b, &doc) != nil || doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi: %d", resp.StatusCode)
	}
	// Metrics need an admin key.
	resp = e.do("GET", "/metrics", "", nil)
	apiError(t, resp, 401, cove.CodeUnauthorized)
	// A valid key that is not an admin's is forbidden, not asked for
	// another key.
	_, k := e.newKey(cove.Quota{})
	resp = e.do("GET", "/metrics", k.Secret, nil)
	apiError(t, resp, 403, cove.CodeForbidden)
	if h := resp.Header.Get("WWW-Authenticate"); h != "" {
		t.Fatalf("403 with WWW-Authenticate %q", h)
	}
	collect(t)(e.admin.Run(ctxT(t), cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "bash", Code: "true"}}))
	resp = e.do("GET", "/metrics", e.adminKey, nil)
	b, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `cove_exec_duration_seconds_count{verdict="ok"} 1`) ||
		!strings.Contains(string(b), `cove_runs_total{sandbox="new"} 1`) {
		t.Fatalf("metrics: %d %s", resp.StatusCode, b)
	}
	// The next run of the same key gets the first one's sandbox, reset.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(string(b), "cove_run_sandboxes_kept 1"); {
		if time.Now().After(deadline) {
			t.Fatalf("no sandbox kept after a run: %s", b)
		}
		time.Sleep(10 * time.Millisecond)
		resp = e.do("GET", "/metrics", e.adminKey, nil)
		b, _ = io.ReadAll(resp.Body)
	}
	collect(t)(e.admin.Run(ctxT(t), cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "bash", Code: "true"}}))
	resp = e.do("GET", "/metrics", e.adminKey, nil)
	b, _ = io.ReadAll(resp.Body)
	if !strings.Contains(string(b), `cove_runs_total{sandbox="reused"} 1`) {
		t.Fatalf("the second run did not reuse the first one's sandbox: %s", b)
	}
	// Or nobody's, when the server says so.
	e2 := newEnv(t, func(o *httpapi.Options) { o.PublicMetrics = true })
	if resp := e2.do("GET", "/metrics", "", nil); resp.StatusCode != 200 {
		t.Fatalf("public metrics: %d", resp.StatusCode)
	}
}

func TestKeys(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	nk, err := e.admin.CreateKey(ctx, cove.KeySpec{Name: "ci", Quota: cove.Quota{MaxSandboxes: 2, MaxConcurrentExecs: 3, MaxMemoryBytes: 1 << 30}})
	if err != nil || nk.Secret == "" || nk.ID == "" || nk.Admin || nk.Quota.MaxMemoryBytes != 1<<30 || nk.CreatedAt.IsZero() {
		t.Fatalf("create: %+v, %v", nk, err)
	}
	keys, err := e.admin.ListKeys(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("list: %+v, %v", keys, err)
	}
	c := e.client(nk.Secret)
	me, err := c.WhoAmI(ctx)
	if err != nil || me.ID != nk.ID || me.Admin || me.Quota.MaxSandboxes != 2 {
		t.Fatalf("whoami: %+v, %v", me, err)
	}
	admin, err := e.admin.WhoAmI(ctx)
	if err != nil || !admin.Admin {
		t.Fatalf("admin whoami: %+v, %v", admin, err)
	}
	_, err = c.CreateKey(ctx, cove.KeySpec{Name: "escalate", Admin: true})
	wantCode(t, err, cove.CodeForbidden)
	_, err = c.ListKeys(ctx)
	wantCode(t, err, cove.CodeForbidden)
	wantCode(t, c.RevokeKey(ctx, "admin"), cove.CodeForbidden)
	resp403 := e.do("GET", "/v1/keys", nk.Secret, nil)
	apiError(t, resp403, 403, cove.CodeForbidden)
	// The wire takes the quota in MiB, or in bytes.
	resp := e.do("POST", "/v1/keys", e.adminKey, []byte(`{"name":"raw","quota":{"max_memory_mb":1.5,"max_sandboxes":1}}`))
	var raw map[string]any
	json.NewDecoder(resp.Body).Decode(&raw)
	if resp.StatusCode != 201 || raw["key"] == "" || raw["quota"].(map[string]any)["max_memory_mb"] != 1.5 {
		t.Fatalf("raw create: %d %v", resp.StatusCode, raw)
	}
	// Revoked keys stop working at once.
	if err := e.admin.RevokeKey(ctx, nk.ID); err != nil {
		t.Fatal(err)
	}
	_, err = c.WhoAmI(ctx)
	wantCode(t, err, cove.CodeUnauthorized)
	wantCode(t, e.admin.RevokeKey(ctx, "nosuchkey"), cove.CodeNotFound)
	resp = e.do("DELETE", "/v1/keys/"+raw["id"].(string), e.adminKey, nil)
	if resp.StatusCode != 204 {
		t.Fatalf("raw revoke: %d", resp.StatusCode)
	}
	// An admin cannot lock everyone out: not with its own key, nor by
	// revoking the last admin key with another one's help.
	err = e.admin.RevokeKey(ctx, "admin")
	wantCode(t, err, cove.CodeConflict)
	if !strings.Contains(err.Error(), "its own key") {
		t.Errorf("revoking one's own key: %v", err)
	}
	second, err := e.admin.CreateKey(ctx, cove.KeySpec{Name: "second admin", Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	c2 := e.client(second.Secret)
	if err := c2.RevokeKey(ctx, "admin"); err != nil {
		t.Fatalf("revoking the first admin key with a second: %v", err)
	}
	// Nor can the second revoke itself.
	wantCode(t, c2.RevokeKey(ctx, second.ID), cove.CodeConflict)
}

// TestCrossKeyIsolation checks that another key's sandbox is not found
// on every sandbox route of the OpenAPI document, and that an admin sees
// it.
func TestCrossKeyIsolation(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	a, ka := e.newKey(cove.Quota{})
	b, kb := e.newKey(cove.Quota{})
	// setup makes a sandbox of A's with a file, a process and a context.
	setup := func() (*cove.Sandbox, *cove.Process, string) {
		sb := e.sandbox(a, cove.SandboxSpec{})
		if _, err := a.WriteFile(ctx, sb.ID, "a.txt", strings.NewReader("secret"), 0); err != nil {
			t.Fatal(err)
		}
		p, err := a.StartProcess(ctx, sb.ID, cove.ProcessRequest{Cmd: []string{"sleep", "60"}})
		if err != nil {
			t.Fatal(err)
		}
		c, err := a.CreateContext(ctx, sb.ID, cove.ContextSpec{Language: "python"})
		if err != nil {
			t.Fatal(err)
		}
		return sb, p, c.ID
	}
	sb, p, cid := setup()
	ws := []string{"Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}
	// A request per route that would succeed for the owner.
	requests := map[string]struct {
		body   string
		header []string
		query  string
	}{
		"GET /v1/sandboxes/{id}":                           {},
		"PATCH /v1/sandboxes/{id}":                         {body: `{"labels":{"x":"y"}}`},
		"DELETE /v1/sandboxes/{id}":                        {},
		"POST /v1/sandboxes/{id}/stop":                     {},
		"POST /v1/sandboxes/{id}/start":                    {},
		"POST /v1/sandboxes/{id}/exec":                     {body: `{"cmd":["cat","a.txt"]}`},
		"POST /v1/sandboxes/{id}/code":                     {body: `{"language":"bash","code":"cat a.txt"}`},
		"POST /v1/sandboxes/{id}/processes":                {body: `{"cmd":["true"]}`},
		"GET /v1/sandboxes/{id}/processes":                 {},
		"GET /v1/sandboxes/{id}/processes/{pid}":           {},
		"DELETE /v1/sandboxes/{id}/processes/{pid}":        {},
		"GET /v1/sandboxes/{id}/processes/{pid}/logs":      {},
		"POST /v1/sandboxes/{id}/processes/{pid}/wait":     {query: "?timeout=0.1"},
		"POST /v1/sandboxes/{id}/processes/{pid}/stdin":    {body: "x"},
		"POST /v1/sandboxes/{id}/processes/{pid}/signal":   {body: `{"signal":"TERM"}`},
		"GET /v1/sandboxes/{id}/pty":                       {header: ws},
		"GET /v1/sandboxes/{id}/files":                     {},
		"POST /v1/sandboxes/{id}/files":                    {body: string(makeTar(t, map[string]string{"t.txt": "t"})), header: []string{"Content-Type", "application/x-tar"}},
		"GET /v1/sandboxes/{id}/files/{path}":              {},
		"HEAD /v1/sandboxes/{id}/files/{path}":             {},
		"PUT /v1/sandboxes/{id}/files/{path}":              {body: "overwritten"},
		"DELETE /v1/sandboxes/{id}/files/{path}":           {},
		"POST /v1/sandboxes/{id}/fs/mkdir":                 {body: `{"path":"d"}`},
		"POST /v1/sandboxes/{id}/fs/move":                  {body: `{"from":"a.txt","to":"b.txt"}`},
		"POST /v1/sandboxes/{id}/fs/chmod":                 {body: `{"path":"a.txt","mode":"0600"}`},
		"POST /v1/sandboxes/{id}/fs/search":                {body: `{"content":"secret"}`},
		"POST /v1/sandboxes/{id}/fs/replace":               {body: `{"paths":["a.txt"],"old":"secret","new":"x"}`},
		"POST /v1/sandboxes/{id}/contexts":                 {body: `{"language":"python"}`},
		"GET /v1/sandboxes/{id}/contexts":                  {},
		"GET /v1/sandboxes/{id}/contexts/{cid}":            {},
		"DELETE /v1/sandboxes/{id}/contexts/{cid}":         {},
		"POST /v1/sandboxes/{id}/contexts/{cid}/restart":   {},
		"POST /v1/sandboxes/{id}/contexts/{cid}/interrupt": {},
		"POST /v1/sandboxes/{id}/contexts/{cid}/run":       {body: `{"code":"open('a.txt').read()"}`},
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage
	}
	if err := json.Unmarshal(httpapi.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for path, ops := range doc.Paths {
		if !strings.HasPrefix(path, "/v1/sandboxes/{id}") {
			continue
		}
		for method := range ops {
			if method == "parameters" {
				continue
			}
			route := strings.ToUpper(method) + " " + path
			req, ok := requests[route]
			if !ok {
				t.Errorf("no isolation request for %s: add one", route)
				continue
			}
			seen++
			var body []byte
			if req.body != "" {
				body = []byte(req.body)
			}
			method := route[:strings.Index(route, " ")]
			url := strings.NewReplacer("{id}", sb.ID, "{pid}", itoa(p.PID), "{path}", "a.txt", "{cid}", cid).Replace(path) + req.query
			resp := e.do(method, url, kb.Secret, body, req.header...)
			if resp.StatusCode != 404 {
				b, _ := io.ReadAll(resp.Body)
				t.Errorf("%s with another key: %d %s, want 404", route, resp.StatusCode, b)
			} else if method != "HEAD" { // a HEAD answer has no body to check
				if msg := apiError(t, resp, 404, cove.CodeNotFound); !strings.Contains(msg, sb.ID) {
					t.Errorf("%s with another key: %q is not the sandbox's not found", route, msg)
				}
			}
			// The same request succeeds for the owner, on a sandbox of
			// its own (the request may change or delete it).
			osb, op, ocid := setup()
			url = strings.NewReplacer("{id}", osb.ID, "{pid}", itoa(op.PID), "{path}", "a.txt", "{cid}", ocid).Replace(path) + req.query
			if resp := e.do(method, url, ka.Secret, body, req.header...); resp.StatusCode >= 400 {
				b, _ := io.ReadAll(resp.Body)
				t.Errorf("%s for the owner: %d %s", route, resp.StatusCode, b)
			}
		}
	}
	if seen != len(requests) {
		t.Errorf("%d sandbox routes in the document, %d requests here", seen, len(requests))
	}
	// B's listing does not show it; the owner's and an admin's do; the
	// file is untouched.
	list, err := b.ListSandboxes(ctx, cove.ListOptions{})
	if err != nil || len(list.Sandboxes) != 0 {
		t.Fatalf("B lists %+v, %v", list, err)
	}
	if _, err := e.admin.GetSandbox(ctx, sb.ID); err != nil {
		t.Fatalf("admin: %v", err)
	}
	rc, _, err := a.ReadFile(ctx, sb.ID, "a.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "secret" {
		t.Fatalf("A's file is now %q", got)
	}
	if p, err := a.GetProcess(ctx, sb.ID, p.PID); err != nil || p.State != cove.ProcessRunning {
		t.Fatalf("A's process: %+v, %v", p, err)
	}
}

// TestQuotaRace checks that exactly the quota is admitted when requests
// race, and that the others get 429 with Retry-After.
func TestQuotaRace(t *testing.T) {
	e := newEnv(t)
	c, k := e.newKey(cove.Quota{MaxSandboxes: 3})
	const n = 10
	var wg sync.WaitGroup
	statuses := make([]int, n)
	headers := make([]http.Header, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctxT(t), "POST", e.url+"/v1/sandboxes", strings.NewReader(`{"memory_mb":64}`))
			req.Header.Set("Authorization", "Bearer "+k.Secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[i], headers[i] = resp.StatusCode, resp.Header
		}()
	}
	wg.Wait()
	created := 0
	for i, s := range statuses {
		switch s {
		case 201:
			created++
		case 429:
			// Only a deletion makes room for another sandbox: waiting
			// does not, so the answer does not ask for a retry.
			if ra := headers[i].Get("Retry-After"); ra != "" {
				t.Errorf("429 for a sandbox quota with Retry-After %q", ra)
			}
		default:
			t.Errorf("status %d", s)
		}
	}
	if created != 3 {
		t.Fatalf("%d sandboxes created, want exactly 3 (statuses %v)", created, statuses)
	}
	_, err := c.CreateSandbox(ctxT(t), cove.SandboxSpec{})
	wantCode(t, err, cove.CodeQuotaExceeded)
	if d, ok := client.RetryAfter(err); ok {
		t.Errorf("the SDK's error for a sandbox quota asks to retry after %v", d)
	}
	list, err := c.ListSandboxes(ctxT(t), cove.ListOptions{})
	if err != nil || len(list.Sandboxes) != 3 {
		t.Fatalf("list: %d, %v", len(list.Sandboxes), err)
	}
	// A one-call run against a quota that sandboxes kept fill is not
	// asked to retry either: waiting frees nothing.
	_, err = c.Run(ctxT(t), cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "bash", Code: "true"}})
	wantCode(t, err, cove.CodeQuotaExceeded)
	if d, ok := client.RetryAfter(err); ok || !strings.Contains(err.Error(), "delete one first") {
		t.Errorf("a run against a quota that kept sandboxes fill: %v, retry after %v", err, d)
	}
	// Where a run in progress holds the quota, the next is asked to retry,
	// and gets through once it has ended.
	c1, _ := e.newKey(cove.Quota{MaxSandboxes: 1})
	first, err := c1.Run(ctxT(t), cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "bash", Code: "sleep 1"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c1.Run(ctxT(t), cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "bash", Code: "true"}})
	if d, ok := client.RetryAfter(err); cove.ErrorCode(err) != cove.CodeQuotaExceeded || !ok || d != time.Second || !strings.Contains(err.Error(), "1 of them for one-call runs in progress: retry when they end") {
		t.Errorf("a run while another holds the quota: %v, retry after %v", err, d)
	}
	if _, err := cove.Collect(first); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := c1.Run(ctxT(t), cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "bash", Code: "true"}})
		if err == nil {
			if _, err := cove.Collect(st); err != nil {
				t.Fatal(err)
			}
			break
		}
		if _, ok := client.RetryAfter(err); !ok || time.Now().After(deadline) {
			t.Fatalf("a run after the first ended: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Concurrent executions.
	c2, k2 := e.newKey(cove.Quota{MaxConcurrentExecs: 1})
	sb := e.sandbox(c2, cove.SandboxSpec{})
	st, err := c2.Exec(ctxT(t), sb.ID, cove.ExecRequest{Cmd: []string{"sleep", "30"}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	resp := e.do("POST", "/v1/sandboxes/"+sb.ID+"/exec", k2.Secret, []byte(`{"cmd":["true"]}`))
	if msg := apiError(t, resp, 429, cove.CodeQuotaExceeded); !strings.Contains(msg, "1 execution at once") {
		t.Errorf("message %q", msg)
	}
	if resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	// The SDK hands the server's Retry-After on.
	_, err = c2.Exec(ctxT(t), sb.ID, cove.ExecRequest{Cmd: []string{"true"}})
	wantCode(t, err, cove.CodeQuotaExceeded)
	if d, ok := client.RetryAfter(err); !ok || d != time.Second {
		t.Errorf("client.RetryAfter of the SDK's error: %v, %v; want 1s", d, ok)
	}
	if ce := (*cove.Error)(nil); !errors.As(err, &ce) || ce.RetryAfter != time.Second {
		t.Errorf("the SDK's error's RetryAfter: %+v, want 1s", ce)
	}

	// A sandbox larger than the key's whole memory quota can never be
	// admitted: that is no quota to wait for.
	_, k3 := e.newKey(cove.Quota{MaxMemoryBytes: 300 << 20})
	resp = e.do("POST", "/v1/sandboxes", k3.Secret, []byte(`{"memory_mb":512}`))
	if msg := apiError(t, resp, 400, cove.CodeInvalid); !strings.Contains(msg, "ask for at most 300 MiB") || resp.Header.Get("Retry-After") != "" {
		t.Errorf("message %q, Retry-After %q", msg, resp.Header.Get("Retry-After"))
	}
	// A stopped sandbox still counts: starting it again is not admitted.
	resp = e.do("POST", "/v1/sandboxes", k3.Secret, []byte(`{"memory_mb":200}`))
	var made struct{ ID string }
	if resp.StatusCode != 201 {
		t.Fatalf("a sandbox within the quota: %d", resp.StatusCode)
	}
	json.NewDecoder(resp.Body).Decode(&made)
	resp.Body.Close()
	if resp = e.do("POST", "/v1/sandboxes/"+made.ID+"/stop", k3.Secret, nil); resp.StatusCode != 200 {
		t.Fatalf("stop: %d", resp.StatusCode)
	}
	resp.Body.Close()
	resp = e.do("POST", "/v1/sandboxes", k3.Secret, []byte(`{"memory_mb":200}`))
	if msg := apiError(t, resp, 429, cove.CodeQuotaExceeded); !strings.Contains(msg, "its sandboxes, running or stopped, have 200 MiB") || !strings.Contains(msg, "delete one first") {
		t.Errorf("message %q", msg)
	}
}

// TestWrongServerURL: a cove server reached under a path that is not its
// API's (a proxy's prefix given where there is none) answers the SDK's
// paths with "no such route", which the SDK reports as a wrong URL, not
// as a missing sandbox or version.
func TestWrongServerURL(t *testing.T) {
	e := newEnv(t)
	c, err := client.New(e.url+"/foo", e.adminKey)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Version(ctxT(t))
	if cove.ErrorCode(err) != cove.CodeUnavailable || !strings.Contains(cove.ErrorMessage(err), e.url+"/foo does not lead to the cove API") {
		t.Fatalf("Version under a wrong prefix: %v", err)
	}
	_, err = c.GetSandbox(ctxT(t), "sb-1")
	if cove.ErrorCode(err) != cove.CodeUnavailable {
		t.Fatalf("GetSandbox under a wrong prefix: %v", err)
	}
	// The right URL's not_found stays not_found.
	_, err = e.admin.GetSandbox(ctxT(t), "sb-1")
	wantCode(t, err, cove.CodeNotFound)
}
