// Package store is cove's persistent state: sandboxes and API keys in one
// SQLite file, through the pure Go driver modernc.org/sqlite so that cove
// stays a static binary built without cgo.
//
// Every method is safe for concurrent use. Errors are *cove.Error values
// with the codes not_found, conflict, invalid, timeout (the context's
// deadline passed), unavailable (the disk under the database is full or
// read-only) or internal; internal errors wrap the driver's cause.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/cove-sandbox/cove"
)

// busyTimeout is how long a connection waits for a lock held by another
// connection before giving up with SQLITE_BUSY. Inside one process the
// single writer connection means writers never wait on each other in
// SQLite; the timeout covers a second process (say, the CLI) opening the
// same file, and WAL checkpoints.
const busyTimeout = 5 * time.Second

// Store is cove's database. Open one per file and share it.
//
// Concurrency: SQLite allows one writer at a time and, in WAL mode, any
// number of readers alongside it. Store mirrors that with two pools over
// the same file. The writer pool has exactly one connection, and its
// transactions start with BEGIN IMMEDIATE, so writers queue in Go (where
// waiting honours ctx) instead of racing for SQLite's lock and failing
// with SQLITE_BUSY, and a read-modify-write transaction can never be asked
// to upgrade a read lock that another writer has overtaken. The reader
// pool has several query-only connections, so reads neither wait for
// writes nor for each other.
type Store struct {
	path string
	w    *sql.DB // one connection: every write goes through it
	r    *sql.DB // query-only connections for reads
	// The reads every API request makes, prepared once: SQLite would
	// otherwise compile their text on every call.
	keyByHash, selectSandbox *sql.Stmt
}

// Open opens the database at path, creating the file (mode 0600; its
// directory 0700) and the schema as needed, and migrates an older schema
// forward. It refuses a file that is not a cove database (invalid) and a
// database whose schema is newer than this binary knows (conflict).
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, cove.Errorf(cove.CodeInvalid, "database path is empty")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, cove.Errorf(cove.CodeInvalid, "database path %q: %w", path, err)
	}
	if err := createFile(abs); err != nil {
		return nil, err
	}

	s := &Store{path: abs}
	// synchronous=NORMAL is the setting SQLite recommends with WAL: the
	// file cannot be corrupted, and a power loss can only forget the last
	// few commits, which is the right trade for a record touched on every
	// request. Without an explicit journal_mode the reader connections
	// leave the mode alone; the writer switches the file to WAL (a
	// persistent setting) before any reader opens.
	s.w, err = sql.Open("sqlite", dsn(abs, url.Values{
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
			"journal_mode(WAL)",
			"synchronous(NORMAL)",
			"foreign_keys(1)",
		},
		"_txlock": {"immediate"},
	}))
	if err != nil {
		return nil, &cove.Error{Code: cove.CodeInternal, Message: "opening database " + abs, Err: err}
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)

	if err := s.w.PingContext(ctx); err != nil {
		s.w.Close()
		return nil, openError(ctx, abs, err)
	}
	if err := migrate(ctx, s.w, abs); err != nil {
		s.w.Close()
		return nil, err
	}

	s.r, err = sql.Open("sqlite", dsn(abs, url.Values{
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
			"foreign_keys(1)",
		},
		"_query_only": {"1"},
	}))
	if err != nil {
		s.w.Close()
		return nil, &cove.Error{Code: cove.CodeInternal, Message: "opening database " + abs, Err: err}
	}
	n := max(4, runtime.GOMAXPROCS(0))
	s.r.SetMaxOpenConns(n)
	s.r.SetMaxIdleConns(n)
	if err := s.r.PingContext(ctx); err != nil {
		s.Close()
		return nil, openError(ctx, abs, err)
	}
	if s.keyByHash, err = s.r.PrepareContext(ctx, keyByHash); err == nil {
		s.selectSandbox, err = s.r.PrepareContext(ctx, selectSandbox)
	}
	if err != nil {
		s.Close()
		return nil, dbError(ctx, "preparing queries", err)
	}
	return s, nil
}

// Close closes the database. Calls in flight finish first.
func (s *Store) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.keyByHash, s.selectSandbox} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(append(errs, s.r.Close(), s.w.Close())...)
}

// createFile creates the database file with mode 0600 before SQLite sees
// it: SQLite would create it with 0644 less the umask, and it creates the
// -wal and -shm files with the database file's mode. An existing file is
// left as it is.
func createFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return &cove.Error{Code: cove.CodeInternal, Message: "creating database directory", Err: err}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return &cove.Error{Code: cove.CodeInternal, Message: "creating database " + path, Err: err}
	}
	return f.Close()
}

// dsn builds a SQLite URI for path. The URI form lets a path hold any
// character ('?' and '#' are escaped); SQLite ignores the driver's
// underscore parameters.
func dsn(path string, params url.Values) string {
	u := url.URL{Scheme: "file", Path: path, RawQuery: params.Encode()}
	return u.String()
}

// openError classifies a failure to open the file.
func openError(ctx context.Context, path string, err error) error {
	if sqliteCode(err) == sqlite3.SQLITE_NOTADB {
		return cove.Errorf(cove.CodeInvalid, "%s is not a cove database: %w", path, err)
	}
	return dbError(ctx, "opening database "+path, err)
}

// dbError wraps a database failure: timeout when ctx's deadline passed,
// unavailable when the disk under the database is full or read-only (the
// host's state, not a bug: the same call works once space is back),
// internal otherwise.
func dbError(ctx context.Context, what string, err error) error {
	code := cove.CodeInternal
	switch sqliteCode(err) & 0xff {
	case sqlite3.SQLITE_FULL:
		return &cove.Error{Code: cove.CodeUnavailable, Err: err,
			Message: "cove's disk is full, so it cannot record this (" + what + "): try again once space is freed on the disk that holds cove's data directory"}
	case sqlite3.SQLITE_READONLY:
		return &cove.Error{Code: cove.CodeUnavailable, Err: err,
			Message: "cove's database cannot be written (" + what + "): the file system that holds cove's data directory is read-only; try again once it is writable"}
	}
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(cerr, context.DeadlineExceeded) {
			code = cove.CodeTimeout
		}
		if !errors.Is(err, cerr) {
			err = errors.Join(err, cerr)
		}
	}
	return &cove.Error{Code: code, Message: what, Err: err}
}

// sqliteCode returns the extended SQLite result code in err's chain, or 0.
func sqliteCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()
	}
	return 0
}

// isUniqueViolation reports whether err is a primary key or unique
// constraint failure.
func isUniqueViolation(err error) bool {
	switch sqliteCode(err) {
	case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
		return true
	}
	return false
}

// Times are stored as INTEGER nanoseconds since the Unix epoch (UTC), and
// a zero time as NULL. Nanoseconds fit in an int64 from 1677 to 2262.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// timeValue converts t for a nullable time column.
func timeValue(field string, t time.Time) (sql.NullInt64, error) {
	if t.IsZero() {
		return sql.NullInt64{}, nil
	}
	if t.Before(minTime) || t.After(maxTime) {
		return sql.NullInt64{}, cove.Errorf(cove.CodeInvalid, "%s %s is out of range (1678 to 2262)", field, t.Format(time.RFC3339))
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}, nil
}

// timeFrom converts a nullable time column back.
func timeFrom(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}
