// Package service implements cove.Service in-process: it validates
// requests, applies defaults and limits, keeps track of sandboxes, turns
// code into programs through the language registry, and runs them through a
// runtime backend's agent.
package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/runtime"
)

// Options configure a Service.
type Options struct {
	// Defaults are the limits of sandboxes that do not set their own
	// (default cove.DefaultLimits()).
	Defaults cove.Limits
	Logger   *slog.Logger
}

// Service is the in-process cove.Service.
type Service struct {
	backend  runtime.Backend
	defaults cove.Limits
	log      *slog.Logger

	mu        sync.Mutex
	sandboxes map[string]*sandbox
}

var _ cove.Service = (*Service)(nil)

type sandbox struct {
	info cove.Sandbox
	inst runtime.Instance
}

// New returns a Service that creates sandboxes with backend.
func New(backend runtime.Backend, opts Options) *Service {
	d := opts.Defaults
	if d == (cove.Limits{}) {
		d = cove.DefaultLimits()
	}
	d = d.WithDefaults(cove.DefaultLimits())
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{backend: backend, defaults: d, log: log.With("component", "service"), sandboxes: map[string]*sandbox{}}
}

// Defaults returns the limits applied to fields a request leaves unset.
func (s *Service) Defaults() cove.Limits { return s.defaults }

func newID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// CreateSandbox implements cove.Service.
func (s *Service) CreateSandbox(ctx context.Context, spec cove.SandboxSpec) (*cove.Sandbox, error) {
	if err := spec.Limits.Validate(); err != nil {
		return nil, err
	}
	if err := validateEnv(spec.Env); err != nil {
		return nil, err
	}
	if spec.Language != "" {
		if _, err := lookupLanguage(spec.Language); err != nil {
			return nil, err
		}
	}
	limits := spec.Limits.WithDefaults(s.defaults)
	id := newID()
	inst, err := s.backend.Create(ctx, runtime.Spec{ID: id, Limits: limits})
	if err != nil {
		return nil, err
	}
	sb := &sandbox{
		info: cove.Sandbox{
			ID: id, State: cove.StateRunning, Language: spec.Language, Limits: limits,
			Env: spec.Env, Labels: spec.Labels, Backend: s.backend.Name(), CreatedAt: time.Now().UTC(),
		},
		inst: inst,
	}
	s.mu.Lock()
	s.sandboxes[id] = sb
	s.mu.Unlock()
	s.log.Debug("sandbox created", "id", id)
	info := sb.info
	return &info, nil
}

func (s *Service) get(id string) (*sandbox, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sb, ok := s.sandboxes[id]
	if !ok {
		return nil, cove.Errorf(cove.CodeNotFound, "sandbox %q not found", id)
	}
	return sb, nil
}

// GetSandbox implements cove.Service.
func (s *Service) GetSandbox(ctx context.Context, id string) (*cove.Sandbox, error) {
	sb, err := s.get(id)
	if err != nil {
		return nil, err
	}
	info := sb.info
	select {
	case <-sb.inst.Done():
		info.State = cove.StateError
	default:
	}
	return &info, nil
}

// ListSandboxes implements cove.Service.
func (s *Service) ListSandboxes(ctx context.Context) ([]*cove.Sandbox, error) {
	s.mu.Lock()
	ids := make([]string, 0, len(s.sandboxes))
	for id := range s.sandboxes {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	var out []*cove.Sandbox
	for _, id := range ids {
		if sb, err := s.GetSandbox(ctx, id); err == nil {
			out = append(out, sb)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out, nil
}

// DeleteSandbox implements cove.Service.
func (s *Service) DeleteSandbox(ctx context.Context, id string) error {
	s.mu.Lock()
	sb, ok := s.sandboxes[id]
	delete(s.sandboxes, id)
	s.mu.Unlock()
	if !ok {
		return nil
	}
	return sb.inst.Destroy(ctx)
}

// Close destroys every sandbox of this service.
func (s *Service) Close(ctx context.Context) error {
	s.mu.Lock()
	ids := make([]string, 0, len(s.sandboxes))
	for id := range s.sandboxes {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	var first error
	for _, id := range ids {
		if err := s.DeleteSandbox(ctx, id); err != nil && first == nil {
			first = err
		}
	}
	return first
}
