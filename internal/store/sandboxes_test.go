package store

import (
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
)

// newSandbox returns a minimal valid record.
func newSandbox(id string, created time.Time) *SandboxRecord {
	return &SandboxRecord{
		ID:           id,
		State:        cove.StateRunning,
		Language:     "python",
		CreatedAt:    created,
		LastActiveAt: created,
	}
}

// fullSandbox returns a record with every field set.
func fullSandbox() *SandboxRecord {
	created := time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC)
	return &SandboxRecord{
		ID:       "sb_full",
		Owner:    "key_0123456789ab",
		State:    cove.StateStopped,
		Language: "typescript",
		Limits: cove.Limits{
			MemoryBytes: 256 << 20,
			CPUs:        0.5,
			Pids:        64,
			DiskBytes:   2 << 30,
			TmpBytes:    16 << 20,
			Timeout:     90*time.Second + 1,
			OutputBytes: 4 << 20,
			OpenFiles:   512,
			FileBytes:   1 << 20,
		},
		Env:          map[string]string{"PATH": "/usr/bin", "EMPTY": "", "QUOTE": `a "b" 'c' ü`},
		Labels:       map[string]string{"team": "infra", "odd key.$[0]": "v"},
		IdleTimeout:  15 * time.Minute,
		TTL:          36 * time.Hour,
		CreatedAt:    created,
		LastActiveAt: created.Add(time.Second),
		ExpiresAt:    created.Add(36 * time.Hour),
		Ephemeral:    true,
		Programs:     map[string]string{"main.py": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		StopReason:   "idle for 15m",
	}
}

// compareSandbox checks got against want: times by instant (and stored as
// UTC), everything else exactly.
func compareSandbox(t *testing.T, got, want *SandboxRecord) {
	t.Helper()
	for _, tt := range []struct {
		name      string
		got, want time.Time
	}{
		{"CreatedAt", got.CreatedAt, want.CreatedAt},
		{"LastActiveAt", got.LastActiveAt, want.LastActiveAt},
		{"ExpiresAt", got.ExpiresAt, want.ExpiresAt},
	} {
		if !tt.got.Equal(tt.want) {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
		if !tt.got.IsZero() && tt.got.Location() != time.UTC {
			t.Errorf("%s is in %v, want UTC", tt.name, tt.got.Location())
		}
	}
	g, w := *got, *want
	g.CreatedAt, g.LastActiveAt, g.ExpiresAt = time.Time{}, time.Time{}, time.Time{}
	w.CreatedAt, w.LastActiveAt, w.ExpiresAt = time.Time{}, time.Time{}, time.Time{}
	if len(w.Env) == 0 {
		w.Env = nil
	}
	if len(w.Labels) == 0 {
		w.Labels = nil
	}
	if len(w.Programs) == 0 {
		w.Programs = nil
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("got  %+v\nwant %+v", g, w)
	}
}

func TestSandboxRoundTrip(t *testing.T) {
	t.Parallel()
	s, _ := openTestStore(t)
	zone := time.FixedZone("UTC+5", 5*3600)
	tests := []struct {
		name string
		r    *SandboxRecord
	}{
		{"every field", fullSandbox()},
		{"zero optional fields", &SandboxRecord{
			ID:        "sb_minimal",
			State:     cove.StateRunning,
			CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		}},
		{"empty maps", &SandboxRecord{
			ID:        "sb_empty_maps",
			State:     cove.StateError,
			Env:       map[string]string{},
			Labels:    map[string]string{},
			CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 1, time.UTC),
		}},
		{"limits with only a timeout", &SandboxRecord{
			ID:        "sb_timeout",
			State:     cove.StateRunning,
			Limits:    cove.Limits{Timeout: 2500 * time.Millisecond},
			CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 2, time.UTC),
		}},
		{"times in another zone", &SandboxRecord{
			ID:           "sb_zone",
			State:        cove.StateRunning,
			CreatedAt:    time.Date(2026, 6, 1, 12, 0, 0, 999, zone),
			LastActiveAt: time.Date(2026, 6, 1, 13, 0, 0, 0, zone),
			ExpiresAt:    time.Date(2262, 1, 1, 0, 0, 0, 0, zone),
		}},
		{"monotonic clock reading", newSandbox("sb_now", time.Now())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := s.PutSandbox(t.Context(), tt.r); err != nil {
				t.Fatal(err)
			}
			got, err := s.GetSandbox(t.Context(), tt.r.ID)
			if err != nil {
				t.Fatal(err)
			}
			compareSandbox(t, got, tt.r)
		})
	}
}

func TestPutSandboxErrors(t *testing.T) {
	t.Parallel()
	s, _ := openTestStore(t)
	now := time.Now()
	if err := s.PutSandbox(t.Context(), newSandbox("sb_taken", now)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		r    *SandboxRecord
		code cove.Code
	}{
		{"duplicate id", newSandbox("sb_taken", now.Add(time.Hour)), cove.CodeConflict},
		{"no id", newSandbox("", now), cove.CodeInvalid},
		{"no state", &SandboxRecord{ID: "sb_nostate", CreatedAt: now}, cove.CodeInvalid},
		{"no creation time", &SandboxRecord{ID: "sb_nocreated", State: cove.StateRunning}, cove.CodeInvalid},
		{"time out of range", newSandbox("sb_future", time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)), cove.CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantCode(t, s.PutSandbox(t.Context(), tt.r), tt.code)
		})
	}
	// The duplicate did not overwrite the original.
	got, err := s.GetSandbox(t.Context(), "sb_taken")
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.Equal(now) {
		t.Errorf("duplicate put changed the record: created %v, want %v", got.CreatedAt, now)
	}
}

func TestGetSandboxNotFound(t *testing.T) {
	t.Parallel()
	s, _ := openTestStore(t)
	_, err := s.GetSandbox(t.Context(), "sb_missing")
	wantCode(t, err, cove.CodeNotFound)
}

func TestUpdateSandbox(t *testing.T) {
	t.Parallel()
	s, _ := openTestStore(t)
	ctx := t.Context()
	created := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

	t.Run("changes are stored", func(t *testing.T) {
		t.Parallel()
		if err := s.PutSandbox(ctx, newSandbox("sb_upd", created)); err != nil {
			t.Fatal(err)
		}
		expires := created.Add(time.Hour)
		got, err := s.UpdateSandbox(ctx, "sb_upd", func(r *SandboxRecord) error {
			r.State = cove.StateStopped
			r.Labels = map[string]string{"a": "b"}
			r.Limits.MemoryBytes = 64 << 20
			r.TTL = time.Hour
			r.ExpiresAt = expires
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := newSandbox("sb_upd", created)
		want.State = cove.StateStopped
		want.Labels = map[string]string{"a": "b"}
		want.Limits.MemoryBytes = 64 << 20
		want.TTL = time.Hour
		want.ExpiresAt = expires
		compareSandbox(t, got, want)
		stored, err := s.GetSandbox(ctx, "sb_upd")
		if err != nil {
			t.Fatal(err)
		}
		compareSandbox(t, stored, want)
		if c, err := s.CountSandboxes(ctx, ""); err != nil || c.MemoryBytes < 64<<20 {
			t.Errorf("memory sum after update = %d, %v; want it to include 64 MiB", c.MemoryBytes, err)
		}
	})

	t.Run("an error from fn changes nothing", func(t *testing.T) {
		t.Parallel()
		if err := s.PutSandbox(ctx, newSandbox("sb_abort", created)); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		_, err := s.UpdateSandbox(ctx, "sb_abort", func(r *SandboxRecord) error {
			r.State = cove.StateError
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("got %v, want fn's error", err)
		}
		got, err := s.GetSandbox(ctx, "sb_abort")
		if err != nil {
			t.Fatal(err)
		}
		if got.State != cove.StateRunning {
			t.Errorf("state = %s after an aborted update, want running", got.State)
		}
	})

	t.Run("missing sandbox", func(t *testing.T) {
		t.Parallel()
		called := false
		_, err := s.UpdateSandbox(ctx, "sb_nope", func(*SandboxRecord) error { called = true; return nil })
		wantCode(t, err, cove.CodeNotFound)
		if called {
			t.Error("fn was called for a missing sandbox")
		}
	})

	t.Run("the id cannot change", func(t *testing.T) {
		t.Parallel()
		if err := s.PutSandbox(ctx, newSandbox("sb_fixed", created)); err != nil {
			t.Fatal(err)
		}
		_, err := s.UpdateSandbox(ctx, "sb_fixed", func(r *SandboxRecord) error { r.ID = "sb_other"; return nil })
		wantCode(t, err, cove.CodeInvalid)
		if _, err := s.GetSandbox(ctx, "sb_other"); !errors.Is(err, &cove.Error{Code: cove.CodeNotFound}) {
			t.Errorf("renamed sandbox exists: %v", err)
		}
	})

	t.Run("concurrent read-modify-writes lose nothing", func(t *testing.T) {
		t.Parallel()
		if err := s.PutSandbox(ctx, newSandbox("sb_counter", created)); err != nil {
			t.Fatal(err)
		}
		const n = 40
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				_, err := s.UpdateSandbox(ctx, "sb_counter", func(r *SandboxRecord) error {
					c, _ := strconv.Atoi(r.Labels["count"])
					r.Labels = map[string]string{"count": strconv.Itoa(c + 1)}
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		got, err := s.GetSandbox(ctx, "sb_counter")
		if err != nil {
			t.Fatal(err)
		}
		if got.Labels["count"] != strconv.Itoa(n) {
			t.Errorf("count = %s after %d increments", got.Labels["count"], n)
		}
	})
}

func TestDeleteSandbox(t *testing.T) {
	t.Parallel()
	s, _ := openTestStore(t)
	ctx := t.Context()
	if err := s.PutSandbox(ctx, newSandbox("sb_del", time.Now())); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"existing", "already gone"} {
		if err := s.DeleteSandbox(ctx, "sb_del", ""); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	_, err := s.GetSandbox(ctx, "sb_del")
	wantCode(t, err, cove.CodeNotFound)
}

// TestDeletedSandboxes checks that a deletion with a reason is remembered
// with its owner and time, one without is not, and pruning forgets.
func TestDeletedSandboxes(t *testing.T) {
	t.Parallel()
	s, _ := openTestStore(t)
	ctx := t.Context()
	for _, id := range []string{"noted", "silent"} {
		r := newSandbox(id, time.Now())
		r.Owner = "key_a"
		if err := s.PutSandbox(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	before := time.Now()
	if err := s.DeleteSandbox(ctx, "noted", "its TTL ended"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSandbox(ctx, "silent", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSandbox(ctx, "noted"); cove.ErrorCode(err) != cove.CodeNotFound {
		t.Fatalf("the deleted sandbox's record: %v", err)
	}
	d, err := s.DeletedSandbox(ctx, "noted")
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != "noted" || d.Owner != "key_a" || d.Why != "its TTL ended" || d.DeletedAt.Before(before.Add(-time.Second)) || d.DeletedAt.After(time.Now()) {
		t.Fatalf("remembered %+v", d)
	}
	_, err = s.DeletedSandbox(ctx, "silent")
	wantCode(t, err, cove.CodeNotFound)
	// A reason for a sandbox that has no record notes nothing.
	if err := s.DeleteSandbox(ctx, "never", "gone"); err != nil {
		t.Fatal(err)
	}
	_, err = s.DeletedSandbox(ctx, "never")
	wantCode(t, err, cove.CodeNotFound)

	if n, err := s.PruneDeleted(ctx, before.Add(-time.Minute)); err != nil || n != 0 {
		t.Fatalf("pruning what is older than the deletion: %d, %v", n, err)
	}
	if n, err := s.PruneDeleted(ctx, time.Now().Add(time.Second)); err != nil || n != 1 {
		t.Fatalf("pruning: %d, %v", n, err)
	}
	_, err = s.DeletedSandbox(ctx, "noted")
	wantCode(t, err, cove.CodeNotFound)
}

// listFixture stores sandboxes for list tests. Several share a creation
// time, so the id must break ties.
func listFixture(t *testing.T, s *Store) time.Time {
	t.Helper()
	base := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	for _, r := range []*SandboxRecord{
		{ID: "a1", Owner: "key_a", State: cove.StateRunning, CreatedAt: base.Add(1 * time.Second), Labels: map[string]string{"env": "prod", "team": "x"}},
		{ID: "a2", Owner: "key_a", State: cove.StateStopped, CreatedAt: base.Add(2 * time.Second), Labels: map[string]string{"env": "dev"}, ExpiresAt: base.Add(10 * time.Second)},
		{ID: "a3", Owner: "key_a", State: cove.StateRunning, CreatedAt: base.Add(3 * time.Second), Labels: map[string]string{"env": "prod", "team": "y"}},
		{ID: "b1", Owner: "key_b", State: cove.StateRunning, CreatedAt: base.Add(3 * time.Second), Labels: map[string]string{"env": "prod", "team": "x"}, ExpiresAt: base.Add(20 * time.Second)},
		{ID: "b2", Owner: "key_b", State: cove.StateError, CreatedAt: base.Add(3 * time.Second)},
		{ID: "l1", Owner: "", State: cove.StateRunning, CreatedAt: base.Add(4 * time.Second), Labels: map[string]string{"team": "x"}},
	} {
		if err := s.PutSandbox(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	return base
}

func ids(rs []*SandboxRecord) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func TestListSandboxes(t *testing.T) {
	t.Parallel()
	s, _ := openTestStore(t)
	base := listFixture(t, s)
	tests := []struct {
		name   string
		filter SandboxFilter
		want   []string
	}{
		{"all, newest first, ties by id", SandboxFilter{}, []string{"l1", "b2", "b1", "a3", "a2", "a1"}},
		{"owner", SandboxFilter{Owner: ptr("key_a")}, []string{"a3", "a2", "a1"}},
		{"local owner", SandboxFilter{Owner: ptr("")}, []string{"l1"}},
		{"unknown owner", SandboxFilter{Owner: ptr("key_z")}, nil},
		{"state", SandboxFilter{State: cove.StateRunning}, []string{"l1", "b1", "a3", "a1"}},
		{"owner and state", SandboxFilter{Owner: ptr("key_b"), State: cove.StateError}, []string{"b2"}},
		{"one label", SandboxFilter{Labels: map[string]string{"env": "prod"}}, []string{"b1", "a3", "a1"}},
		{"all labels must match", SandboxFilter{Labels: map[string]string{"env": "prod", "team": "x"}}, []string{"b1", "a1"}},
		{"label value must match", SandboxFilter{Labels: map[string]string{"team": "z"}}, nil},
		{"labels and owner", SandboxFilter{Owner: ptr("key_a"), Labels: map[string]string{"team": "x"}}, []string{"a1"}},
		{"limit", SandboxFilter{Limit: 2}, []string{"l1", "b2"}},
		{"expired by a time", SandboxFilter{ExpiresBy: base.Add(15 * time.Second)}, []string{"a2"}},
		{"expired at that very time", SandboxFilter{ExpiresBy: base.Add(20 * time.Second)}, []string{"b1", "a2"}},
		{"none expired yet", SandboxFilter{ExpiresBy: base.Add(5 * time.Second)}, nil},
		{"expired and state", SandboxFilter{ExpiresBy: base.Add(time.Minute), State: cove.StateRunning}, []string{"b1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, _, err := s.ListSandboxes(t.Context(), tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), tt.want) {
				t.Errorf("got %v, want %v", ids(got), tt.want)
			}
		})
	}
}

func TestListSandboxesPageSize(t *testing.T) {
	t.Parallel()
	s, _ := openTestStore(t)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range MaxPageSize + 5 {
		if err := s.PutSandbox(t.Context(), newSandbox(fmt.Sprintf("sb_%03d", i), base.Add(time.Duration(i)))); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		limit    int
		want     int
		wantNext bool
	}{
		{"default", 0, MaxPageSize, true},
		{"negative means default", -1, MaxPageSize, true},
		{"capped", 1000, MaxPageSize, true},
		{"small", 7, 7, true},
		{"exactly everything", MaxPageSize + 5, MaxPageSize, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, next, err := s.ListSandboxes(t.Context(), SandboxFilter{Limit: tt.limit})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.want || (next != "") != tt.wantNext {
				t.Errorf("got %d sandboxes and next %q, want %d and a next token: %v", len(got), next, tt.want, tt.wantNext)
			}
		})
	}
	t.Run("no token after the last page", func(t *testing.T) {
		t.Parallel()
		_, next, err := s.ListSandboxes(t.Context(), SandboxFilter{Owner: ptr(""), Limit: 5, PageToken: encodePageToken(base.Add(5).UnixNano(), "sb_005")})
		if err != nil {
			t.Fatal(err)
		}
		if next != "" {
			t.Errorf("next token %q after the last page", next)
		}
	})
}

func TestListSandboxesPagination(t *testing.T) {
	t.Parallel()
	const total = 250
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		filter SandboxFilter
		// matches says whether the ith sandbox passes the filter.
		matches func(i int) bool
	}{
		{"everything", SandboxFilter{}, func(int) bool { return true }},
		{"owner", SandboxFilter{Owner: ptr("key_even")}, func(i int) bool { return i%2 == 0 }},
		{"label", SandboxFilter{Labels: map[string]string{"third": "yes"}}, func(i int) bool { return i%3 == 0 }},
		{"state and label", SandboxFilter{State: cove.StateStopped, Labels: map[string]string{"third": "yes"}}, func(i int) bool { return i%3 == 0 && i%5 == 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := openTestStore(t)
			ctx := t.Context()
			var want []string
			for i := range total {
				// Three sandboxes share each creation time, so pages
				// also break inside a run of equal times.
				r := newSandbox(fmt.Sprintf("sb_%03d", i), base.Add(time.Duration(i/3)*time.Second))
				r.Owner = "key_odd"
				if i%2 == 0 {
					r.Owner = "key_even"
				}
				if i%3 == 0 {
					r.Labels = map[string]string{"third": "yes"}
				}
				if i%5 == 0 {
					r.State = cove.StateStopped
				}
				if err := s.PutSandbox(ctx, r); err != nil {
					t.Fatal(err)
				}
				if tt.matches(i) {
					want = append(want, r.ID)
				}
			}
			slices.Reverse(want) // newest first; equal times by id descending

			f := tt.filter
			f.Limit = 100
			var got []string
			for page := 0; ; page++ {
				if page > total {
					t.Fatal("pagination does not end")
				}
				rs, next, err := s.ListSandboxes(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				if len(rs) > f.Limit {
					t.Fatalf("page %d has %d sandboxes, limit %d", page, len(rs), f.Limit)
				}
				got = append(got, ids(rs)...)
				if next == "" {
					break
				}
				// Newer sandboxes matching every filter arrive between
				// pages; they belong before the first page and must
				// not show up in this listing.
				r := newSandbox(fmt.Sprintf("sb_new_%d", page), base.Add(time.Hour))
				r.Owner = "key_even"
				r.State = cove.StateStopped
				r.Labels = map[string]string{"third": "yes"}
				if err := s.PutSandbox(ctx, r); err != nil {
					t.Fatal(err)
				}
				f.PageToken = next
			}
			if !slices.Equal(got, want) {
				t.Errorf("paged listing has %d sandboxes, want %d (duplicates or gaps)\ngot  %v\nwant %v", len(got), len(want), got, want)
			}
		})
	}
}

func TestListSandboxesBadPageToken(t *testing.T) {
	t.Parallel()
	s, _ := openTestStore(t)
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name  string
		token string
	}{
		{"not base64", "!!!"},
		{"padded base64", base64.URLEncoding.EncodeToString([]byte("1:5:x"))},
		{"wrong version", enc("2:5:sb_1")},
		{"no id", enc("1:5:")},
		{"too few parts", enc("1:5")},
		{"not a number", enc("1:five:sb_1")},
		{"garbage", enc("hello")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := s.ListSandboxes(t.Context(), SandboxFilter{PageToken: tt.token})
			wantCode(t, err, cove.CodeInvalid)
		})
	}
}

func TestPageTokenRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		created int64
		id      string
	}{
		{"plain", 1700000000123456789, "sb_1"},
		{"id with colons", 5, "a:b:c"},
		{"negative time", -42, "x"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, id, err := decodePageToken(encodePageToken(tt.created, tt.id))
			if err != nil || c != tt.created || id != tt.id {
				t.Errorf("got %d, %q, %v; want %d, %q", c, id, err, tt.created, tt.id)
			}
		})
	}
}

func TestCountSandboxes(t *testing.T) {
	t.Parallel()
	s, _ := openTestStore(t)
	ctx := t.Context()
	now := time.Now()
	for i, r := range []struct {
		owner     string
		state     cove.SandboxState
		mem       int64
		ephemeral bool
	}{
		{"key_a", cove.StateRunning, 100 << 20, false},
		{"key_a", cove.StateStopped, 200 << 20, false},
		{"key_a", cove.StateError, 0, false},
		{"key_a", cove.StateRunning, 30 << 20, true},
		{"key_b", cove.StateRunning, 50 << 20, false},
		{"", cove.StateRunning, 1 << 30, false},
	} {
		sb := newSandbox(fmt.Sprintf("sb_%d", i), now)
		sb.Owner, sb.State, sb.Limits.MemoryBytes, sb.Ephemeral = r.owner, r.state, r.mem, r.ephemeral
		if err := s.PutSandbox(ctx, sb); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		owner string
		want  SandboxCount
	}{
		{"key_a", SandboxCount{N: 4, MemoryBytes: 330 << 20, Ephemeral: 1, EphemeralMemoryBytes: 30 << 20}},
		{"key_b", SandboxCount{N: 1, MemoryBytes: 50 << 20}},
		{"", SandboxCount{N: 1, MemoryBytes: 1 << 30}},
		{"key_none", SandboxCount{}},
	}
	for _, tt := range tests {
		t.Run("owner "+strconv.Quote(tt.owner), func(t *testing.T) {
			t.Parallel()
			c, err := s.CountSandboxes(ctx, tt.owner)
			if err != nil {
				t.Fatal(err)
			}
			if c != tt.want {
				t.Errorf("got %+v; want %+v", c, tt.want)
			}
		})
	}
	t.Run("deleting frees quota", func(t *testing.T) {
		s, _ := openTestStore(t)
		sb := newSandbox("sb_q", now)
		sb.Owner, sb.Limits.MemoryBytes = "key_q", 64<<20
		if err := s.PutSandbox(ctx, sb); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteSandbox(ctx, "sb_q", ""); err != nil {
			t.Fatal(err)
		}
		c, err := s.CountSandboxes(ctx, "key_q")
		if err != nil || c != (SandboxCount{}) {
			t.Errorf("after delete: %+v, %v; want none", c, err)
		}
	})
}

func TestTouchSandbox(t *testing.T) {
	t.Parallel()
	s, _ := openTestStore(t)
	ctx := t.Context()
	t0 := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	if err := s.PutSandbox(ctx, newSandbox("sb_touch", t0)); err != nil {
		t.Fatal(err)
	}
	never := newSandbox("sb_never", t0)
	never.LastActiveAt = time.Time{}
	if err := s.PutSandbox(ctx, never); err != nil {
		t.Fatal(err)
	}
	// The steps run in order: each builds on the last.
	steps := []struct {
		name string
		id   string
		at   time.Time
		want time.Time
		code cove.Code
	}{
		{"forward", "sb_touch", t0.Add(time.Minute), t0.Add(time.Minute), ""},
		{"backward is ignored", "sb_touch", t0.Add(time.Second), t0.Add(time.Minute), ""},
		{"same time", "sb_touch", t0.Add(time.Minute), t0.Add(time.Minute), ""},
		{"first activity", "sb_never", t0.Add(time.Hour), t0.Add(time.Hour), ""},
		{"missing", "sb_missing", t0, time.Time{}, cove.CodeNotFound},
		{"zero time", "sb_touch", time.Time{}, time.Time{}, cove.CodeInvalid},
	}
	for _, tt := range steps {
		t.Run(tt.name, func(t *testing.T) {
			err := s.TouchSandbox(ctx, tt.id, tt.at)
			if tt.code != "" {
				wantCode(t, err, tt.code)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.GetSandbox(ctx, tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if !got.LastActiveAt.Equal(tt.want) {
				t.Errorf("last active %v, want %v", got.LastActiveAt, tt.want)
			}
		})
	}
}

func TestAllSandboxIDs(t *testing.T) {
	t.Parallel()
	s, _ := openTestStore(t)
	ctx := t.Context()
	got, err := s.AllSandboxIDs(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty store: %v, %v", got, err)
	}
	listFixture(t, s)
	if err := s.DeleteSandbox(ctx, "a2", ""); err != nil {
		t.Fatal(err)
	}
	got, err = s.AllSandboxIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"a1": true, "a3": true, "b1": true, "b2": true, "l1": true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func BenchmarkPutGetSandbox(b *testing.B) {
	s, _ := openTestStore(b)
	ctx := b.Context()
	r := fullSandbox()
	created := r.CreatedAt
	i := 0
	for b.Loop() {
		r.ID = "sb_" + strconv.Itoa(i)
		r.CreatedAt = created.Add(time.Duration(i))
		i++
		if err := s.PutSandbox(ctx, r); err != nil {
			b.Fatal(err)
		}
		if _, err := s.GetSandbox(ctx, r.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDeletedSandboxesCapped checks that a key's remembered deletions are
// bounded, the newest kept, and other keys' untouched.
func TestDeletedSandboxesCapped(t *testing.T) {
	t.Parallel()
	s, _ := openTestStore(t)
	ctx := t.Context()
	del := func(id, owner string) {
		t.Helper()
		r := newSandbox(id, time.Now())
		r.Owner = owner
		if err := s.PutSandbox(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteSandbox(ctx, id, "on request"); err != nil {
			t.Fatal(err)
		}
	}
	del("other", "key_b")
	for i := range MaxDeletedPerOwner + 5 {
		del(fmt.Sprintf("sb%05d", i), "key_a")
	}
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM deleted_sandboxes WHERE owner = 'key_a'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != MaxDeletedPerOwner {
		t.Fatalf("%d deletions remembered of one key, want %d", n, MaxDeletedPerOwner)
	}
	for _, id := range []string{"sb00000", "sb00004"} {
		if _, err := s.DeletedSandbox(ctx, id); cove.ErrorCode(err) != cove.CodeNotFound {
			t.Errorf("the oldest deletion %s: %v, want forgotten", id, err)
		}
	}
	for _, id := range []string{"sb00005", fmt.Sprintf("sb%05d", MaxDeletedPerOwner+4), "other"} {
		if _, err := s.DeletedSandbox(ctx, id); err != nil {
			t.Errorf("deletion %s: %v, want remembered", id, err)
		}
	}
}
