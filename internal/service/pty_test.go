package service

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
)

// TestTerminalEndsWithItsSandbox: a terminal's program whose sandbox is
// stopped or deleted ends with a result (killed) that says why, as an
// execution does, and its output ends as it would: not with an error
// about its agent being gone.
func TestTerminalEndsWithItsSandbox(t *testing.T) {
	svc, _ := newStoredService(t, Options{})
	ctx := context.Background()
	for _, tc := range stopOrDelete(ctx, svc) {
		t.Run(tc.name, func(t *testing.T) {
			sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{})
			if err != nil {
				t.Fatal(err)
			}
			p, err := svc.OpenPTY(ctx, sb.ID, cove.PTYRequest{Cmd: []string{"sh", "-c", "echo started; exec sleep 30"}})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			var out strings.Builder
			buf := make([]byte, 4096)
			for !strings.Contains(out.String(), "started") {
				n, err := p.Read(buf)
				if err != nil {
					t.Fatalf("reading the terminal: %q, %v", out.String(), err)
				}
				out.Write(buf[:n])
			}
			got := make(chan outcome, 1)
			go func() {
				if _, err := io.Copy(io.Discard, p); err != nil {
					got <- outcome{nil, err}
					return
				}
				res, err := p.Wait()
				got <- outcome{res, err}
			}()
			if err := tc.end(sb.ID); err != nil {
				t.Fatal(err)
			}
			expectKilled(t, got, tc.want)
		})
	}
}

// TestTerminalResults: a terminal's program that runs out of memory, or
// cannot be started, is said to, as an execution is (exit status 127 for
// one that cannot start).
func TestTerminalResults(t *testing.T) {
	svc, _ := newStoredService(t, Options{})
	ctx := context.Background()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Limits: cove.Limits{MemoryBytes: 64 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		req     cove.PTYRequest
		verdict cove.Verdict
		code    int
		message string
	}{
		{"oom", cove.PTYRequest{Cmd: []string{"tail", "/dev/zero"}}, cove.VerdictOOMKilled, 137, "killed: out of memory (limit 64 MiB)"},
		{"not found", cove.PTYRequest{Cmd: []string{"nosuchcmd"}}, cove.VerdictSetupFailed, 127, "nosuchcmd: command not found"},
		{"missing directory", cove.PTYRequest{Cwd: "/nonexist"}, cove.VerdictSetupFailed, 127, "working directory /nonexist: no such directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := svc.OpenPTY(ctx, sb.ID, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			done := make(chan outcome, 1)
			go func() {
				io.Copy(io.Discard, p)
				res, err := p.Wait()
				done <- outcome{res, err}
			}()
			select {
			case o := <-done:
				if o.err != nil {
					t.Fatal(o.err)
				}
				if o.res.Verdict != tc.verdict || o.res.ExitCode != tc.code || o.res.Message != tc.message {
					t.Errorf("result: verdict %s, exit %d, message %q; want %s, %d, %q", o.res.Verdict, o.res.ExitCode, o.res.Message, tc.verdict, tc.code, tc.message)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the program did not end")
			}
		})
	}
}
