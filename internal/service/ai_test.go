package service

import (
	"context"
	"testing"

	"github.com/cove-sandbox/cove"
)

// brokenAnalyzer answers like the fix loop did when the API refused its
// first request: no stream and no error.
type brokenAnalyzer struct{}

func (brokenAnalyzer) Analyze(context.Context, cove.Service, cove.AIRequest) (cove.AIStream, error) {
	return nil, nil
}

func (brokenAnalyzer) Ready() bool { return true }

// TestAnalyzeRefusesNoStream: an analyzer that gives neither a stream nor
// an error makes Analyze fail with an internal error, rather than hand
// the front end a stream that panics on its first read (the REST API
// answered 200 with an empty body, the CLI crashed).
func TestAnalyzeRefusesNoStream(t *testing.T) {
	svc := New(nil, Options{Analyzer: brokenAnalyzer{}})
	st, err := svc.Analyze(t.Context(), cove.AIRequest{Action: cove.AIFix, Language: "python", Code: "print(1)\n", Verify: true})
	if st != nil || cove.ErrorCode(err) != cove.CodeInternal {
		t.Fatalf("stream %v, error %v; want an internal error", st, err)
	}
}
