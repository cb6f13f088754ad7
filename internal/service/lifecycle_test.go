package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/runtime/native/nativetest"
	"github.com/cove-sandbox/cove/internal/store"
)

func collect(t *testing.T, st cove.Stream, err error) *cove.ExecResult {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	res, err := cove.Collect(st)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func sh(t *testing.T, svc *Service, ctx context.Context, id, line string) *cove.ExecResult {
	t.Helper()
	st, err := svc.Exec(ctx, id, cove.ExecRequest{Shell: line})
	return collect(t, st, err)
}

// newStoredService is a service whose records live in a real SQLite file.
func newStoredService(t *testing.T, opts Options) (*Service, string) {
	t.Helper()
	be, _ := nativetest.New(t)
	path := filepath.Join(t.TempDir(), "cove.db")
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	opts.Records = st
	svc := New(be, opts)
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		svc.Close(context.Background())
		st.Close()
	})
	return svc, path
}

func TestStopStartKeepsFiles(t *testing.T) {
	svc, _ := newStoredService(t, Options{})
	ctx := context.Background()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Language: "python"})
	if err != nil {
		t.Fatal(err)
	}
	if r := sh(t, svc, ctx, sb.ID, "mkdir -p data && echo kept > data/f; sleep 1000 &"); r.Verdict != cove.VerdictOK {
		t.Fatalf("%+v", r)
	}
	got, err := svc.StopSandbox(ctx, sb.ID)
	if err != nil || got.State != cove.StateStopped {
		t.Fatalf("stop: %+v %v", got, err)
	}
	if _, err := svc.Exec(ctx, sb.ID, cove.ExecRequest{Shell: "true"}); cove.ErrorCode(err) != cove.CodeConflict {
		t.Fatalf("exec in a stopped sandbox: %v, want conflict", err)
	}
	if got, err = svc.StartSandbox(ctx, sb.ID); err != nil || got.State != cove.StateRunning {
		t.Fatalf("start: %+v %v", got, err)
	}
	r := sh(t, svc, ctx, sb.ID, "cat data/f; stat -c %u data/f; touch data/new && echo writable")
	if r.Stdout != "kept\n1000\nwritable\n" {
		t.Fatalf("after restart: %q %q", r.Stdout, r.Stderr)
	}
	if _, err := svc.StartSandbox(ctx, sb.ID); err != nil {
		t.Fatalf("starting a running sandbox: %v", err)
	}
}

func TestKeysOwnershipAndQuotas(t *testing.T) {
	svc, _ := newStoredService(t, Options{})
	ctx := context.Background()
	a, err := svc.CreateKey(ctx, cove.KeySpec{Name: "a", Quota: cove.Quota{MaxSandboxes: 3, MaxConcurrentExecs: 1}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := svc.CreateKey(ctx, cove.KeySpec{Name: "b"})
	if err != nil {
		t.Fatal(err)
	}
	ka, err := svc.Authenticate(ctx, a.Secret)
	if err != nil || ka.ID != a.ID {
		t.Fatalf("authenticate: %+v %v", ka, err)
	}
	if _, err := svc.Authenticate(ctx, "cove_wrong"); cove.ErrorCode(err) != cove.CodeUnauthorized {
		t.Fatalf("wrong key: %v", err)
	}
	ctxA, ctxB := cove.WithKey(ctx, ka), cove.WithKey(ctx, &b.Key)

	t.Run("quota_race", func(t *testing.T) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, over := 0, 0
		for i := 0; i < 10; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := svc.CreateSandbox(ctxA, cove.SandboxSpec{})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case cove.ErrorCode(err) == cove.CodeQuotaExceeded:
					over++
				default:
					t.Errorf("create: %v", err)
				}
			}()
		}
		wg.Wait()
		if ok != 3 || over != 7 {
			t.Fatalf("%d admitted and %d refused, want exactly 3 and 7", ok, over)
		}
	})
	list, err := svc.ListSandboxes(ctxA, cove.ListOptions{})
	if err != nil || len(list.Sandboxes) != 3 {
		t.Fatalf("a's list: %v %v", list, err)
	}
	id := list.Sandboxes[0].ID

	t.Run("other_keys_get_not_found", func(t *testing.T) {
		if l, _ := svc.ListSandboxes(ctxB, cove.ListOptions{}); len(l.Sandboxes) != 0 {
			t.Fatalf("b sees %d of a's sandboxes", len(l.Sandboxes))
		}
		_, err1 := svc.GetSandbox(ctxB, id)
		_, err2 := svc.Exec(ctxB, id, cove.ExecRequest{Shell: "true"})
		err3 := svc.DeleteSandbox(ctxB, id)
		_, err4 := svc.ListFiles(ctxB, id, ".", false)
		_, err5 := svc.StopSandbox(ctxB, id)
		// The answer is the one for a sandbox that does not exist, so
		// that another key cannot tell whether an id is in use.
		const missing = "000000000000"
		_, want := svc.GetSandbox(ctxB, missing)
		for i, err := range []error{err1, err2, err3, err4, err5} {
			if !errors.Is(err, &cove.Error{Code: cove.CodeNotFound}) {
				t.Errorf("call %d as another key: %v, want not_found", i+1, err)
			}
			if want == nil || err == nil || strings.ReplaceAll(want.Error(), missing, id) != err.Error() {
				t.Errorf("call %d as another key: %q, unlike the answer for a missing sandbox, %q", i+1, err, want)
			}
		}
		if _, err := svc.GetSandbox(ctx, id); err != nil {
			t.Fatalf("the admin sees every sandbox: %v", err)
		}
	})

	t.Run("concurrent_exec_quota", func(t *testing.T) {
		st, err := svc.Exec(ctxA, id, cove.ExecRequest{Shell: "sleep 2"})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if _, err := svc.Exec(ctxA, id, cove.ExecRequest{Shell: "true"}); cove.ErrorCode(err) != cove.CodeQuotaExceeded {
			t.Fatalf("second concurrent exec: %v, want quota_exceeded", err)
		}
	})

	t.Run("keys_are_admin_only", func(t *testing.T) {
		// Bob's key is valid: it is forbidden, not unauthorized.
		if _, err := svc.CreateKey(ctxB, cove.KeySpec{}); cove.ErrorCode(err) != cove.CodeForbidden {
			t.Fatalf("non-admin creating a key: %v, want forbidden", err)
		}
		if _, err := svc.ListKeys(ctxB); cove.ErrorCode(err) != cove.CodeForbidden {
			t.Fatalf("non-admin listing keys: %v, want forbidden", err)
		}
		if err := svc.RevokeKey(ctxB, b.ID); cove.ErrorCode(err) != cove.CodeForbidden {
			t.Fatalf("non-admin revoking a key: %v, want forbidden", err)
		}
		if err := svc.RevokeKey(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Authenticate(ctx, b.Secret); cove.ErrorCode(err) != cove.CodeUnauthorized {
			t.Fatalf("revoked key: %v", err)
		}
	})
}

func TestIdleTimeoutAndTTL(t *testing.T) {
	svc, _ := newStoredService(t, Options{ReapInterval: 100 * time.Millisecond})
	ctx := context.Background()
	idle, err := svc.CreateSandbox(ctx, cove.SandboxSpec{IdleTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	busy, err := svc.CreateSandbox(ctx, cove.SandboxSpec{IdleTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.StartProcess(ctx, busy.ID, cove.ProcessRequest{Shell: "sleep 30"}); err != nil {
		t.Fatal(err)
	}
	short, err := svc.CreateSandbox(ctx, cove.SandboxSpec{TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	if got, _ := svc.GetSandbox(ctx, idle.ID); got == nil || got.State != cove.StateStopped {
		t.Fatalf("idle sandbox: %+v, want stopped", got)
	}
	if got, _ := svc.GetSandbox(ctx, busy.ID); got == nil || got.State != cove.StateRunning {
		t.Fatalf("a sandbox running a process counts as active: %+v", got)
	}
	// Its owner is told why it is gone; another key, that it is not
	// found, in the words of an id never used.
	_, err = svc.GetSandbox(ctx, short.ID)
	if cove.ErrorCode(err) != cove.CodeNotFound || !regexp.MustCompile(`^sandbox "[0-9a-f]+" is gone: its TTL \(1s\) ended (just now|\d+s ago)$`).MatchString(cove.ErrorMessage(err)) {
		t.Fatalf("sandbox past its TTL: %v, want not_found saying its TTL ended", err)
	}
	if !errors.Is(err, &cove.Error{Code: cove.CodeNotFound, Reason: cove.ReasonSandboxGone}) {
		t.Errorf("sandbox past its TTL: reason %q, want %q", cove.ErrorReason(err), cove.ReasonSandboxGone)
	}
	other := cove.WithKey(ctx, &cove.Key{ID: "someone-else"})
	_, err = svc.GetSandbox(other, short.ID)
	if want := fmt.Sprintf("sandbox %q not found", short.ID); cove.ErrorCode(err) != cove.CodeNotFound || cove.ErrorMessage(err) != want || cove.ErrorReason(err) != "" {
		t.Fatalf("another key asking for the sandbox past its TTL: %v, want %q", err, want)
	}
	if err := svc.DeleteSandbox(ctx, idle.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Exec(ctx, idle.ID, cove.ExecRequest{Shell: "true"}); cove.ErrorCode(err) != cove.CodeNotFound || !strings.Contains(cove.ErrorMessage(err), "is gone: it was deleted on request") {
		t.Fatalf("exec in a deleted sandbox: %v", err)
	}
}

func TestRestartComesBackStopped(t *testing.T) {
	be, _ := nativetest.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cove.db")
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	svc := New(be, Options{Records: st})
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Labels: map[string]string{"app": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	sh(t, svc, ctx, sb.ID, "echo survived > f")
	if err := svc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// The record a one-request run leaves when cove dies during it.
	now := time.Now()
	if err := st.PutSandbox(ctx, &store.SandboxRecord{ID: "0123456789ab", State: cove.StateRunning, Limits: cove.DefaultLimits(), CreatedAt: now, LastActiveAt: now, Ephemeral: true}); err != nil {
		t.Fatal(err)
	}
	// And one of a sandbox that ran when cove died.
	if err := st.PutSandbox(ctx, &store.SandboxRecord{ID: "ba9876543210", State: cove.StateRunning, Limits: cove.DefaultLimits(), CreatedAt: now, LastActiveAt: now}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	st2, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	svc2 := New(be, Options{Records: st2})
	if err := svc2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer svc2.Close(ctx)
	got, err := svc2.GetSandbox(ctx, sb.ID)
	if err != nil || got.State != cove.StateStopped || got.Labels["app"] != "x" {
		t.Fatalf("after restart: %+v %v", got, err)
	}
	if got, err := svc2.GetSandbox(ctx, "0123456789ab"); cove.ErrorCode(err) != cove.CodeNotFound {
		t.Fatalf("the one-request sandbox of the earlier run: %+v %v, want not_found", got, err)
	}
	// Work sent to them is told why they stopped, which their records
	// keep across the restart.
	for id, why := range map[string]string{sb.ID: "cove shut down", "ba9876543210": "cove ended while it ran"} {
		_, err = svc2.Exec(ctx, id, cove.ExecRequest{Shell: "true"})
		if want := "sandbox " + id + " is stopped (" + why + "): start it first"; cove.ErrorCode(err) != cove.CodeConflict || cove.ErrorMessage(err) != want {
			t.Errorf("exec after the restart: %v, want %q", err, want)
		}
	}
	if _, err := svc2.StartSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	if r := sh(t, svc2, ctx, sb.ID, "cat f"); r.Stdout != "survived\n" {
		t.Fatalf("got %q", r.Stdout)
	}
}

func TestShutdownDrains(t *testing.T) {
	svc, _ := newStoredService(t, Options{})
	ctx := context.Background()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{})
	if err != nil {
		t.Fatal(err)
	}
	quick, err := svc.Exec(ctx, sb.ID, cove.ExecRequest{Shell: "sleep 0.5; echo finished"})
	if err != nil {
		t.Fatal(err)
	}
	slow, err := svc.Exec(ctx, sb.ID, cove.ExecRequest{Shell: "sleep 100"})
	if err != nil {
		t.Fatal(err)
	}
	results := make(chan *cove.ExecResult, 2)
	for _, st := range []cove.Stream{quick, slow} {
		go func(st cove.Stream) {
			r, _ := cove.Collect(st)
			results <- r
		}(st)
	}
	dctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	svc.Shutdown(dctx)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
	var verdicts []cove.Verdict
	for i := 0; i < 2; i++ {
		r := <-results
		if r == nil {
			t.Fatal("an execution ended without a result")
		}
		verdicts = append(verdicts, r.Verdict)
	}
	if !(contains(verdicts, cove.VerdictOK) && contains(verdicts, cove.VerdictKilled)) {
		t.Fatalf("verdicts %v, want one ok (drained) and one killed (past the deadline)", verdicts)
	}
	if _, err := svc.CreateSandbox(ctx, cove.SandboxSpec{}); cove.ErrorCode(err) != cove.CodeUnavailable {
		t.Fatalf("create after shutdown: %v", err)
	}
	if got, _ := svc.GetSandbox(ctx, sb.ID); got.State != cove.StateStopped {
		t.Fatalf("state after shutdown: %s", got.State)
	}
}

func contains[T comparable](xs []T, x T) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func TestWarmPool(t *testing.T) {
	svc, _ := newStoredService(t, Options{PoolSize: 2})
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for svc.PoolReady() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the pool has %d sandboxes after 10s", svc.PoolReady())
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Millisecond {
		t.Logf("create from the pool took %v", d)
	}
	if r := sh(t, svc, ctx, sb.ID, "echo pooled"); r.Stdout != "pooled\n" {
		t.Fatalf("got %q", r.Stdout)
	}
	// A sandbox of another shape is not taken from the pool.
	if _, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Limits: cove.Limits{MemoryBytes: 64 << 20}}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for svc.PoolReady() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the pool did not refill: %d", svc.PoolReady())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWarmPoolWaitsForRun checks that the pool's refill waits until the
// one-call run that took a sandbox from it has ended, and then refills.
func TestWarmPoolWaitsForRun(t *testing.T) {
	svc, _ := newStoredService(t, Options{PoolSize: 1})
	svc.pool.wait = time.Minute
	ctx := context.Background()
	waitPool := func(what string, n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for svc.PoolReady() != n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the pool has %d sandboxes after 10s, want %d", what, svc.PoolReady(), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitPool("at start", 1)
	pr, pw := io.Pipe()
	st, err := svc.Run(ctx, cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "bash", Code: "read x; echo $x", StdinReader: pr}})
	if err != nil {
		t.Fatal(err)
	}
	if n := svc.PoolReady(); n != 0 {
		t.Fatalf("the run did not take the pooled sandbox: the pool has %d", n)
	}
	time.Sleep(300 * time.Millisecond)
	if n := svc.PoolReady(); n != 0 {
		t.Fatalf("the pool refilled while the run was in progress: %d", n)
	}
	io.WriteString(pw, "finished\n")
	pw.Close()
	res, err := cove.Collect(st)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "finished\n" {
		t.Fatalf("got %q (%s)", res.Stdout, res.Verdict)
	}
	waitPool("after the run", 1)
}

// TestLastAdminKeyStays checks that the last admin key cannot be revoked,
// even by the in-process administrator, which has no key of its own.
func TestLastAdminKeyStays(t *testing.T) {
	svc, _ := newTestService(t)
	ctx := context.Background()
	if err := svc.EnsureAdminKey(ctx, "0123456789abcdef0123"); err != nil {
		t.Fatal(err)
	}
	err := svc.RevokeKey(ctx, "admin")
	if cove.ErrorCode(err) != cove.CodeConflict || !strings.Contains(err.Error(), "last admin key") {
		t.Fatalf("revoking the last admin key: %v", err)
	}
	other, err := svc.CreateKey(ctx, cove.KeySpec{Name: "other", Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.RevokeKey(ctx, "admin"); err != nil {
		t.Fatalf("revoking one of two admin keys: %v", err)
	}
	if err := svc.RevokeKey(ctx, other.ID); cove.ErrorCode(err) != cove.CodeConflict {
		t.Fatalf("revoking the admin key left: %v", err)
	}
	// Other keys come and go as before.
	k, err := svc.CreateKey(ctx, cove.KeySpec{Name: "user"})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.RevokeKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
}

// TestProgramFilesSurviveRestart checks that cove still knows the program
// file it wrote for a code run after the sandbox stopped and started again
// (as after a server restart): the next run replaces it without a conflict,
// while a file the user changed since stays the user's.
func TestProgramFilesSurviveRestart(t *testing.T) {
	svc, _ := newStoredService(t, Options{})
	ctx := context.Background()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Language: "python"})
	if err != nil {
		t.Fatal(err)
	}
	code := func(src string) (*cove.ExecResult, error) {
		st, err := svc.RunCode(ctx, sb.ID, cove.CodeRequest{Code: src})
		if err != nil {
			return nil, err
		}
		return cove.Collect(st)
	}
	restart := func() {
		if _, err := svc.StopSandbox(ctx, sb.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.StartSandbox(ctx, sb.ID); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := code("print(1)"); err != nil || res.Stdout != "1\n" {
		t.Fatalf("first run: %+v %v", res, err)
	}
	restart()
	if res, err := code("print(22)"); err != nil || res.Stdout != "22\n" {
		t.Fatalf("a run after a restart over cove's own main.py: %+v %v", res, err)
	}
	sh(t, svc, ctx, sb.ID, "echo 'print(\"mine\")' > main.py")
	restart()
	if _, err := code("print(3)"); cove.ErrorCode(err) != cove.CodeConflict {
		t.Fatalf("a run over main.py the user changed: %v, want a conflict", err)
	}
}

// TestLostWorkspace checks what a sandbox whose workspace was removed
// while cove was down comes to: starting it says that its files are gone
// and what to do, it then shows as error (across a restart of cove too),
// and deleting it works.
func TestLostWorkspace(t *testing.T) {
	be, dirs := nativetest.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cove.db")
	open := func() (*Service, func()) {
		t.Helper()
		st, err := store.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		svc := New(be, Options{Records: st})
		if err := svc.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return svc, func() { svc.Close(ctx); st.Close() }
	}
	svc, closeSvc := open()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Language: "bash"})
	if err != nil {
		t.Fatal(err)
	}
	sh(t, svc, ctx, sb.ID, "echo lost > f")
	if err := svc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	closeSvc()
	ws := ""
	filepath.WalkDir(dirs.Data, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == sb.ID {
			ws = p
			return filepath.SkipAll
		}
		return nil
	})
	if ws == "" {
		t.Fatalf("no workspace directory named %s under %s", sb.ID, dirs.Data)
	}
	if err := os.RemoveAll(ws); err != nil {
		t.Fatal(err)
	}

	svc, closeSvc = open()
	_, err = svc.StartSandbox(ctx, sb.ID)
	if cove.ErrorCode(err) != cove.CodeConflict || !strings.Contains(cove.ErrorMessage(err), "its workspace is gone") || !strings.Contains(cove.ErrorMessage(err), "delete the sandbox") {
		t.Fatalf("starting a sandbox whose workspace is gone: %v, want conflict saying so and what to do", err)
	}
	if got, err := svc.GetSandbox(ctx, sb.ID); err != nil || got.State != cove.StateError {
		t.Fatalf("after the failed start: %+v %v, want state error", got, err)
	}
	if _, err := svc.Exec(ctx, sb.ID, cove.ExecRequest{Shell: "true"}); cove.ErrorCode(err) != cove.CodeConflict || !strings.Contains(cove.ErrorMessage(err), "could not start") {
		t.Fatalf("exec in it: %v", err)
	}
	closeSvc()

	svc, closeSvc = open()
	defer closeSvc()
	if got, err := svc.GetSandbox(ctx, sb.ID); err != nil || got.State != cove.StateError {
		t.Fatalf("after a restart of cove: %+v %v, want state error still", got, err)
	}
	if list, err := svc.ListSandboxes(ctx, cove.ListOptions{State: cove.StateError}); err != nil || len(list.Sandboxes) != 1 {
		t.Fatalf("listing state=error: %+v %v", list, err)
	}
	if err := svc.DeleteSandbox(ctx, sb.ID); err != nil {
		t.Fatalf("deleting it: %v", err)
	}
	if _, err := svc.GetSandbox(ctx, sb.ID); cove.ErrorCode(err) != cove.CodeNotFound {
		t.Fatalf("after deleting it: %v", err)
	}
}
