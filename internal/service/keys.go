package service

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/store"
)

// localKey describes the caller of an in-process service: the machine's
// administrator.
var localKey = cove.Key{ID: "local", Name: "local administrator", Admin: true}

// requireAdmin refuses a caller whose key is valid but not an admin's.
func requireAdmin(ctx context.Context) error {
	if _, admin := owner(ctx); !admin {
		return cove.Errorf(cove.CodeForbidden, "only an admin key may manage keys")
	}
	return nil
}

// Authenticate returns the key whose secret is given. Errors:
// unauthorized (unknown or revoked).
func (s *Service) Authenticate(ctx context.Context, secret string) (*cove.Key, error) {
	secret = strings.TrimSpace(secret)
	if secret == "" {
		return nil, cove.Errorf(cove.CodeUnauthorized, "missing API key: send Authorization: Bearer <key>")
	}
	k, err := s.records.KeyByHash(ctx, store.HashSecret(secret))
	if cove.ErrorCode(err) == cove.CodeNotFound {
		return nil, cove.Errorf(cove.CodeUnauthorized, "unknown API key")
	}
	if err != nil {
		return nil, err
	}
	if k.RevokedAt != nil {
		return nil, cove.Errorf(cove.CodeUnauthorized, "this API key was revoked")
	}
	key := k.Key
	return &key, nil
}

// EnsureAdminKey makes secret a valid admin key (id "admin"), adding it to
// the records if it is not there yet.
func (s *Service) EnsureAdminKey(ctx context.Context, secret string) error {
	hash := store.HashSecret(secret)
	if k, err := s.records.KeyByHash(ctx, hash); err == nil {
		if k.RevokedAt != nil {
			return cove.Errorf(cove.CodeInvalid, "the admin key cove serve was given was revoked: delete admin.key in the data directory (or set COVE_ADMIN_KEY to another secret of at least 16 characters) and start again, and cove makes a new one")
		}
		return nil
	}
	id := "admin"
	if _, err := s.records.GetKey(ctx, id); err == nil {
		// Another admin secret was configured before; keep both.
		id = "admin-" + newID()
	}
	return s.records.PutKey(ctx, &store.KeyRecord{
		Key:  cove.Key{ID: id, Name: "admin", Admin: true, CreatedAt: time.Now().UTC()},
		Hash: hash,
	})
}

// LoadOrCreateAdminSecret returns the admin secret kept in path (mode
// 0600), creating one when the file does not exist; created reports that.
func LoadOrCreateAdminSecret(path string) (secret string, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), false, nil
	}
	if !os.IsNotExist(err) {
		return "", false, err
	}
	_, secret, err = store.NewSecret()
	if err != nil {
		return "", false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	if _, err := f.WriteString(secret + "\n"); err != nil {
		return "", false, err
	}
	return secret, true, f.Sync()
}

// CreateKey implements cove.Service.
func (s *Service) CreateKey(ctx context.Context, spec cove.KeySpec) (*cove.NewKey, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	q := spec.Quota
	if q.MaxSandboxes < 0 || q.MaxConcurrentExecs < 0 || q.MaxMemoryBytes < 0 {
		return nil, cove.Errorf(cove.CodeInvalid, "quotas must not be negative")
	}
	if len(spec.Name) > 128 {
		return nil, cove.Errorf(cove.CodeInvalid, "key names are at most 128 characters")
	}
	id, secret, err := store.NewSecret()
	if err != nil {
		return nil, cove.Errorf(cove.CodeInternal, "making a key: %w", err)
	}
	k := cove.Key{ID: id, Name: spec.Name, Admin: spec.Admin, Quota: q, CreatedAt: time.Now().UTC()}
	if err := s.records.PutKey(ctx, &store.KeyRecord{Key: k, Hash: store.HashSecret(secret)}); err != nil {
		return nil, err
	}
	return &cove.NewKey{Key: k, Secret: secret}, nil
}

// ListKeys implements cove.Service.
func (s *Service) ListKeys(ctx context.Context) ([]*cove.Key, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	recs, err := s.records.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*cove.Key, 0, len(recs))
	for _, r := range recs {
		k := r.Key
		out = append(out, &k)
	}
	return out, nil
}

// RevokeKey implements cove.Service.
func (s *Service) RevokeKey(ctx context.Context, id string) error {
	if err := requireAdmin(ctx); err != nil {
		return err
	}
	if k := cove.KeyFrom(ctx); k != nil && k.ID == id {
		return cove.Errorf(cove.CodeConflict, "key %s is the key of this request: an admin does not revoke its own key (another admin key can)", id)
	}
	target, err := s.records.GetKey(ctx, id)
	if err != nil {
		return err
	}
	if target.Admin && target.RevokedAt == nil {
		keys, err := s.records.ListKeys(ctx)
		if err != nil {
			return err
		}
		admins := 0
		for _, k := range keys {
			if k.Admin && k.RevokedAt == nil {
				admins++
			}
		}
		if admins <= 1 {
			return cove.Errorf(cove.CodeConflict, "key %s is the last admin key: revoking it would leave no one able to manage keys", id)
		}
	}
	return s.records.RevokeKey(ctx, id, time.Now().UTC())
}

// WhoAmI implements cove.Service.
func (s *Service) WhoAmI(ctx context.Context) (*cove.Key, error) {
	if k := cove.KeyFrom(ctx); k != nil {
		c := *k
		return &c, nil
	}
	c := localKey
	return &c, nil
}
