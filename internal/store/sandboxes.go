package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cove-sandbox/cove"
)

// SandboxRecord is a sandbox as the store keeps it.
type SandboxRecord struct {
	ID string
	// Owner is the id of the key that created the sandbox ("" for the
	// local administrator).
	Owner    string
	State    cove.SandboxState
	Language string
	Limits   cove.Limits
	// Env and Labels come back nil when empty.
	Env    map[string]string
	Labels map[string]string
	// IdleTimeout and TTL are as requested (zero: the server default).
	IdleTimeout time.Duration
	TTL         time.Duration
	// CreatedAt orders listings; it must be set.
	CreatedAt    time.Time
	LastActiveAt time.Time
	// ExpiresAt is when the TTL deletes the sandbox (zero: never).
	ExpiresAt time.Time
	// Ephemeral marks a sandbox that lives as long as one request.
	Ephemeral bool
	// Programs are the program files cove wrote into the workspace for
	// code runs: name -> hex SHA-256 of what it wrote (nil when none).
	Programs map[string]string
	// StopReason says why a stopped sandbox stopped ("idle for 30m",
	// "stopped on request"), for calls that find it stopped, also after
	// a restart; "" when unknown or running.
	StopReason string
}

// SandboxFilter selects and pages ListSandboxes.
type SandboxFilter struct {
	// Owner keeps the sandboxes of one key ("" is the local
	// administrator); nil keeps every owner's.
	Owner *string
	// State keeps sandboxes in this state ("": any).
	State cove.SandboxState
	// Labels keeps sandboxes that carry all of these labels.
	Labels map[string]string
	// ExpiresBy keeps sandboxes whose TTL ends at this time or before
	// (zero: no filter).
	ExpiresBy time.Time
	// Limit caps the page size; zero, negative or above MaxPageSize means
	// MaxPageSize.
	Limit int
	// PageToken continues the listing that returned it.
	PageToken string
}

// MaxPageSize is the largest (and default) page of ListSandboxes.
const MaxPageSize = 100

const sandboxColumns = `id, owner, state, language, limits, env, labels, idle_timeout, ttl, created_at, last_active_at, expires_at, ephemeral, programs, stop_reason`

const (
	insertSandbox = `INSERT INTO sandboxes (` + sandboxColumns + `, memory_bytes)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	selectSandbox = `SELECT ` + sandboxColumns + ` FROM sandboxes WHERE id = ?`
	updateSandbox = `UPDATE sandboxes SET owner = ?, state = ?, language = ?, limits = ?, env = ?, labels = ?,
		idle_timeout = ?, ttl = ?, created_at = ?, last_active_at = ?, expires_at = ?, ephemeral = ?, programs = ?, stop_reason = ?, memory_bytes = ?
		WHERE id = ?`
	deleteSandbox = `DELETE FROM sandboxes WHERE id = ?`
	// noteDeleted copies what a deleted sandbox's tombstone keeps from its
	// row, in the transaction that deletes it.
	noteDeleted = `INSERT OR REPLACE INTO deleted_sandboxes (id, owner, reason, deleted_at)
		SELECT id, owner, ?, ? FROM sandboxes WHERE id = ?`
	selectDeleted = `SELECT id, owner, reason, deleted_at FROM deleted_sandboxes WHERE id = ?`
	// capDeleted keeps the newest MaxDeletedPerOwner deletions of the
	// owner of the sandbox being deleted.
	capDeleted = `DELETE FROM deleted_sandboxes WHERE owner = (SELECT owner FROM sandboxes WHERE id = ?1)
		AND id NOT IN (SELECT id FROM deleted_sandboxes WHERE owner = (SELECT owner FROM sandboxes WHERE id = ?1)
			ORDER BY deleted_at DESC LIMIT ?2)`
	pruneDeleted = `DELETE FROM deleted_sandboxes WHERE deleted_at < ?`
	// touchSandbox writes only when the time moves forward, so a burst of
	// touches with the same or older times costs no page write.
	touchSandbox   = `UPDATE sandboxes SET last_active_at = ? WHERE id = ? AND (last_active_at IS NULL OR last_active_at < ?)`
	sandboxExists  = `SELECT count(*) FROM sandboxes WHERE id = ?`
	countSandboxes = `SELECT count(*), coalesce(sum(memory_bytes), 0), coalesce(sum(ephemeral), 0), coalesce(sum(memory_bytes * ephemeral), 0) FROM sandboxes WHERE owner = ?`
	allSandboxIDs  = `SELECT id FROM sandboxes`

	// ListSandboxes is assembled from these fragments. Paging is by
	// keyset on (created_at, id), which the indexes serve in order, so a
	// page stays correct when sandboxes are created or deleted between
	// pages, and label filters run in SQL before the LIMIT.
	listSandboxes     = `SELECT ` + sandboxColumns + ` FROM sandboxes WHERE 1 = 1`
	listByOwner       = ` AND owner = ?`
	listByState       = ` AND state = ?`
	listByExpiry      = ` AND expires_at IS NOT NULL AND expires_at <= ?`
	listAfter         = ` AND (created_at, id) < (?, ?)`
	listByLabel       = ` AND EXISTS (SELECT 1 FROM json_each(sandboxes.labels) WHERE key = ? AND value = ?)`
	listOrderAndLimit = ` ORDER BY created_at DESC, id DESC LIMIT ?`
)

// PutSandbox inserts a new sandbox. Errors: conflict (the id exists),
// invalid (no id, state or creation time).
func (s *Store) PutSandbox(ctx context.Context, r *SandboxRecord) error {
	args, err := sandboxArgs(r)
	if err != nil {
		return err
	}
	if _, err := s.w.ExecContext(ctx, insertSandbox, append([]any{r.ID}, args...)...); err != nil {
		if isUniqueViolation(err) {
			return cove.Errorf(cove.CodeConflict, "sandbox %s already exists", r.ID)
		}
		return dbError(ctx, "inserting sandbox", err)
	}
	return nil
}

// GetSandbox returns one sandbox. Errors: not_found.
func (s *Store) GetSandbox(ctx context.Context, id string) (*SandboxRecord, error) {
	return sandboxOf(ctx, s.selectSandbox.QueryRowContext(ctx, id), id)
}

// UpdateSandbox reads a sandbox, lets fn change it, and writes it back, in
// one transaction: no other write happens in between. fn runs while the
// store's only write connection is held, so it must be quick and must not
// call the Store. An error from fn aborts the update and is returned as it
// is. Errors: not_found, invalid (fn changed the id or cleared a required
// field), and whatever fn returns.
func (s *Store) UpdateSandbox(ctx context.Context, id string, fn func(r *SandboxRecord) error) (_ *SandboxRecord, err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, dbError(ctx, "starting transaction", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()

	r, err := getSandbox(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if err := fn(r); err != nil {
		return nil, err
	}
	if r.ID != id {
		return nil, cove.Errorf(cove.CodeInvalid, "a sandbox's id cannot change (from %s to %s)", id, r.ID)
	}
	args, err := sandboxArgs(r)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, updateSandbox, append(args, id)...); err != nil {
		return nil, dbError(ctx, "updating sandbox", err)
	}
	// Read the row back so that the caller sees what is stored (times in
	// UTC, empty maps nil), as GetSandbox would return it.
	if r, err = getSandbox(ctx, tx, id); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, dbError(ctx, "committing sandbox update", err)
	}
	return r, nil
}

// DeleteSandbox removes a sandbox's record; a missing one is not an error.
// When why is not empty, the store remembers the deletion (DeletedSandbox)
// until PruneDeleted forgets it.
func (s *Store) DeleteSandbox(ctx context.Context, id, why string) (err error) {
	if why == "" {
		if _, err := s.w.ExecContext(ctx, deleteSandbox, id); err != nil {
			return dbError(ctx, "deleting sandbox", err)
		}
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return dbError(ctx, "starting transaction", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if _, err := tx.ExecContext(ctx, noteDeleted, why, time.Now().UnixNano(), id); err != nil {
		return dbError(ctx, "noting the deletion of a sandbox", err)
	}
	if _, err := tx.ExecContext(ctx, capDeleted, id, MaxDeletedPerOwner); err != nil {
		return dbError(ctx, "forgetting a key's oldest deletions", err)
	}
	if _, err := tx.ExecContext(ctx, deleteSandbox, id); err != nil {
		return dbError(ctx, "deleting sandbox", err)
	}
	if err := tx.Commit(); err != nil {
		return dbError(ctx, "committing sandbox deletion", err)
	}
	return nil
}

// MaxDeletedPerOwner bounds the deletions remembered of each key: one that
// creates and deletes sandboxes in a loop cannot grow the table without
// bound before PruneDeleted forgets the old ones.
const MaxDeletedPerOwner = 1000

// DeletedRecord is what the store remembers of a deleted sandbox.
type DeletedRecord struct {
	ID, Owner string
	// Why is the reason given to DeleteSandbox.
	Why       string
	DeletedAt time.Time
}

// DeletedSandbox returns what the store remembers of a deleted sandbox.
// Errors: not_found (never deleted with a reason, or forgotten since).
func (s *Store) DeletedSandbox(ctx context.Context, id string) (*DeletedRecord, error) {
	var (
		d  DeletedRecord
		at int64
	)
	err := s.r.QueryRowContext(ctx, selectDeleted, id).Scan(&d.ID, &d.Owner, &d.Why, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, cove.Errorf(cove.CodeNotFound, "no deleted sandbox %s on record", id)
	}
	if err != nil {
		return nil, dbError(ctx, "reading a deleted sandbox", err)
	}
	d.DeletedAt = time.Unix(0, at).UTC()
	return &d, nil
}

// PruneDeleted forgets the sandboxes deleted before t and returns how
// many it forgot.
func (s *Store) PruneDeleted(ctx context.Context, t time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx, pruneDeleted, t.UnixNano())
	if err != nil {
		return 0, dbError(ctx, "forgetting deleted sandboxes", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// ListSandboxes returns a page of sandboxes, newest first (by creation
// time, then id), and the token of the next page ("" after the last).
// Errors: invalid (a page token this store did not hand out).
func (s *Store) ListSandboxes(ctx context.Context, f SandboxFilter) ([]*SandboxRecord, string, error) {
	limit := f.Limit
	if limit <= 0 || limit > MaxPageSize {
		limit = MaxPageSize
	}
	var q strings.Builder
	q.WriteString(listSandboxes)
	var args []any
	if f.Owner != nil {
		q.WriteString(listByOwner)
		args = append(args, *f.Owner)
	}
	if f.State != "" {
		q.WriteString(listByState)
		args = append(args, string(f.State))
	}
	if !f.ExpiresBy.IsZero() {
		by, err := timeValue("expiry filter", f.ExpiresBy)
		if err != nil {
			return nil, "", err
		}
		q.WriteString(listByExpiry)
		args = append(args, by)
	}
	if f.PageToken != "" {
		created, id, err := decodePageToken(f.PageToken)
		if err != nil {
			return nil, "", err
		}
		q.WriteString(listAfter)
		args = append(args, created, id)
	}
	for _, k := range slices.Sorted(maps.Keys(f.Labels)) {
		q.WriteString(listByLabel)
		args = append(args, k, f.Labels[k])
	}
	q.WriteString(listOrderAndLimit)
	// One more row than the page tells whether another page follows.
	args = append(args, limit+1)

	rows, err := s.r.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, "", dbError(ctx, "listing sandboxes", err)
	}
	defer rows.Close()
	var out []*SandboxRecord
	for rows.Next() {
		r, err := scanSandbox(rows)
		if err != nil {
			return nil, "", dbError(ctx, "listing sandboxes", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", dbError(ctx, "listing sandboxes", err)
	}
	var next string
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = encodePageToken(last.CreatedAt.UnixNano(), last.ID)
	}
	return out, next, nil
}

// SandboxCount is what an owner's sandboxes hold of its quotas.
type SandboxCount struct {
	// N is how many sandboxes the owner has on record, in any state, and
	// MemoryBytes the sum of their memory limits.
	N           int
	MemoryBytes int64
	// Ephemeral and EphemeralMemoryBytes are the same of those that are
	// the sandboxes of one-call runs, which go when the runs end.
	Ephemeral            int
	EphemeralMemoryBytes int64
}

// CountSandboxes returns what owner's sandboxes hold of its quotas.
func (s *Store) CountSandboxes(ctx context.Context, owner string) (SandboxCount, error) {
	var c SandboxCount
	if err := s.r.QueryRowContext(ctx, countSandboxes, owner).Scan(&c.N, &c.MemoryBytes, &c.Ephemeral, &c.EphemeralMemoryBytes); err != nil {
		return SandboxCount{}, dbError(ctx, "counting sandboxes", err)
	}
	return c, nil
}

// TouchSandbox records activity: last_active_at becomes the later of its
// old value and at. Errors: not_found.
func (s *Store) TouchSandbox(ctx context.Context, id string, at time.Time) error {
	v, err := timeValue("activity time", at)
	if err != nil {
		return err
	}
	if !v.Valid {
		return cove.Errorf(cove.CodeInvalid, "activity time is zero")
	}
	res, err := s.w.ExecContext(ctx, touchSandbox, v, id, v)
	if err != nil {
		return dbError(ctx, "touching sandbox", err)
	}
	if n, err := res.RowsAffected(); err == nil && n > 0 {
		return nil
	}
	// Nothing changed: either the sandbox is gone or it was already
	// active at that time or later.
	var n int
	if err := s.r.QueryRowContext(ctx, sandboxExists, id).Scan(&n); err != nil {
		return dbError(ctx, "touching sandbox", err)
	}
	if n == 0 {
		return cove.Errorf(cove.CodeNotFound, "sandbox %s not found", id)
	}
	return nil
}

// AllSandboxIDs returns the id of every sandbox on record, whatever its
// owner or state.
func (s *Store) AllSandboxIDs(ctx context.Context) (map[string]bool, error) {
	rows, err := s.r.QueryContext(ctx, allSandboxIDs)
	if err != nil {
		return nil, dbError(ctx, "listing sandbox ids", err)
	}
	defer rows.Close()
	ids := make(map[string]bool)
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, dbError(ctx, "listing sandbox ids", err)
		}
		ids[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(ctx, "listing sandbox ids", err)
	}
	return ids, nil
}

// queryer is what reads need from *sql.DB and *sql.Tx.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func getSandbox(ctx context.Context, q queryer, id string) (*SandboxRecord, error) {
	return sandboxOf(ctx, q.QueryRowContext(ctx, selectSandbox, id), id)
}

// sandboxOf returns the sandbox in row, the answer to a query for id.
func sandboxOf(ctx context.Context, row *sql.Row, id string) (*SandboxRecord, error) {
	r, err := scanSandbox(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, cove.Errorf(cove.CodeNotFound, "sandbox %s not found", id)
	}
	if err != nil {
		return nil, dbError(ctx, "reading sandbox", err)
	}
	return r, nil
}

// sandboxArgs validates r and returns its column values in the order of
// updateSandbox's SET list (insertSandbox puts the id in front).
func sandboxArgs(r *SandboxRecord) ([]any, error) {
	switch {
	case r.ID == "":
		return nil, cove.Errorf(cove.CodeInvalid, "sandbox id is empty")
	case r.State == "":
		return nil, cove.Errorf(cove.CodeInvalid, "sandbox %s has no state", r.ID)
	case r.CreatedAt.IsZero():
		return nil, cove.Errorf(cove.CodeInvalid, "sandbox %s has no creation time", r.ID)
	}
	limits, err := json.Marshal(r.Limits)
	if err != nil {
		return nil, cove.Errorf(cove.CodeInvalid, "encoding limits of sandbox %s: %w", r.ID, err)
	}
	env, err := encodeMap(r.Env)
	if err != nil {
		return nil, err
	}
	labels, err := encodeMap(r.Labels)
	if err != nil {
		return nil, err
	}
	programs, err := encodeMap(r.Programs)
	if err != nil {
		return nil, err
	}
	created, err := timeValue("creation time", r.CreatedAt)
	if err != nil {
		return nil, err
	}
	active, err := timeValue("last activity time", r.LastActiveAt)
	if err != nil {
		return nil, err
	}
	expires, err := timeValue("expiry time", r.ExpiresAt)
	if err != nil {
		return nil, err
	}
	return []any{
		r.Owner, string(r.State), r.Language, string(limits), env, labels,
		int64(r.IdleTimeout), int64(r.TTL), created, active, expires, r.Ephemeral, programs, r.StopReason, r.Limits.MemoryBytes,
	}, nil
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

func scanSandbox(sc scanner) (*SandboxRecord, error) {
	var (
		r                       SandboxRecord
		state                   string
		limits, env, labels     string
		programs                string
		idle, ttl               int64
		created, active, expiry sql.NullInt64
	)
	if err := sc.Scan(&r.ID, &r.Owner, &state, &r.Language, &limits, &env, &labels,
		&idle, &ttl, &created, &active, &expiry, &r.Ephemeral, &programs, &r.StopReason); err != nil {
		return nil, err
	}
	r.State = cove.SandboxState(state)
	r.IdleTimeout = time.Duration(idle)
	r.TTL = time.Duration(ttl)
	r.CreatedAt = timeFrom(created)
	r.LastActiveAt = timeFrom(active)
	r.ExpiresAt = timeFrom(expiry)
	if err := json.Unmarshal([]byte(limits), &r.Limits); err != nil {
		return nil, errors.Join(errors.New("decoding limits of sandbox "+r.ID), err)
	}
	var err error
	if r.Env, err = decodeMap(env); err != nil {
		return nil, errors.Join(errors.New("decoding env of sandbox "+r.ID), err)
	}
	if r.Labels, err = decodeMap(labels); err != nil {
		return nil, errors.Join(errors.New("decoding labels of sandbox "+r.ID), err)
	}
	if r.Programs, err = decodeMap(programs); err != nil {
		return nil, errors.Join(errors.New("decoding program files of sandbox "+r.ID), err)
	}
	return &r, nil
}

// encodeMap stores a map as a JSON object; nil is stored as {} so that
// json_each always sees an object.
func encodeMap(m map[string]string) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", cove.Errorf(cove.CodeInvalid, "encoding map: %w", err)
	}
	return string(b), nil
}

// decodeMap reads a JSON object; an empty one is nil.
func decodeMap(s string) (map[string]string, error) {
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// Page tokens are opaque to clients: base64url of "1:<created_at
// nanoseconds>:<id>", the position of the last sandbox of the page.
const pageTokenVersion = "1"

func encodePageToken(createdAt int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(pageTokenVersion + ":" + strconv.FormatInt(createdAt, 10) + ":" + id))
}

func decodePageToken(tok string) (createdAt int64, id string, err error) {
	bad := cove.Errorf(cove.CodeInvalid, "invalid page token: pass the next_page_token of the previous page unchanged")
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, "", bad
	}
	parts := strings.SplitN(string(b), ":", 3)
	if len(parts) != 3 || parts[0] != pageTokenVersion || parts[2] == "" {
		return 0, "", bad
	}
	createdAt, err = strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return 0, "", bad
	}
	return createdAt, parts[2], nil
}
