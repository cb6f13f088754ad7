package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"time"

	"github.com/cove-sandbox/cove"
)

// KeyRecord is an API key as the store keeps it: never its secret, only
// the secret's hash (see HashSecret).
type KeyRecord struct {
	cove.Key
	// Hash is HashSecret of the key's secret.
	Hash []byte
}

const keyColumns = `id, name, admin, max_sandboxes, max_concurrent_execs, max_memory_bytes, hash, created_at, revoked_at`

const (
	insertKey = `INSERT INTO keys (` + keyColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	keyByHash = `SELECT ` + keyColumns + ` FROM keys WHERE hash = ?`
	keyByID   = `SELECT ` + keyColumns + ` FROM keys WHERE id = ?`
	listKeys  = `SELECT ` + keyColumns + ` FROM keys ORDER BY created_at, id`
	// revokeKey keeps the first revocation time, so revoking twice is
	// harmless.
	revokeKey = `UPDATE keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`
)

// PutKey inserts a new key. Errors: conflict (the id or the secret's hash
// exists), invalid (no id, a hash that is not SHA-256, no creation time).
func (s *Store) PutKey(ctx context.Context, k *KeyRecord) error {
	switch {
	case k.ID == "":
		return cove.Errorf(cove.CodeInvalid, "key id is empty")
	case len(k.Hash) != sha256.Size:
		return cove.Errorf(cove.CodeInvalid, "key %s: hash is %d bytes, not a SHA-256", k.ID, len(k.Hash))
	case k.CreatedAt.IsZero():
		return cove.Errorf(cove.CodeInvalid, "key %s has no creation time", k.ID)
	}
	created, err := timeValue("creation time", k.CreatedAt)
	if err != nil {
		return err
	}
	var revoked sql.NullInt64
	if k.RevokedAt != nil {
		if revoked, err = timeValue("revocation time", *k.RevokedAt); err != nil {
			return err
		}
	}
	_, err = s.w.ExecContext(ctx, insertKey, k.ID, k.Name, k.Admin,
		k.Quota.MaxSandboxes, k.Quota.MaxConcurrentExecs, k.Quota.MaxMemoryBytes,
		k.Hash, created, revoked)
	if isUniqueViolation(err) {
		return cove.Errorf(cove.CodeConflict, "key %s (or one with the same secret) already exists", k.ID)
	}
	if err != nil {
		return dbError(ctx, "inserting key", err)
	}
	return nil
}

// KeyByHash finds the key whose secret hashes to hash. A revoked key is
// returned with RevokedAt set; refusing it is the caller's job.
// Errors: not_found.
//
// The lookup is an index search on the hash rather than a constant-time
// comparison: what it could leak is how much of a SHA-256 a guess shares
// with a stored one, which says nothing useful about a secret.
func (s *Store) KeyByHash(ctx context.Context, hash []byte) (*KeyRecord, error) {
	k, err := scanKey(s.keyByHash.QueryRowContext(ctx, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, cove.Errorf(cove.CodeNotFound, "no key has this secret")
	}
	if err != nil {
		return nil, dbError(ctx, "reading key", err)
	}
	return k, nil
}

// GetKey returns one key, revoked or not. Errors: not_found.
func (s *Store) GetKey(ctx context.Context, id string) (*KeyRecord, error) {
	k, err := scanKey(s.r.QueryRowContext(ctx, keyByID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, cove.Errorf(cove.CodeNotFound, "key %s not found", id)
	}
	if err != nil {
		return nil, dbError(ctx, "reading key", err)
	}
	return k, nil
}

// ListKeys returns every key, revoked ones included, oldest first.
func (s *Store) ListKeys(ctx context.Context) ([]*KeyRecord, error) {
	rows, err := s.r.QueryContext(ctx, listKeys)
	if err != nil {
		return nil, dbError(ctx, "listing keys", err)
	}
	defer rows.Close()
	var out []*KeyRecord
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, dbError(ctx, "listing keys", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(ctx, "listing keys", err)
	}
	return out, nil
}

// RevokeKey marks a key revoked at at. Revoking a revoked key succeeds and
// keeps the first time. Errors: not_found.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) error {
	v, err := timeValue("revocation time", at)
	if err != nil {
		return err
	}
	if !v.Valid {
		return cove.Errorf(cove.CodeInvalid, "revocation time is zero")
	}
	res, err := s.w.ExecContext(ctx, revokeKey, v, id)
	if err != nil {
		return dbError(ctx, "revoking key", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return dbError(ctx, "revoking key", err)
	}
	if n == 0 {
		return cove.Errorf(cove.CodeNotFound, "key %s not found", id)
	}
	return nil
}

func scanKey(sc scanner) (*KeyRecord, error) {
	var (
		k                KeyRecord
		created, revoked sql.NullInt64
	)
	if err := sc.Scan(&k.ID, &k.Name, &k.Admin,
		&k.Quota.MaxSandboxes, &k.Quota.MaxConcurrentExecs, &k.Quota.MaxMemoryBytes,
		&k.Hash, &created, &revoked); err != nil {
		return nil, err
	}
	k.CreatedAt = timeFrom(created)
	if revoked.Valid {
		t := timeFrom(revoked)
		k.RevokedAt = &t
	}
	return &k, nil
}

// HashSecret returns the SHA-256 of a key's secret, the form in which the
// store keeps and looks up secrets.
//
// A plain, unsalted, fast hash is right here, unlike for passwords: a
// secret is 32 random bytes, so there is no dictionary to try and 2^256
// guesses to make, and salt or a slow KDF would add nothing but a cost on
// every request. Unsalted also lets KeyByHash find a key by an index
// lookup instead of hashing the secret once per stored key.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// SecretPrefix starts every secret, so that a leaked one is recognizable
// (by secret scanners, and by people).
const SecretPrefix = "cove_"

// NewSecret returns a new key id ("key_" and 12 hex digits) and secret
// (SecretPrefix and 43 base64url characters: 32 random bytes).
func NewSecret() (id, secret string, err error) {
	var idb [6]byte
	var sb [32]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return "", "", &cove.Error{Code: cove.CodeInternal, Message: "generating key id", Err: err}
	}
	if _, err := rand.Read(sb[:]); err != nil {
		return "", "", &cove.Error{Code: cove.CodeInternal, Message: "generating key secret", Err: err}
	}
	return "key_" + hex.EncodeToString(idb[:]), SecretPrefix + base64.RawURLEncoding.EncodeToString(sb[:]), nil
}
