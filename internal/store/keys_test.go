package store

import (
	"bytes"
	"crypto/sha256"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
)

// makeKey returns a key record with a fresh secret's hash.
func makeKey(name string, created time.Time) (*KeyRecord, error) {
	id, secret, err := NewSecret()
	if err != nil {
		return nil, err
	}
	return &KeyRecord{
		Key: cove.Key{
			ID:        id,
			Name:      name,
			Quota:     cove.Quota{MaxSandboxes: 5, MaxConcurrentExecs: 2, MaxMemoryBytes: 1 << 30},
			CreatedAt: created,
		},
		Hash: HashSecret(secret),
	}, nil
}

func newKey(t *testing.T, name string, created time.Time) *KeyRecord {
	t.Helper()
	k, err := makeKey(name, created)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func compareKey(t *testing.T, got, want *KeyRecord) {
	t.Helper()
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, want.CreatedAt)
	}
	switch {
	case (got.RevokedAt == nil) != (want.RevokedAt == nil):
		t.Errorf("RevokedAt = %v, want %v", got.RevokedAt, want.RevokedAt)
	case got.RevokedAt != nil && !got.RevokedAt.Equal(*want.RevokedAt):
		t.Errorf("RevokedAt = %v, want %v", *got.RevokedAt, *want.RevokedAt)
	}
	g, w := *got, *want
	g.CreatedAt, w.CreatedAt = time.Time{}, time.Time{}
	g.RevokedAt, w.RevokedAt = nil, nil
	if !reflect.DeepEqual(g, w) {
		t.Errorf("got  %+v\nwant %+v", g, w)
	}
}

func TestNewSecret(t *testing.T) {
	t.Parallel()
	idRE := regexp.MustCompile(`^key_[0-9a-f]{12}$`)
	secretRE := regexp.MustCompile(`^cove_[A-Za-z0-9_-]{43}$`)
	seen := make(map[string]bool)
	for range 100 {
		id, secret, err := NewSecret()
		if err != nil {
			t.Fatal(err)
		}
		if !idRE.MatchString(id) {
			t.Errorf("id %q does not match %s", id, idRE)
		}
		if !secretRE.MatchString(secret) {
			t.Errorf("secret %q does not match %s", secret, secretRE)
		}
		if seen[id] || seen[secret] {
			t.Fatalf("NewSecret repeated itself: %s %s", id, secret)
		}
		seen[id], seen[secret] = true, true
	}
}

func TestHashSecret(t *testing.T) {
	t.Parallel()
	want := sha256.Sum256([]byte("cove_abc"))
	if got := HashSecret("cove_abc"); !bytes.Equal(got, want[:]) {
		t.Errorf("HashSecret = %x, want the SHA-256 %x", got, want)
	}
	if bytes.Equal(HashSecret("cove_abc"), HashSecret("cove_abd")) {
		t.Error("different secrets hash alike")
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	s, _ := openTestStore(t)
	ctx := t.Context()
	t0 := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	admin := newKey(t, "admin", t0)
	admin.Admin = true
	admin.Quota = cove.Quota{}
	user := newKey(t, "user", t0.Add(time.Second))
	for _, k := range []*KeyRecord{user, admin} {
		if err := s.PutKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("lookup by hash", func(t *testing.T) {
		t.Parallel()
		for _, want := range []*KeyRecord{admin, user} {
			got, err := s.KeyByHash(ctx, want.Hash)
			if err != nil {
				t.Fatal(err)
			}
			compareKey(t, got, want)
		}
	})

	t.Run("lookup by id", func(t *testing.T) {
		t.Parallel()
		got, err := s.GetKey(ctx, user.ID)
		if err != nil {
			t.Fatal(err)
		}
		compareKey(t, got, user)
	})

	t.Run("unknown secret", func(t *testing.T) {
		t.Parallel()
		_, err := s.KeyByHash(ctx, HashSecret("cove_unknown"))
		wantCode(t, err, cove.CodeNotFound)
	})

	t.Run("unknown id", func(t *testing.T) {
		t.Parallel()
		_, err := s.GetKey(ctx, "key_000000000000")
		wantCode(t, err, cove.CodeNotFound)
	})

	t.Run("put errors", func(t *testing.T) {
		t.Parallel()
		sameID := newKey(t, "same id", t0)
		sameID.ID = user.ID
		sameHash := newKey(t, "same secret", t0)
		sameHash.Hash = user.Hash
		shortHash := newKey(t, "short hash", t0)
		shortHash.Hash = shortHash.Hash[:16]
		noID := newKey(t, "no id", t0)
		noID.ID = ""
		noTime := newKey(t, "no time", time.Time{})
		tests := []struct {
			name string
			k    *KeyRecord
			code cove.Code
		}{
			{"duplicate id", sameID, cove.CodeConflict},
			{"duplicate hash", sameHash, cove.CodeConflict},
			{"short hash", shortHash, cove.CodeInvalid},
			{"no id", noID, cove.CodeInvalid},
			{"no creation time", noTime, cove.CodeInvalid},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				wantCode(t, s.PutKey(ctx, tt.k), tt.code)
			})
		}
	})
}

func TestRevokeKey(t *testing.T) {
	t.Parallel()
	s, _ := openTestStore(t)
	ctx := t.Context()
	t0 := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	k := newKey(t, "doomed", t0)
	other := newKey(t, "other", t0.Add(time.Second))
	for _, k := range []*KeyRecord{k, other} {
		if err := s.PutKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	first := t0.Add(time.Hour)
	// The steps run in order: each builds on the last.
	steps := []struct {
		name string
		id   string
		at   time.Time
		code cove.Code
	}{
		{"revoke", k.ID, first, ""},
		{"again keeps the first time", k.ID, first.Add(time.Hour), ""},
		{"missing", "key_ffffffffffff", first, cove.CodeNotFound},
		{"zero time", other.ID, time.Time{}, cove.CodeInvalid},
	}
	for _, tt := range steps {
		t.Run(tt.name, func(t *testing.T) {
			err := s.RevokeKey(ctx, tt.id, tt.at)
			if tt.code != "" {
				wantCode(t, err, tt.code)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.KeyByHash(ctx, k.Hash)
			if err != nil {
				t.Fatalf("a revoked key must still be found by its hash: %v", err)
			}
			if got.RevokedAt == nil || !got.RevokedAt.Equal(first) {
				t.Errorf("RevokedAt = %v, want %v", got.RevokedAt, first)
			}
		})
	}

	t.Run("list shows revoked and active keys, oldest first", func(t *testing.T) {
		keys, err := s.ListKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 2 {
			t.Fatalf("got %d keys, want 2", len(keys))
		}
		k.RevokedAt = &first
		compareKey(t, keys[0], k)
		compareKey(t, keys[1], other)
	})
}

func TestListKeysEmpty(t *testing.T) {
	t.Parallel()
	s, _ := openTestStore(t)
	keys, err := s.ListKeys(t.Context())
	if err != nil || len(keys) != 0 {
		t.Errorf("got %v, %v; want no keys", keys, err)
	}
}
