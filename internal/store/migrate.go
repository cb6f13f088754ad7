package store

import (
	"context"
	"database/sql"
	"strconv"
	"time"

	"github.com/cove-sandbox/cove"
)

// migration is one forward-only step of the schema. Migrations are never
// edited once released: a change to the schema is a new migration.
type migration struct {
	version int
	sql     string
}

// migrations are the schema's history; version i+1 is migrations[i].
var migrations = []migration{
	{1, schemaV1},
	{2, schemaV2},
	{3, schemaV3},
	{4, schemaV4},
	{5, schemaV5},
}

// schemaVersionTable records each applied migration; the schema's version
// is the highest.
const schemaVersionTable = `
CREATE TABLE IF NOT EXISTS schema_version (
	version    INTEGER PRIMARY KEY,
	applied_at INTEGER NOT NULL
) STRICT`

// schemaV1 is the initial schema.
//
// Times are nanoseconds since the Unix epoch (NULL: none), durations are
// nanoseconds. sandboxes.owner is the owning key's id (empty for the local
// administrator); it is deliberately not a foreign key, because a sandbox
// outlives the revocation of its key and keys may come from outside this
// database. memory_bytes repeats limits' memory so that quota sums need no
// JSON parsing.
const schemaV1 = `
CREATE TABLE sandboxes (
	id             TEXT PRIMARY KEY,
	owner          TEXT NOT NULL DEFAULT '',
	state          TEXT NOT NULL,
	language       TEXT NOT NULL DEFAULT '',
	limits         TEXT NOT NULL DEFAULT '{}',
	memory_bytes   INTEGER NOT NULL DEFAULT 0,
	env            TEXT NOT NULL DEFAULT '{}',
	labels         TEXT NOT NULL DEFAULT '{}',
	idle_timeout   INTEGER NOT NULL DEFAULT 0,
	ttl            INTEGER NOT NULL DEFAULT 0,
	created_at     INTEGER NOT NULL,
	last_active_at INTEGER,
	expires_at     INTEGER
) STRICT;

CREATE INDEX sandboxes_by_created ON sandboxes (created_at DESC, id DESC);
CREATE INDEX sandboxes_by_owner ON sandboxes (owner, created_at DESC, id DESC);
CREATE INDEX sandboxes_by_expiry ON sandboxes (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE keys (
	id                   TEXT PRIMARY KEY,
	name                 TEXT NOT NULL DEFAULT '',
	admin                INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),
	max_sandboxes        INTEGER NOT NULL DEFAULT 0,
	max_concurrent_execs INTEGER NOT NULL DEFAULT 0,
	max_memory_bytes     INTEGER NOT NULL DEFAULT 0,
	hash                 BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),
	created_at           INTEGER NOT NULL,
	revoked_at           INTEGER
) STRICT;
`

// schemaV2 marks the sandboxes that live as long as one request (POST
// /v1/run): a restart after a crash deletes them rather than keeping them
// stopped, since nobody asked for them to stay.
const schemaV2 = `
ALTER TABLE sandboxes ADD COLUMN ephemeral INTEGER NOT NULL DEFAULT 0 CHECK (ephemeral IN (0, 1));
`

// schemaV3 keeps the SHA-256 of the program files cove wrote into each
// sandbox's workspace for code runs (name -> hex), so that after a restart
// cove still tells its own main.py from one of the user's.
const schemaV3 = `
ALTER TABLE sandboxes ADD COLUMN programs TEXT NOT NULL DEFAULT '{}';
`

// schemaV4 remembers, for a while, the sandboxes that were deleted and
// why, so that a call naming one after its TTL ended is told that, rather
// than taken for a wrong id.
const schemaV4 = `
CREATE TABLE deleted_sandboxes (
	id         TEXT PRIMARY KEY,
	owner      TEXT NOT NULL DEFAULT '',
	reason     TEXT NOT NULL DEFAULT '',
	deleted_at INTEGER NOT NULL
) STRICT;

CREATE INDEX deleted_sandboxes_by_time ON deleted_sandboxes (deleted_at);
CREATE INDEX deleted_sandboxes_by_owner ON deleted_sandboxes (owner, deleted_at);
`

// schemaV5 keeps why each stopped sandbox stopped, so that after a
// restart a call to it is still told.
const schemaV5 = `
ALTER TABLE sandboxes ADD COLUMN stop_reason TEXT NOT NULL DEFAULT '';
`

const (
	// hasVersionTable tells a cove database (or an empty file) from
	// someone else's SQLite file.
	hasVersionTable = `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'`
	countUserTables = `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'`
	currentVersion  = `SELECT coalesce(max(version), 0) FROM schema_version`
	recordVersion   = `INSERT INTO schema_version (version, applied_at) VALUES (?, ?)`
)

// latestVersion is the newest schema this binary knows.
func latestVersion() int { return len(migrations) }

// migrate brings the schema of db to latestVersion in one transaction, so
// that a failed step leaves the file as it was and two processes opening
// the same new file do not both migrate it (the second waits for the
// first's write lock, then finds nothing to do).
func migrate(ctx context.Context, db *sql.DB, path string) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return openError(ctx, path, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()

	var n int
	if err := tx.QueryRowContext(ctx, hasVersionTable).Scan(&n); err != nil {
		return openError(ctx, path, err)
	}
	if n == 0 {
		var tables int
		if err := tx.QueryRowContext(ctx, countUserTables).Scan(&tables); err != nil {
			return openError(ctx, path, err)
		}
		if tables > 0 {
			return cove.Errorf(cove.CodeInvalid, "%s is not a cove database: it holds %d tables but no schema_version", path, tables)
		}
		if _, err := tx.ExecContext(ctx, schemaVersionTable); err != nil {
			return dbError(ctx, "creating schema_version", err)
		}
	}

	var current int
	if err := tx.QueryRowContext(ctx, currentVersion).Scan(&current); err != nil {
		return dbError(ctx, "reading schema version", err)
	}
	if current > latestVersion() {
		return cove.Errorf(cove.CodeConflict,
			"database %s has schema version %d, but this cove knows versions up to %d: it was written by a newer cove; run that version, or restore a backup made for this one",
			path, current, latestVersion())
	}
	now := time.Now().UnixNano()
	for _, m := range migrations[current:] {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return dbError(ctx, "applying schema migration "+strconv.Itoa(m.version), err)
		}
		if _, err := tx.ExecContext(ctx, recordVersion, m.version, now); err != nil {
			return dbError(ctx, "recording schema migration "+strconv.Itoa(m.version), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return dbError(ctx, "committing schema migrations", err)
	}
	return nil
}
