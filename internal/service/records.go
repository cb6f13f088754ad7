package service

import (
	"context"
	"encoding/base64"

	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/store"
)

// Records is where the service keeps sandboxes and keys: the SQLite store
// of `cove serve`, or memory for a one-shot `cove run`.
type Records interface {
	PutSandbox(ctx context.Context, r *store.SandboxRecord) error
	GetSandbox(ctx context.Context, id string) (*store.SandboxRecord, error)
	UpdateSandbox(ctx context.Context, id string, fn func(r *store.SandboxRecord) error) (*store.SandboxRecord, error)
	// DeleteSandbox deletes a sandbox's record; a reason (why) keeps a
	// note of the deletion for DeletedSandbox.
	DeleteSandbox(ctx context.Context, id, why string) error
	DeletedSandbox(ctx context.Context, id string) (*store.DeletedRecord, error)
	PruneDeleted(ctx context.Context, before time.Time) (int, error)
	ListSandboxes(ctx context.Context, f store.SandboxFilter) ([]*store.SandboxRecord, string, error)
	CountSandboxes(ctx context.Context, owner string) (store.SandboxCount, error)
	TouchSandbox(ctx context.Context, id string, at time.Time) error
	AllSandboxIDs(ctx context.Context) (map[string]bool, error)

	PutKey(ctx context.Context, k *store.KeyRecord) error
	KeyByHash(ctx context.Context, hash []byte) (*store.KeyRecord, error)
	GetKey(ctx context.Context, id string) (*store.KeyRecord, error)
	ListKeys(ctx context.Context) ([]*store.KeyRecord, error)
	RevokeKey(ctx context.Context, id string, at time.Time) error
}

var _ Records = (*store.Store)(nil)
var _ Records = (*memRecords)(nil)

// memRecords keeps records in memory, for a process that owns its
// sandboxes for its own lifetime only.
type memRecords struct {
	mu        sync.Mutex
	sandboxes map[string]store.SandboxRecord
	deleted   map[string]store.DeletedRecord
	keys      map[string]store.KeyRecord
}

func newMemRecords() *memRecords {
	return &memRecords{sandboxes: map[string]store.SandboxRecord{}, deleted: map[string]store.DeletedRecord{}, keys: map[string]store.KeyRecord{}}
}

func (m *memRecords) PutSandbox(ctx context.Context, r *store.SandboxRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sandboxes[r.ID]; ok {
		return cove.Errorf(cove.CodeConflict, "sandbox %s exists", r.ID)
	}
	m.sandboxes[r.ID] = *r
	return nil
}

func (m *memRecords) GetSandbox(ctx context.Context, id string) (*store.SandboxRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.sandboxes[id]
	if !ok {
		return nil, cove.Errorf(cove.CodeNotFound, "sandbox %q not found", id)
	}
	return &r, nil
}

func (m *memRecords) UpdateSandbox(ctx context.Context, id string, fn func(r *store.SandboxRecord) error) (*store.SandboxRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.sandboxes[id]
	if !ok {
		return nil, cove.Errorf(cove.CodeNotFound, "sandbox %q not found", id)
	}
	if err := fn(&r); err != nil {
		return nil, err
	}
	m.sandboxes[id] = r
	return &r, nil
}

func (m *memRecords) DeleteSandbox(ctx context.Context, id, why string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.sandboxes[id]; ok && why != "" {
		m.deleted[id] = store.DeletedRecord{ID: id, Owner: r.Owner, Why: why, DeletedAt: time.Now().UTC()}
	}
	delete(m.sandboxes, id)
	return nil
}

func (m *memRecords) DeletedSandbox(ctx context.Context, id string) (*store.DeletedRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.deleted[id]
	if !ok {
		return nil, cove.Errorf(cove.CodeNotFound, "no deleted sandbox %s on record", id)
	}
	return &d, nil
}

func (m *memRecords) PruneDeleted(ctx context.Context, before time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id, d := range m.deleted {
		if d.DeletedAt.Before(before) {
			delete(m.deleted, id)
			n++
		}
	}
	return n, nil
}

func (m *memRecords) ListSandboxes(ctx context.Context, f store.SandboxFilter) ([]*store.SandboxRecord, string, error) {
	m.mu.Lock()
	var all []*store.SandboxRecord
	for _, r := range m.sandboxes {
		r := r
		if f.Owner != nil && r.Owner != *f.Owner || f.State != "" && r.State != f.State || !hasLabels(r.Labels, f.Labels) {
			continue
		}
		if !f.ExpiresBy.IsZero() && (r.ExpiresAt.IsZero() || r.ExpiresAt.After(f.ExpiresBy)) {
			continue
		}
		all = append(all, &r)
	}
	m.mu.Unlock()
	slices.SortFunc(all, func(a, b *store.SandboxRecord) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	start := 0
	if f.PageToken != "" {
		raw, err := base64.RawURLEncoding.DecodeString(f.PageToken)
		n, err2 := strconv.Atoi(string(raw))
		if err != nil || err2 != nil || n < 0 {
			return nil, "", cove.Errorf(cove.CodeInvalid, "invalid page token")
		}
		start = min(n, len(all))
	}
	limit := f.Limit
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	end := min(start+limit, len(all))
	next := ""
	if end < len(all) {
		next = base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end)))
	}
	return all[start:end], next, nil
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func (m *memRecords) CountSandboxes(ctx context.Context, owner string) (store.SandboxCount, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var c store.SandboxCount
	for _, r := range m.sandboxes {
		if r.Owner == owner {
			c.N++
			c.MemoryBytes += r.Limits.MemoryBytes
			if r.Ephemeral {
				c.Ephemeral++
				c.EphemeralMemoryBytes += r.Limits.MemoryBytes
			}
		}
	}
	return c, nil
}

func (m *memRecords) TouchSandbox(ctx context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.sandboxes[id]; ok && at.After(r.LastActiveAt) {
		r.LastActiveAt = at
		m.sandboxes[id] = r
	}
	return nil
}

func (m *memRecords) AllSandboxIDs(ctx context.Context) (map[string]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make(map[string]bool, len(m.sandboxes))
	for id := range m.sandboxes {
		ids[id] = true
	}
	return ids, nil
}

func (m *memRecords) PutKey(ctx context.Context, k *store.KeyRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.keys[k.ID]; ok {
		return cove.Errorf(cove.CodeConflict, "key %s exists", k.ID)
	}
	m.keys[k.ID] = *k
	return nil
}

func (m *memRecords) KeyByHash(ctx context.Context, hash []byte) (*store.KeyRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range m.keys {
		if string(k.Hash) == string(hash) {
			return &k, nil
		}
	}
	return nil, cove.Errorf(cove.CodeNotFound, "key not found")
}

func (m *memRecords) GetKey(ctx context.Context, id string) (*store.KeyRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[id]
	if !ok {
		return nil, cove.Errorf(cove.CodeNotFound, "key %q not found", id)
	}
	return &k, nil
}

func (m *memRecords) ListKeys(ctx context.Context) ([]*store.KeyRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*store.KeyRecord
	for _, k := range m.keys {
		k := k
		out = append(out, &k)
	}
	slices.SortFunc(out, func(a, b *store.KeyRecord) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

func (m *memRecords) RevokeKey(ctx context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[id]
	if !ok {
		return cove.Errorf(cove.CodeNotFound, "key %q not found", id)
	}
	if k.RevokedAt == nil {
		k.RevokedAt = &at
		m.keys[id] = k
	}
	return nil
}
