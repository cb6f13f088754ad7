package service

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/lang"
)

// Analyzer answers code analysis requests; internal/ai implements it with
// Claude. svc is the service that a verified fix runs its tools through
// (the Service passes itself), acting for the key in ctx.
type Analyzer interface {
	Analyze(ctx context.Context, svc cove.Service, req cove.AIRequest) (cove.AIStream, error)
	// Ready reports whether Analyze can reach a model (its key is set).
	Ready() bool
}

// Analyze implements cove.Service: it validates the request, resolves its
// language and file name, and hands it to the configured Analyzer. The
// analysis ends with the service.
func (s *Service) Analyze(ctx context.Context, req cove.AIRequest) (cove.AIStream, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	l, err := lang.Lookup(req.Language)
	if err != nil {
		return nil, err
	}
	req.Language = l.Name
	if req.Filename, err = sourceName(l, req.Filename); err != nil {
		return nil, err
	}
	if s.opts.Analyzer == nil {
		return nil, cove.Errorf(cove.CodeUnavailable, "code analysis is not enabled in this cove service")
	}
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		return nil, cove.Errorf(cove.CodeUnavailable, "cove is shutting down")
	}
	actx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	st, err := s.opts.Analyzer.Analyze(actx, s, req)
	if err != nil {
		stop()
		cancel()
		if ctx.Err() == nil && s.ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return nil, cove.Errorf(cove.CodeUnavailable, "cove is shutting down")
		}
		return nil, err
	}
	if st == nil {
		// An analyzer's bug must not reach a front end as a stream that
		// panics on its first read.
		stop()
		cancel()
		s.log.Error("the analyzer returned neither a stream nor an error", "action", req.Action, "verify", req.Verify)
		return nil, cove.Errorf(cove.CodeInternal, "the analysis did not start")
	}
	return &aiStream{AIStream: st, ctx: ctx, svcCtx: s.ctx, release: func() { stop(); cancel() }}, nil
}

// sourceName checks a file name for the code of language l: a plain name
// with one of its extensions; "" gives the language's main file.
func sourceName(l *lang.Language, name string) (string, error) {
	if name == "" {
		return l.SourceName, nil
	}
	if strings.ContainsAny(name, "/\x00") || strings.HasPrefix(name, "-") || strings.HasPrefix(name, ".") || len(name) > 255 {
		return "", cove.Errorf(cove.CodeInvalid, "invalid file name %q: use a plain name such as %s", name, l.SourceName)
	}
	if !slices.Contains(l.Extensions, strings.ToLower(filepath.Ext(name))) {
		return "", cove.Errorf(cove.CodeInvalid, "file name %q does not fit %s code: use an extension of %s (%s)", name, l.Name, l.Name, strings.Join(l.Extensions, ", "))
	}
	return name, nil
}

// aiStream ends an analysis's ties to the service when it is closed, and
// says so when the service's shutdown ended it.
type aiStream struct {
	cove.AIStream
	ctx, svcCtx context.Context
	release     func()
	once        sync.Once
}

func (a *aiStream) Next() (cove.AIEvent, error) {
	ev, err := a.AIStream.Next()
	if err != nil && errors.Is(err, context.Canceled) && a.ctx.Err() == nil && a.svcCtx.Err() != nil {
		return ev, cove.Errorf(cove.CodeUnavailable, "cove is shutting down: the analysis was stopped")
	}
	return ev, err
}

func (a *aiStream) Close() error {
	err := a.AIStream.Close()
	a.once.Do(a.release)
	return err
}
