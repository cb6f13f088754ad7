package ai

import "context"

// noticeKey carries the notice function of WithRetryNotice.
type noticeKey struct{}

// WithRetryNotice returns a context in which an analysis tells notice,
// in one line, each time it tries a request to the API again (a 429, an
// overloaded API, a stream that failed before its answer began), before
// it waits to retry; the analysis then logs the retry at debug level
// only. A one-shot command passes it to show why nothing comes for a
// while; a server leaves it out, and its log says so. notice is called
// from the analysis's goroutines, one call at a time.
func WithRetryNotice(ctx context.Context, notice func(msg string)) context.Context {
	return context.WithValue(ctx, noticeKey{}, notice)
}

// retryNotice returns the notice function of ctx, or nil.
func retryNotice(ctx context.Context) func(string) {
	f, _ := ctx.Value(noticeKey{}).(func(string))
	return f
}
