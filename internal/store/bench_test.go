package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
)

// BenchmarkHotReads times the two reads every API request makes: the
// caller's key by the hash of its secret, and the sandbox's record.
func BenchmarkHotReads(b *testing.B) {
	ctx := context.Background()
	s, _ := openTestStore(b)
	hash := sha256.Sum256([]byte("secret"))
	now := time.Now().UTC()
	if err := s.PutKey(ctx, &KeyRecord{Key: cove.Key{ID: "k1", Name: "bench", CreatedAt: now}, Hash: hash[:]}); err != nil {
		b.Fatal(err)
	}
	if err := s.PutSandbox(ctx, &SandboxRecord{ID: "0123456789ab", State: cove.StateRunning, Limits: cove.DefaultLimits(), CreatedAt: now, LastActiveAt: now}); err != nil {
		b.Fatal(err)
	}
	b.Run("KeyByHash", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.KeyByHash(ctx, hash[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("GetSandbox", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.GetSandbox(ctx, "0123456789ab"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkListAll pages through 2,000 sandbox records, 100 at a time, as
// reading every record does.
func BenchmarkListAll(b *testing.B) {
	ctx := context.Background()
	s, _ := openTestStore(b)
	now := time.Now().UTC()
	for i := range 2000 {
		r := &SandboxRecord{ID: fmt.Sprintf("%012x", i), State: cove.StateStopped, Limits: cove.DefaultLimits(),
			Labels: map[string]string{"app": "x"}, CreatedAt: now, LastActiveAt: now}
		if err := s.PutSandbox(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		token, n := "", 0
		for {
			page, next, err := s.ListSandboxes(ctx, SandboxFilter{Limit: 100, PageToken: token})
			if err != nil {
				b.Fatal(err)
			}
			n += len(page)
			if next == "" {
				break
			}
			token = next
		}
		if n != 2000 {
			b.Fatalf("listed %d", n)
		}
	}
}
