package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
)

// openTestStore opens a store in a fresh file of t's temporary directory.
func openTestStore(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cove.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, path
}

// wantCode fails t unless err carries code.
func wantCode(t *testing.T, err error, code cove.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	if !errors.Is(err, &cove.Error{Code: code}) {
		t.Fatalf("got %v (code %s), want code %s", err, cove.ErrorCode(err), code)
	}
}

// rawDB opens path directly, bypassing Store, to inspect or tamper with it.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMigrationsAreNumberedInOrder(t *testing.T) {
	t.Parallel()
	for i, m := range migrations {
		if m.version != i+1 {
			t.Errorf("migrations[%d] has version %d, want %d", i, m.version, i+1)
		}
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()

	t.Run("file mode 0600", func(t *testing.T) {
		t.Parallel()
		s, path := openTestStore(t)
		// A write makes SQLite create the -wal file, with the database
		// file's mode.
		if err := s.PutSandbox(t.Context(), newSandbox("sb_mode", time.Now())); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{path, path + "-wal"} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != 0o600 {
				t.Errorf("%s has mode %#o, want 0600", filepath.Base(p), got)
			}
		}
	})

	t.Run("WAL mode and schema version", func(t *testing.T) {
		t.Parallel()
		_, path := openTestStore(t)
		db := rawDB(t, path)
		var mode string
		if err := db.QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" {
			t.Errorf("journal_mode = %q, want wal", mode)
		}
		var v int
		if err := db.QueryRowContext(t.Context(), currentVersion).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != latestVersion() {
			t.Errorf("schema version = %d, want %d", v, latestVersion())
		}
	})

	t.Run("reopening applies no migration twice", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "cove.db")
		for range 3 {
			s, err := Open(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
		var n int
		if err := rawDB(t, path).QueryRowContext(t.Context(), "SELECT count(*) FROM schema_version").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != len(migrations) {
			t.Errorf("schema_version has %d rows, want %d", n, len(migrations))
		}
	})

	t.Run("path with awkward characters", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "new dir", "a ?#%b.db")
		s, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.PutSandbox(t.Context(), newSandbox("sb_path", time.Now())); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("database is not at the path asked for: %v", err)
		}
	})

	t.Run("newer schema refused", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "cove.db")
		s, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		newer := latestVersion() + 1
		if _, err := rawDB(t, path).ExecContext(t.Context(), recordVersion, newer, time.Now().UnixNano()); err != nil {
			t.Fatal(err)
		}
		s, err = Open(t.Context(), path)
		if err == nil {
			s.Close()
		}
		wantCode(t, err, cove.CodeConflict)
		msg := cove.ErrorMessage(err)
		for _, want := range []string{fmt.Sprint(newer), fmt.Sprint(latestVersion()), "newer cove"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q does not mention %q", msg, want)
			}
		}
	})

	t.Run("not a database", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "cove.db")
		if err := os.WriteFile(path, []byte(strings.Repeat("not sqlite\n", 1000)), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(t.Context(), path)
		if err == nil {
			s.Close()
		}
		wantCode(t, err, cove.CodeInvalid)
	})

	t.Run("another program's database", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "other.db")
		if _, err := rawDB(t, path).ExecContext(t.Context(), "CREATE TABLE notes (body TEXT)"); err != nil {
			t.Fatal(err)
		}
		s, err := Open(t.Context(), path)
		if err == nil {
			s.Close()
		}
		wantCode(t, err, cove.CodeInvalid)
	})

	t.Run("empty path", func(t *testing.T) {
		t.Parallel()
		_, err := Open(t.Context(), "")
		wantCode(t, err, cove.CodeInvalid)
	})
}

func TestPersistence(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "cove.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	sb := fullSandbox()
	if err := s.PutSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	key := newKey(t, "persisted", time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC))
	if err := s.PutKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	revoked := time.Date(2026, 2, 3, 4, 5, 6, 7, time.UTC)
	if err := s.RevokeKey(ctx, key.ID, revoked); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.GetSandbox(ctx, sb.ID)
	if err != nil {
		t.Fatal(err)
	}
	compareSandbox(t, got, sb)
	k, err := s.KeyByHash(ctx, key.Hash)
	if err != nil {
		t.Fatal(err)
	}
	key.RevokedAt = &revoked
	compareKey(t, k, key)
}

// TestConcurrentUse runs 50 goroutines that write and read at once; none
// may see an error (SQLITE_BUSY in particular).
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	s, _ := openTestStore(t)
	ctx := t.Context()
	const workers = 50
	const perWorker = 10
	owner := "key_shared"
	base := time.Now()

	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			errs <- func() error {
				for i := range perWorker {
					id := fmt.Sprintf("sb_%02d_%02d", w, i)
					r := newSandbox(id, base.Add(time.Duration(w*perWorker+i)*time.Millisecond))
					r.Owner = owner
					if err := s.PutSandbox(ctx, r); err != nil {
						return fmt.Errorf("put %s: %w", id, err)
					}
					if _, err := s.GetSandbox(ctx, id); err != nil {
						return fmt.Errorf("get %s: %w", id, err)
					}
					if _, err := s.UpdateSandbox(ctx, id, func(r *SandboxRecord) error {
						r.State = cove.StateStopped
						return nil
					}); err != nil {
						return fmt.Errorf("update %s: %w", id, err)
					}
					if err := s.TouchSandbox(ctx, id, time.Now()); err != nil {
						return fmt.Errorf("touch %s: %w", id, err)
					}
					if _, _, err := s.ListSandboxes(ctx, SandboxFilter{Owner: &owner, Limit: 10}); err != nil {
						return fmt.Errorf("list: %w", err)
					}
					if _, err := s.CountSandboxes(ctx, owner); err != nil {
						return fmt.Errorf("count: %w", err)
					}
					if i%2 == 1 {
						if err := s.DeleteSandbox(ctx, id, ""); err != nil {
							return fmt.Errorf("delete %s: %w", id, err)
						}
					}
				}
				k, err := makeKey(fmt.Sprintf("worker %d", w), time.Now())
				if err != nil {
					return err
				}
				if err := s.PutKey(ctx, k); err != nil {
					return fmt.Errorf("put key: %w", err)
				}
				if _, err := s.KeyByHash(ctx, k.Hash); err != nil {
					return fmt.Errorf("key by hash: %w", err)
				}
				return nil
			}()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}

	c, err := s.CountSandboxes(ctx, owner)
	n := c.N
	if err != nil {
		t.Fatal(err)
	}
	if want := workers * perWorker / 2; n != want {
		t.Errorf("%d sandboxes left, want %d", n, want)
	}
	keys, err := s.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != workers {
		t.Errorf("%d keys, want %d", len(keys), workers)
	}
}

func TestContextCancelled(t *testing.T) {
	t.Parallel()
	s, _ := openTestStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.PutSandbox(ctx, newSandbox("sb_cancelled", time.Now())); err == nil {
		t.Fatal("PutSandbox with a cancelled context succeeded")
	} else if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
	if _, err := s.GetSandbox(t.Context(), "sb_cancelled"); !errors.Is(err, &cove.Error{Code: cove.CodeNotFound}) {
		t.Errorf("GetSandbox after a cancelled put: %v, want not_found", err)
	}
}

// TestDiskFull fills the file system under the database: writes fail with
// unavailable, saying the disk is full, rather than as an internal error,
// nothing written before is lost, and writes work again once space is
// back.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs to fill")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=2m"); err != nil {
		t.Skipf("mounting a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	path := filepath.Join(dir, "cove.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	created := time.Now().UTC()
	if err := s.PutSandbox(ctx, newSandbox("before", created)); err != nil {
		t.Fatal(err)
	}
	// Fill what is left of the file system.
	ballast := filepath.Join(dir, "ballast")
	f, err := os.Create(ballast)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	labels := map[string]string{}
	for i := range 64 {
		labels[fmt.Sprintf("label%02d", i)] = strings.Repeat("x", 256)
	}
	var werr error
	for i := 0; i < 1000 && werr == nil; i++ {
		r := newSandbox(fmt.Sprintf("full%d", i), created)
		r.Labels = labels
		werr = s.PutSandbox(ctx, r)
	}
	wantCode(t, werr, cove.CodeUnavailable)
	if msg := cove.ErrorMessage(werr); !strings.Contains(msg, "disk is full") {
		t.Errorf("message %q does not say the disk is full", msg)
	}
	if _, err := s.GetSandbox(ctx, "before"); err != nil {
		t.Errorf("the record written before the disk filled: %v", err)
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSandbox(ctx, newSandbox("after", created)); err != nil {
		t.Fatalf("writing once space is back: %v", err)
	}
	var check string
	if err := s.r.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check = %q, %v", check, err)
	}
}
