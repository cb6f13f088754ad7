// Package ai is cove's code analysis with Claude: it explains, reviews,
// optimizes and fixes code, telling Claude what happened when the code
// ran, and streams the answer. Its fix loop gives Claude tools bound to a
// sandbox (run code, write and read files, run a command), runs each call
// for real through a cove.Service, and ends when the code runs with
// verdict ok (and a test command passes) or at a bound of steps, tokens
// or time.
//
// It speaks the Messages API through the official Go SDK; prompts are
// templates embedded from prompts/. The package depends on package cove
// only: the service hands itself to Analyze.
package ai

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/cove-sandbox/cove"
)

// DefaultModel is the model of analyses unless configured: the current
// Sonnet as the SDK names it.
const DefaultModel = anthropic.ModelClaudeSonnet5_5

// DefaultBaseURL is where the SDK sends requests unless told otherwise.
const DefaultBaseURL = "https://api.anthropic.com/"

// Defaults of Options.
const (
	DefaultMaxTokens    = 8192
	DefaultMaxRetries   = 3
	DefaultOutputBudget = 8 << 10
	DefaultMaxSteps     = 8
	DefaultLoopTokens   = 400_000
	DefaultLoopTimeout  = 5 * time.Minute
	DefaultIdleTimeout  = 3 * time.Minute
)

// Options configure an Analyzer.
type Options struct {
	// APIKey is the Anthropic API key (ANTHROPIC_API_KEY). Without one,
	// Analyze answers unavailable, naming the variable to set.
	APIKey string
	// BaseURL overrides the API's address, for a gateway or a proxy
	// (ANTHROPIC_BASE_URL; default the SDK's, DefaultBaseURL).
	BaseURL string
	// Model names the model (COVE_AI_MODEL; default DefaultModel).
	Model string
	// MaxTokens bounds one answer (default DefaultMaxTokens).
	MaxTokens int64
	// MaxRetries is how often a request that failed with a status worth
	// retrying (429, 529, 5xx, a broken connection) is retried, with
	// exponential backoff (default DefaultMaxRetries; -1: never).
	MaxRetries int
	// RetryBackoff is the first wait before retrying a stream that failed
	// after it began (default 1s, doubling each time).
	RetryBackoff time.Duration
	// OutputBudget bounds each of stdout and stderr as sent to Claude;
	// longer output keeps its head and tail (default DefaultOutputBudget).
	OutputBudget int
	// MaxSteps, LoopTokens and LoopTimeout are the default bounds of the
	// fix loop: tool calls, tokens of all turns, and time.
	MaxSteps    int
	LoopTokens  int64
	LoopTimeout time.Duration
	// IdleTimeout bounds the silence of the API: a request that gets no
	// answer, or a stream that sends no event (the API pings while it
	// thinks), for this long ends with a timeout (default
	// DefaultIdleTimeout).
	IdleTimeout time.Duration
	// HTTPClient sends the API requests (default the SDK's).
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Analyzer answers analysis requests. It is safe for concurrent use.
type Analyzer struct {
	opts   Options
	model  string
	client anthropic.Client
	log    *slog.Logger
}

// New returns an Analyzer. It makes no request: a missing or wrong key
// shows at the first analysis.
func New(opts Options) *Analyzer {
	if opts.Model == "" {
		opts.Model = DefaultModel
	}
	if opts.MaxTokens <= 0 {
		opts.MaxTokens = DefaultMaxTokens
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = DefaultMaxRetries
	}
	if opts.MaxRetries < 0 {
		opts.MaxRetries = 0
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = time.Second
	}
	if opts.OutputBudget <= 0 {
		opts.OutputBudget = DefaultOutputBudget
	}
	if opts.MaxSteps <= 0 {
		opts.MaxSteps = DefaultMaxSteps
	}
	if opts.LoopTokens <= 0 {
		opts.LoopTokens = DefaultLoopTokens
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.LoopTimeout <= 0 {
		opts.LoopTimeout = DefaultLoopTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The configuration is explicit: nothing comes from the SDK's own
	// reading of the environment or of profile files.
	ro := []option.RequestOption{
		option.WithoutEnvironmentDefaults(),
		option.WithoutOpenTelemetry(),
		option.WithAPIKey(opts.APIKey),
		option.WithMaxRetries(opts.MaxRetries),
	}
	if opts.BaseURL != "" {
		ro = append(ro, option.WithBaseURL(opts.BaseURL))
	}
	if opts.HTTPClient != nil {
		ro = append(ro, option.WithHTTPClient(opts.HTTPClient))
	}
	return &Analyzer{opts: opts, model: opts.Model, client: anthropic.NewClient(ro...), log: log.With("component", "ai")}
}

// Model returns the model the analyzer asks.
func (a *Analyzer) Model() string { return a.model }

// Ready reports whether the analyzer has an API key to call the model with.
func (a *Analyzer) Ready() bool { return a.opts.APIKey != "" }

// baseURL returns the API's address, for messages.
func (a *Analyzer) baseURL() string {
	if a.opts.BaseURL != "" {
		return strings.TrimRight(a.opts.BaseURL, "/")
	}
	return strings.TrimRight(DefaultBaseURL, "/")
}

// Analyze asks Claude for req.Action on req.Code and streams the answer.
// The first request to the API is made before it returns, so that a
// refused key, a rate limit or an overloaded API is an error here rather
// than in the stream. A verified fix runs its tools through svc, in
// req.SandboxID or in a sandbox it creates (with the limits of
// req.Execution) and deletes when the stream ends.
//
// The caller (the service) has validated req and resolved its language.
// Errors: unavailable (no API key; the API refused the key, is overloaded
// or unreachable), quota_exceeded (rate limited), invalid (the API refused
// the request), timeout, and those of svc's CreateSandbox and GetSandbox.
func (a *Analyzer) Analyze(ctx context.Context, svc cove.Service, req cove.AIRequest) (cove.AIStream, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if a.opts.APIKey == "" {
		return nil, NoKeyError()
	}
	if req.Verify {
		if svc == nil {
			return nil, cove.Errorf(cove.CodeInternal, "a verified fix needs a service to run its tools")
		}
		return a.startLoop(ctx, svc, req)
	}
	return a.startAnswer(ctx, req)
}
