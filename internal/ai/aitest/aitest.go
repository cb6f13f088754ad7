// Package aitest is a fake of the Claude Messages API for tests: an HTTP
// server that answers POST /v1/messages as the real API does (one JSON
// message, or a stream of server-sent events with text and tool_use
// blocks; error answers in the API's shape), checks requests as the API
// does (key, version header, alternating roles, tool results that answer
// the previous turn's tool calls), records every request, and replies as
// the test scripts it.
//
// Point cove at it with ANTHROPIC_BASE_URL=<Server.URL> and any
// ANTHROPIC_API_KEY (or exactly Server.Key when it is set).
package aitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// Server is a fake Messages API.
type Server struct {
	*httptest.Server
	// Key, when set, is the only API key accepted; any other gets 401.
	Key string

	mu      sync.Mutex
	handler Handler
	reqs    []*Request
	ids     int
	// cached are the prompts cached by requests with cache_control.
	cached []cachedPrompt
}

// cachedPrompt is a prompt the fake API cached: its system prompt and
// tools, its messages, and its size in tokens.
type cachedPrompt struct {
	head     string
	messages []string
	tokens   int64
}

// Handler decides the reply to a request. It runs on the server's
// goroutine; it may block (to test cancellation) until the request's
// context ends.
type Handler func(req *Request) Reply

// New starts a fake API that replies with h, closed when t ends.
func New(t testing.TB, h Handler) *Server {
	s := &Server{handler: h}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// SetHandler replaces the handler.
func (s *Server) SetHandler(h Handler) {
	s.mu.Lock()
	s.handler = h
	s.mu.Unlock()
}

// Requests returns the requests received so far (valid or not), in order.
func (s *Server) Requests() []*Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Request(nil), s.reqs...)
}

// Request is a request as the fake received it.
type Request struct {
	Header http.Header `json:"-"`
	// Body is the raw JSON body.
	Body []byte `json:"-"`
	// Done is closed when the request's client goes away, for handlers
	// that wait.
	Done <-chan struct{} `json:"-"`

	Model      string          `json:"model"`
	MaxTokens  int64           `json:"max_tokens"`
	Stream     bool            `json:"stream"`
	System     json.RawMessage `json:"system"`
	Messages   []Message       `json:"messages"`
	Tools      []Tool          `json:"tools"`
	ToolChoice json.RawMessage `json:"tool_choice"`
	// CacheControl is the request's automatic prompt caching: the API
	// caches the prompt up to its last block, and a later request that
	// starts with a cached prompt reads that part from the cache.
	CacheControl *struct {
		Type string `json:"type"`
	} `json:"cache_control"`
}

// Message is one message of a request.
type Message struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// Block is a content block of a message.
type Block struct {
	Type string `json:"type"`
	Text string `json:"text,omitempty"`
	// tool_use
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`
	// tool_result
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   json.RawMessage `json:"content,omitempty"`
	IsError   bool            `json:"is_error,omitempty"`
}

// Tool is a tool a request declares.
type Tool struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// Blocks returns the message's content blocks (a string content is one
// text block).
func (m Message) Blocks() []Block {
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		return []Block{{Type: "text", Text: s}}
	}
	var bs []Block
	json.Unmarshal(m.Content, &bs)
	return bs
}

// ResultText returns the text of a tool_result block.
func (b Block) ResultText() string {
	var s string
	if json.Unmarshal(b.Content, &s) == nil {
		return s
	}
	var parts []Block
	json.Unmarshal(b.Content, &parts)
	var out []string
	for _, p := range parts {
		if p.Type == "text" {
			out = append(out, p.Text)
		}
	}
	return strings.Join(out, "\n")
}

// SystemText returns the system prompt.
func (r *Request) SystemText() string {
	var s string
	if json.Unmarshal(r.System, &s) == nil {
		return s
	}
	var bs []Block
	json.Unmarshal(r.System, &bs)
	var out []string
	for _, b := range bs {
		out = append(out, b.Text)
	}
	return strings.Join(out, "\n")
}

// FirstUserText returns the text of the first user message.
func (r *Request) FirstUserText() string {
	if len(r.Messages) == 0 {
		return ""
	}
	var out []string
	for _, b := range r.Messages[0].Blocks() {
		if b.Type == "text" {
			out = append(out, b.Text)
		}
	}
	return strings.Join(out, "\n")
}

// ToolResults returns the tool_result blocks of the last message.
func (r *Request) ToolResults() []Block {
	if len(r.Messages) == 0 {
		return nil
	}
	var out []Block
	for _, b := range r.Messages[len(r.Messages)-1].Blocks() {
		if b.Type == "tool_result" {
			out = append(out, b)
		}
	}
	return out
}

// Tool returns the declared tool of that name, or nil.
func (r *Request) Tool(name string) *Tool {
	for i := range r.Tools {
		if r.Tools[i].Name == name {
			return &r.Tools[i]
		}
	}
	return nil
}

// Reply is what the fake answers to one request.
type Reply struct {
	// Text is the answer's text, streamed in Chunks when set, else word
	// by word.
	Text   string
	Chunks []string
	// ToolUses follow the text as tool_use blocks.
	ToolUses []ToolUse
	// StopReason defaults to tool_use with ToolUses, else end_turn.
	StopReason string
	// InputTokens and OutputTokens default to about a token per four
	// bytes of the request and of the answer.
	InputTokens, OutputTokens int64
	// Delay is waited before each event of a stream.
	Delay time.Duration
	// Hold, when set, holds a stream before its last text chunk until it
	// is closed, so that a test can see the first chunks arrive while
	// the answer is still being written.
	Hold <-chan struct{}
	// Error answers with an error status instead.
	Error *Error
	// StreamError ends a stream after its content with an error event.
	StreamError *Error
	// CutOff ends a stream after its content without message_delta and
	// message_stop, as a broken connection would.
	CutOff bool
}

// ToolUse is a tool call of a reply; an empty ID gets a fresh one.
type ToolUse struct {
	ID    string
	Name  string
	Input any
	// RawInput, when set, is streamed verbatim as the input's JSON in
	// place of Input, even when it is not whole: the API streams what the
	// model wrote, so a reply cut at max_tokens in the middle of a tool
	// call ends with an input that does not parse. A plain (not
	// streamed) answer gives an input that does not parse as {}.
	RawInput string
}

// Error is an error answer of the API.
type Error struct {
	// Status is the HTTP status (401, 429, 529...).
	Status int
	// Type is the API's error type: authentication_error,
	// rate_limit_error, overloaded_error, invalid_request_error...
	Type    string
	Message string
	// RetryAfter sets the retry-after header, in seconds, as the API
	// sends it with a 429 (the SDK waits that long before retrying;
	// without it, its own backoff). The API sends whole seconds; a
	// fraction, which the SDK reads the same way, keeps tests fast.
	RetryAfter time.Duration
}

// Text returns a reply of text only.
func Text(s string) Reply { return Reply{Text: s} }

// APIError returns a reply that is an error answer.
func APIError(status int, typ, message string) Reply {
	return Reply{Error: &Error{Status: status, Type: typ, Message: message}}
}

// Script returns a handler that gives the replies in order, one per
// request; past the last it answers 500 api_error.
func Script(replies ...Reply) Handler {
	var mu sync.Mutex
	n := 0
	return func(*Request) Reply {
		mu.Lock()
		defer mu.Unlock()
		if n >= len(replies) {
			return APIError(500, "api_error", fmt.Sprintf("the fake API has no reply scripted for request %d", n+1))
		}
		n++
		return replies[n-1]
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	req := &Request{Header: r.Header.Clone(), Body: body, Done: r.Context().Done()}
	json.Unmarshal(body, req)
	s.mu.Lock()
	s.reqs = append(s.reqs, req)
	h := s.handler
	s.mu.Unlock()

	if r.Method != http.MethodPost || r.URL.Path != "/v1/messages" {
		writeError(w, &Error{Status: 404, Type: "not_found_error", Message: "Not found: " + r.Method + " " + r.URL.Path})
		return
	}
	key := r.Header.Get("X-Api-Key")
	switch {
	case key == "":
		writeError(w, &Error{Status: 401, Type: "authentication_error", Message: "x-api-key header is required"})
		return
	case s.Key != "" && key != s.Key:
		writeError(w, &Error{Status: 401, Type: "authentication_error", Message: "invalid x-api-key"})
		return
	case r.Header.Get("Anthropic-Version") == "":
		writeError(w, &Error{Status: 400, Type: "invalid_request_error", Message: "anthropic-version: header is required"})
		return
	}
	if msg := validate(body, req); msg != "" {
		writeError(w, &Error{Status: 400, Type: "invalid_request_error", Message: msg})
		return
	}
	rep := h(req)
	if rep.Error != nil {
		writeError(w, rep.Error)
		return
	}
	msg := s.message(req, rep)
	if !req.Stream {
		for i, b := range msg.Content {
			if b.Type == "tool_use" && !json.Valid(b.Input) {
				msg.Content[i].Input = json.RawMessage("{}")
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Request-Id", "req_fake")
		json.NewEncoder(w).Encode(msg)
		return
	}
	s.stream(w, r, msg, rep)
}

// validate checks a request as the API does; it returns what is wrong.
func validate(body []byte, req *Request) string {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(body, &probe); err != nil {
		return "the request body is not valid JSON: " + err.Error()
	}
	switch {
	case req.Model == "":
		return "model: Field required"
	case req.MaxTokens < 1:
		return "max_tokens: Field required (at least 1)"
	case len(req.Messages) == 0:
		return "messages: at least one message is required"
	case req.Messages[0].Role != "user":
		return "messages: the first message must use the \"user\" role"
	}
	names := map[string]bool{}
	for i, t := range req.Tools {
		var schema struct {
			Type string `json:"type"`
		}
		json.Unmarshal(t.InputSchema, &schema)
		if t.Name == "" || names[t.Name] || schema.Type != "object" {
			return fmt.Sprintf("tools.%d: each tool needs a unique name and an input_schema of type object", i)
		}
		names[t.Name] = true
	}
	var pending map[string]bool // tool_use ids the previous assistant turn asked
	for i, m := range req.Messages {
		want := "user"
		if i%2 == 1 {
			want = "assistant"
		}
		if m.Role != want {
			return fmt.Sprintf("messages.%d: roles must alternate between \"user\" and \"assistant\"", i)
		}
		blocks := m.Blocks()
		if len(blocks) == 0 {
			return fmt.Sprintf("messages.%d: content must not be empty", i)
		}
		if m.Role == "assistant" {
			pending = map[string]bool{}
			for _, b := range blocks {
				if b.Type == "tool_use" {
					if !names[b.Name] {
						return fmt.Sprintf("messages.%d: tool_use of %q, which is not among the tools", i, b.Name)
					}
					pending[b.ID] = true
				}
			}
			continue
		}
		for _, b := range blocks {
			if b.Type != "tool_result" {
				continue
			}
			if !pending[b.ToolUseID] {
				return fmt.Sprintf("messages.%d: unexpected tool_use_id %q in tool_result blocks: each tool_result block must have a corresponding tool_use block in the previous message", i, b.ToolUseID)
			}
			delete(pending, b.ToolUseID)
		}
		if len(pending) > 0 {
			return fmt.Sprintf("messages.%d: tool_use ids were found without tool_result blocks immediately after", i)
		}
	}
	if req.Messages[len(req.Messages)-1].Role != "user" {
		return "messages: the last message must use the \"user\" role"
	}
	return ""
}

// apiMessage is a message of the API's JSON.
type apiMessage struct {
	ID           string         `json:"id"`
	Type         string         `json:"type"`
	Role         string         `json:"role"`
	Model        string         `json:"model"`
	Content      []apiBlock     `json:"content"`
	StopReason   *string        `json:"stop_reason"`
	StopSequence *string        `json:"stop_sequence"`
	Usage        map[string]any `json:"usage"`
}

type apiBlock struct {
	Type  string          `json:"type"`
	Text  *string         `json:"text,omitempty"`
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`
}

func (s *Server) nextID(prefix string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids++
	return fmt.Sprintf("%s_fake%04d", prefix, s.ids)
}

// message builds the whole answer of rep.
func (s *Server) message(req *Request, rep Reply) *apiMessage {
	text := rep.Text
	if rep.Chunks != nil {
		text = strings.Join(rep.Chunks, "")
	}
	m := &apiMessage{ID: s.nextID("msg"), Type: "message", Role: "assistant", Model: req.Model}
	if text != "" {
		m.Content = append(m.Content, apiBlock{Type: "text", Text: &text})
	}
	out := len(text)
	for _, tu := range rep.ToolUses {
		id := tu.ID
		if id == "" {
			id = s.nextID("toolu")
		}
		in, _ := json.Marshal(tu.Input)
		if tu.Input == nil {
			in = []byte("{}")
		}
		if tu.RawInput != "" {
			in = []byte(tu.RawInput)
		}
		out += len(in)
		m.Content = append(m.Content, apiBlock{Type: "tool_use", ID: id, Name: tu.Name, Input: in})
	}
	stop := rep.StopReason
	if stop == "" {
		stop = "end_turn"
		if len(rep.ToolUses) > 0 {
			stop = "tool_use"
		}
	}
	m.StopReason = &stop
	in, outTok := rep.InputTokens, rep.OutputTokens
	if in == 0 {
		in = int64(len(req.Body)/4 + 1)
	}
	if outTok == 0 {
		outTok = int64(out/4 + 1)
	}
	var created, read int64
	if req.CacheControl != nil && rep.InputTokens == 0 {
		read = s.cacheRead(req)
		// The whole prompt is cached for the next request; the tokens
		// after the part read from the cache are written to it.
		created, in = in-read, 0
	}
	m.Usage = map[string]any{"input_tokens": in, "output_tokens": outTok, "cache_creation_input_tokens": created, "cache_read_input_tokens": read}
	return m
}

// cacheRead returns how many tokens of req's prompt a cached prompt gives
// (the longest one that req's prompt starts with), and caches req's.
func (s *Server) cacheRead(req *Request) int64 {
	tools, _ := json.Marshal(req.Tools)
	head := string(req.System) + "\x00" + string(tools)
	msgs := make([]string, len(req.Messages))
	for i, m := range req.Messages {
		b, _ := json.Marshal(m)
		msgs[i] = string(b)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var read int64
	for _, c := range s.cached {
		if c.head == head && len(c.messages) <= len(msgs) && slices.Equal(c.messages, msgs[:len(c.messages)]) {
			read = max(read, c.tokens)
		}
	}
	s.cached = append(s.cached, cachedPrompt{head: head, messages: msgs, tokens: int64(len(req.Body)/4 + 1)})
	return read
}

// stream sends m as the API streams a message.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, m *apiMessage, rep Reply) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Request-Id", "req_fake")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(event string, data any) bool {
		if rep.Delay > 0 {
			select {
			case <-time.After(rep.Delay):
			case <-r.Context().Done():
				return false
			}
		}
		b, _ := json.Marshal(data)
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	start := *m
	start.Content = []apiBlock{}
	start.StopReason = nil
	start.Usage = map[string]any{"input_tokens": m.Usage["input_tokens"], "output_tokens": 1, "cache_creation_input_tokens": m.Usage["cache_creation_input_tokens"], "cache_read_input_tokens": m.Usage["cache_read_input_tokens"]}
	if !send("message_start", map[string]any{"type": "message_start", "message": start}) {
		return
	}
	send("ping", map[string]any{"type": "ping"})
	for i, b := range m.Content {
		switch b.Type {
		case "text":
			empty := ""
			if !send("content_block_start", map[string]any{"type": "content_block_start", "index": i, "content_block": apiBlock{Type: "text", Text: &empty}}) {
				return
			}
			chunks := rep.Chunks
			if chunks == nil {
				chunks = words(*b.Text)
			}
			for j, c := range chunks {
				if rep.Hold != nil && j == len(chunks)-1 {
					select {
					case <-rep.Hold:
					case <-r.Context().Done():
						return
					}
				}
				if !send("content_block_delta", map[string]any{"type": "content_block_delta", "index": i, "delta": map[string]any{"type": "text_delta", "text": c}}) {
					return
				}
			}
		case "tool_use":
			if !send("content_block_start", map[string]any{"type": "content_block_start", "index": i, "content_block": apiBlock{Type: "tool_use", ID: b.ID, Name: b.Name, Input: json.RawMessage("{}")}}) {
				return
			}
			// The input comes as partial JSON, cut anywhere.
			for _, part := range thirds(string(b.Input)) {
				if !send("content_block_delta", map[string]any{"type": "content_block_delta", "index": i, "delta": map[string]any{"type": "input_json_delta", "partial_json": part}}) {
					return
				}
			}
		}
		if !send("content_block_stop", map[string]any{"type": "content_block_stop", "index": i}) {
			return
		}
	}
	if rep.StreamError != nil {
		send("error", errorBody(rep.StreamError))
		return
	}
	if rep.CutOff {
		return
	}
	send("message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": *m.StopReason, "stop_sequence": nil}, "usage": map[string]any{"output_tokens": m.Usage["output_tokens"]}})
	send("message_stop", map[string]any{"type": "message_stop"})
}

// thirds cuts s in three at rune boundaries.
func thirds(s string) []string {
	cut := func(i int) int {
		for i < len(s) && !utf8.RuneStart(s[i]) {
			i++
		}
		return i
	}
	a, b := cut(len(s)/3), cut(2*len(s)/3)
	return []string{s[:a], s[a:b], s[b:]}
}

// words splits s into chunks of a word and the space after it.
func words(s string) []string {
	var out []string
	for s != "" {
		i := strings.IndexAny(s, " \n")
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}

func errorBody(e *Error) map[string]any {
	return map[string]any{"type": "error", "error": map[string]any{"type": e.Type, "message": e.Message}, "request_id": "req_fake"}
}

func writeError(w http.ResponseWriter, e *Error) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Request-Id", "req_fake")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatFloat(e.RetryAfter.Seconds(), 'f', -1, 64))
	}
	w.WriteHeader(e.Status)
	var b bytes.Buffer
	json.NewEncoder(&b).Encode(errorBody(e))
	w.Write(b.Bytes())
}
