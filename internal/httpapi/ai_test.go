package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

// aiService answers Analyze with scripted events.
type aiService struct {
	*fakeService
	events    []cove.AIEvent
	err       error // from Analyze
	streamErr error // after the events
	got       cove.AIRequest
}

func (a *aiService) Analyze(ctx context.Context, req cove.AIRequest) (cove.AIStream, error) {
	a.got = req
	if a.err != nil {
		return nil, a.err
	}
	return &listAIStream{events: a.events, err: a.streamErr}, nil
}

type listAIStream struct {
	events []cove.AIEvent
	err    error
}

func (l *listAIStream) Next() (cove.AIEvent, error) {
	if len(l.events) == 0 {
		if l.err != nil {
			return cove.AIEvent{}, l.err
		}
		return cove.AIEvent{}, io.EOF
	}
	ev := l.events[0]
	l.events = l.events[1:]
	return ev, nil
}

func (l *listAIStream) Close() error { return nil }

func aiEvents() []cove.AIEvent {
	return []cove.AIEvent{
		{Type: cove.AIEventText, Text: "It divides "},
		{Type: cove.AIEventText, Text: "by zero."},
		{Type: cove.AIEventStep, Step: &cove.AIStep{N: 1, Tool: cove.AIToolRunCode, Input: json.RawMessage(`{"code":"print(1)"}`), Output: "ok", Run: &cove.ExecResult{Verdict: cove.VerdictOK, Stdout: "1\n"}}},
		{Type: cove.AIEventResult, Result: &cove.AIResult{Action: cove.AIFix, Model: "m", Text: "It divides by zero.", Code: "print(1)\n", Verified: true, StopReason: cove.AIStopVerified}},
	}
}

func serveAI(t *testing.T, svc *aiService, target, body string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	h := New(svc, Options{Auth: fakeAuth{}})
	req := httptest.NewRequest("POST", target, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer user")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// TestAnalyzeRequest checks the decoding: the action from the path, the
// execution as the execution routes answer it.
func TestAnalyzeRequest(t *testing.T) {
	svc := &aiService{fakeService: &fakeService{}, events: aiEvents()}
	body := `{"language":"py","code":"print(1/0)","filename":"div.py","verify":true,"test":"true","max_steps":3,"timeout":"90s","files":{"t.py":"import div","b.bin":{"content":"AAE=","encoding":"base64"}},
		"execution":{"verdict":"exit_nonzero","exit_code":1,"stdout":"","stderr":"ZeroDivisionError\n","wall_ms":12,"limits":{"memory_mb":64,"timeout":"2s"}}}`
	w := serveAI(t, svc, "/v1/ai/fix", body)
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	g := svc.got
	if g.Action != cove.AIFix || g.Language != "py" || g.Filename != "div.py" || !g.Verify || g.Test != "true" || g.MaxSteps != 3 || g.Timeout != 90*time.Second ||
		string(g.Files["t.py"]) != "import div" || string(g.Files["b.bin"]) != "\x00\x01" ||
		g.Execution == nil || g.Execution.Stderr != "ZeroDivisionError\n" || g.Execution.Limits.MemoryBytes != 64<<20 || g.Execution.Limits.Timeout != 2*time.Second {
		t.Errorf("decoded %+v", g)
	}
	w = serveAI(t, svc, "/v1/ai/fix", `{"language":"py","code":"x","nope":1}`)
	if code, msg := errorOf(t, w); w.Code != 400 || code != "invalid" || !strings.Contains(msg, "nope") {
		t.Errorf("unknown field: %d %s", w.Code, msg)
	}
	svc.err = cove.Errorf(cove.CodeUnavailable, "code analysis needs an Anthropic API key: set ANTHROPIC_API_KEY")
	w = serveAI(t, svc, "/v1/ai/explain", `{"language":"py","code":"x"}`)
	if code, msg := errorOf(t, w); w.Code != 503 || code != "unavailable" || !strings.Contains(msg, "ANTHROPIC_API_KEY") {
		t.Errorf("no key: %d %s %s", w.Code, code, msg)
	}
}

// TestAnalyzeStreams checks the three answers: SSE by default, NDJSON,
// and the result alone; and the error event of a failed stream.
func TestAnalyzeStreams(t *testing.T) {
	svc := &aiService{fakeService: &fakeService{}, events: aiEvents()}
	w := serveAI(t, svc, "/v1/ai/fix", `{"language":"py","code":"x"}`)
	if ct := w.Header().Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	want := "event: text\ndata: {\"type\":\"text\",\"text\":\"It divides \"}\n\nevent: text\ndata: {\"type\":\"text\",\"text\":\"by zero.\"}\n\nevent: step\ndata: {\"type\":\"step\",\"step\":{\"n\":1,\"tool\":\"run_code\",\"input\":{\"code\":\"print(1)\"},\"output\":\"ok\",\"run\":{"
	if !strings.HasPrefix(w.Body.String(), want) || !strings.Contains(w.Body.String(), "\n\nevent: result\ndata: {\"type\":\"result\",\"result\":{\"action\":\"fix\"") {
		t.Errorf("SSE:\n%s", w.Body)
	}

	svc.events = aiEvents()
	w = serveAI(t, svc, "/v1/ai/fix", `{"language":"py","code":"x"}`, "Accept", "application/x-ndjson")
	lines := strings.Split(strings.TrimSpace(w.Body.String()), "\n")
	var types []string
	for _, l := range lines {
		var ev wire.AIEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if _, err := ev.Cove(); err != nil {
			t.Fatal(err)
		}
		types = append(types, ev.Type)
	}
	if w.Header().Get("Content-Type") != mediaNDJSON || strings.Join(types, ",") != "text,text,step,result" {
		t.Errorf("NDJSON %v", types)
	}

	svc.events = aiEvents()
	w = serveAI(t, svc, "/v1/ai/fix", `{"language":"py","code":"x"}`, "Accept", "application/json")
	var res wire.AIResult
	if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil || res.Code != "print(1)\n" || !res.Verified || res.Text != "It divides by zero." {
		t.Errorf("JSON %v %s", err, w.Body)
	}

	svc.events = aiEvents()[:1]
	svc.streamErr = cove.Errorf(cove.CodeUnavailable, "the Anthropic API is overloaded (overloaded_error: Overloaded): try again in a few minutes")
	w = serveAI(t, svc, "/v1/ai/explain", `{"language":"py","code":"x"}`)
	if !strings.HasSuffix(w.Body.String(), "event: error\ndata: {\"type\":\"error\",\"error\":{\"code\":\"unavailable\",\"message\":\"the Anthropic API is overloaded (overloaded_error: Overloaded): try again in a few minutes\"}}\n\n") {
		t.Errorf("error event:\n%s", w.Body)
	}
}

// TestAISchemasMatchWire checks that the document's AI schemas have
// exactly the JSON fields of the wire types.
func TestAISchemasMatchWire(t *testing.T) {
	d := loadDoc(t)
	for name, v := range map[string]any{
		"AIRequest": wire.AIRequest{}, "AIEvent": wire.AIEvent{}, "AIStep": wire.AIStep{}, "AIResult": wire.AIResult{}, "AIFinding": cove.AIFinding{},
	} {
		schema, ok := d.Comp.Schemas[name]
		if !ok {
			t.Errorf("schema %s is missing", name)
			continue
		}
		var doc []string
		for p := range schema.Properties {
			doc = append(doc, p)
		}
		sort.Strings(doc)
		if goFields := jsonFields(reflect.TypeOf(v)); !slices.Equal(doc, goFields) {
			t.Errorf("schema %s has %v, the Go type has %v", name, doc, goFields)
		}
	}
}
