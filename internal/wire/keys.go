package wire

import (
	"time"

	"github.com/cove-sandbox/cove"
)

// KeyRequest is the body of POST /v1/keys.
type KeyRequest struct {
	Name  string `json:"name,omitempty"`
	Admin bool   `json:"admin,omitempty"`
	Quota *Quota `json:"quota,omitempty"`
}

// KeyRequestFrom returns spec on the wire.
func KeyRequestFrom(spec cove.KeySpec) *KeyRequest {
	w := &KeyRequest{Name: spec.Name, Admin: spec.Admin}
	if spec.Quota != (cove.Quota{}) {
		q := QuotaFrom(spec.Quota)
		w.Quota = &q
	}
	return w
}

// Spec converts w to a cove.KeySpec. Errors: invalid.
func (w *KeyRequest) Spec() (cove.KeySpec, error) {
	spec := cove.KeySpec{Name: w.Name, Admin: w.Admin}
	if w.Quota != nil {
		q, err := w.Quota.Cove()
		if err != nil {
			return cove.KeySpec{}, err
		}
		spec.Quota = q
	}
	return spec, nil
}

// Key is cove.Key on the wire.
type Key struct {
	ID        string     `json:"id"`
	Name      string     `json:"name,omitempty"`
	Admin     bool       `json:"admin"`
	Quota     Quota      `json:"quota"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// KeyFrom returns k on the wire.
func KeyFrom(k *cove.Key) *Key {
	return &Key{ID: k.ID, Name: k.Name, Admin: k.Admin, Quota: QuotaFrom(k.Quota), CreatedAt: k.CreatedAt, RevokedAt: k.RevokedAt}
}

// Cove converts w back to a cove.Key. Errors: invalid.
func (w *Key) Cove() (*cove.Key, error) {
	q, err := w.Quota.Cove()
	if err != nil {
		return nil, err
	}
	return &cove.Key{ID: w.ID, Name: w.Name, Admin: w.Admin, Quota: q, CreatedAt: w.CreatedAt, RevokedAt: w.RevokedAt}, nil
}

// NewKey is the answer of POST /v1/keys: the key and, only here, its
// secret.
type NewKey struct {
	Key
	Secret string `json:"key"`
}

// KeyList is the answer of GET /v1/keys.
type KeyList struct {
	Keys []*Key `json:"keys"`
}

// Health is the answer of GET /healthz.
type Health struct {
	Status string `json:"status"`
}

// Version is the answer of GET /v1/version.
type Version = cove.VersionInfo
