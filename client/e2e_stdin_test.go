package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
)

// nextOutput returns the next line of st's stdout, failing on any other
// event.
func nextOutput(t *testing.T, st cove.Stream) string {
	t.Helper()
	var out string
	for !strings.HasSuffix(out, "\n") {
		ev, err := st.Next()
		if err != nil || ev.Type != cove.EventStdout {
			t.Fatalf("event %+v, %v after stdout %q; want stdout", ev, err, out)
		}
		out += string(ev.Data)
	}
	return out
}

// TestStreamedStdin checks that a StdinReader streams to the program over
// HTTP while its output streams back.
func TestStreamedStdin(t *testing.T) {
	e := newEnv(t)
	sb := e.sandbox(e.admin, cove.SandboxSpec{Language: "python"})
	echo := "import sys\nfor l in sys.stdin: print('got', l.strip(), flush=True)"

	t.Run("interactive", func(t *testing.T) {
		t.Parallel()
		pr, pw := io.Pipe()
		defer pw.Close()
		st, err := e.admin.Exec(ctxT(t), sb.ID, cove.ExecRequest{Cmd: []string{"python3", "-u", "-c", echo}, StdinReader: pr})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		// Each line is written only once the answer to the previous one
		// has come: buffered stdin would never get an answer.
		for _, l := range []string{"one", "two", "three"} {
			if _, err := io.WriteString(pw, l+"\n"); err != nil {
				t.Fatal(err)
			}
			if got := nextOutput(t, st); got != "got "+l+"\n" {
				t.Fatalf("got %q after writing %q", got, l)
			}
		}
		pw.Close()
		ev, err := st.Next()
		if err != nil || ev.Type != cove.EventExit || ev.Result.Verdict != cove.VerdictOK {
			t.Fatalf("after the end of stdin: %+v, %v", ev, err)
		}
	})

	t.Run("code and run", func(t *testing.T) {
		t.Parallel()
		pr, pw := io.Pipe()
		st, err := e.admin.RunCode(ctxT(t), sb.ID, cove.CodeRequest{Code: echo, StdinReader: pr})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		io.WriteString(pw, "a\n")
		if got := nextOutput(t, st); got != "got a\n" {
			t.Fatalf("code: %q", got)
		}
		pw.Close()
		if res, err := cove.Collect(st); err != nil || res.Verdict != cove.VerdictOK {
			t.Fatalf("code: %+v, %v", res, err)
		}

		pr, pw = io.Pipe()
		st, err = e.admin.Run(ctxT(t), cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "python", Code: echo, StdinReader: pr}})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		io.WriteString(pw, "b\n")
		if got := nextOutput(t, st); got != "got b\n" {
			t.Fatalf("run: %q", got)
		}
		pw.Close()
		if res, err := cove.Collect(st); err != nil || res.Verdict != cove.VerdictOK {
			t.Fatalf("run: %+v, %v", res, err)
		}
	})

	t.Run("5 MiB", func(t *testing.T) {
		t.Parallel()
		const n = 5 << 20
		// A reader whose length net/http cannot tell.
		in := io.MultiReader(bytes.NewReader(bytes.Repeat([]byte("0123456789abcde\n"), n/16)))
		res := collect(t)(e.admin.Exec(ctxT(t), sb.ID, cove.ExecRequest{Cmd: []string{"wc", "-c"}, StdinReader: in}))
		if strings.TrimSpace(res.Stdout) != "5242880" || res.Verdict != cove.VerdictOK {
			t.Fatalf("result %+v", res)
		}
	})

	t.Run("empty", func(t *testing.T) {
		t.Parallel()
		res := collect(t)(e.admin.Exec(ctxT(t), sb.ID, cove.ExecRequest{Cmd: []string{"wc", "-c"}, StdinReader: strings.NewReader("")}))
		if strings.TrimSpace(res.Stdout) != "0" || res.Verdict != cove.VerdictOK {
			t.Fatalf("result %+v", res)
		}
	})

	t.Run("reader fails", func(t *testing.T) {
		t.Parallel()
		in := io.MultiReader(strings.NewReader("x\n"), iotestErrReader{})
		_, err := cove.Collect(must(e.admin.Exec(ctxT(t), sb.ID, cove.ExecRequest{Shell: "cat; sleep 30", StdinReader: in})))
		if err == nil {
			t.Fatal("a failing StdinReader gave a result")
		}
	})

	t.Run("cancelled mid-stream", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(ctxT(t))
		defer cancel()
		pr, pw := io.Pipe()
		defer pw.Close()
		st, err := e.admin.Exec(ctx, sb.ID, cove.ExecRequest{
			Shell:       "read l; echo got $l; sleep 1.56; touch /workspace/m6; cat >/dev/null",
			StdinReader: pr,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		io.WriteString(pw, "x\n")
		if got := nextOutput(t, st); got != "got x\n" {
			t.Fatalf("got %q", got)
		}
		cancel()
		if _, err := st.Next(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Next after cancel: %v, want context.Canceled", err)
		}
		checkNoMarker(t, e, sb.ID, "m6", "1.56")
	})
}

// iotestErrReader fails every read.
type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("broken input") }

// TestSlowReaderGetsTheResultDespiteUnreadStdin: a program that ends
// without reading the standard input its caller is still sending, read by
// a caller slower than the server's close: the caller still gets the
// result (the server closing on a client that sends resets the
// connection, which can drop the end of the answer).
func TestSlowReaderGetsTheResultDespiteUnreadStdin(t *testing.T) {
	e := newEnv(t)
	sb := e.sandbox(e.admin, cove.SandboxSpec{})
	st, err := e.admin.Exec(ctxT(t), sb.ID, cove.ExecRequest{Shell: "echo done", StdinReader: endlessStdin(t)})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	res, err := cove.Collect(st)
	if err != nil || res.Stdout != "done\n" || res.Verdict != cove.VerdictOK {
		t.Fatalf("result %+v, %v", res, err)
	}
}

// endlessStdin is standard input that never ends, until the test does.
func endlessStdin(t *testing.T) io.Reader {
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	go func() {
		chunk := make([]byte, 64<<10)
		for {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
	}()
	return pr
}

// TestResultWithIdleStdinIsPrompt: a program that ends while its caller's
// standard input is open but idle (a terminal no one types in) gives its
// result at once: neither side waits for the other to end the request.
func TestResultWithIdleStdinIsPrompt(t *testing.T) {
	e := newEnv(t)
	sb := e.sandbox(e.admin, cove.SandboxSpec{})
	pr, pw := io.Pipe()
	defer pw.Close()
	start := time.Now()
	res, err := cove.Collect(must(e.admin.Exec(ctxT(t), sb.ID, cove.ExecRequest{Shell: "echo hi", StdinReader: pr})))
	if err != nil || res.Stdout != "hi\n" {
		t.Fatalf("result %+v, %v", res, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the result and the end of the stream took %v", d)
	}
}

// TestStdinReaderFreedAfterTheExecution: a StdinReader that supports read
// deadlines (an *os.File of a pipe) is no longer read once the execution's
// stream has ended: what the caller writes next is read by the caller (or
// the next execution), not eaten by the ended one, and the reader keeps
// no deadline.
func TestStdinReaderFreedAfterTheExecution(t *testing.T) {
	e := newEnv(t)
	sb := e.sandbox(e.admin, cove.SandboxSpec{})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	// The stream read to its end, and one closed after its exit event.
	for _, closeIt := range []bool{false, true} {
		st, err := e.admin.Exec(ctxT(t), sb.ID, cove.ExecRequest{Shell: "echo hi", StdinReader: r})
		if err != nil {
			t.Fatal(err)
		}
		var res *cove.ExecResult
		if closeIt {
			res, err = cove.Collect(st)
		} else {
			for {
				ev, nerr := st.Next()
				if errors.Is(nerr, io.EOF) {
					break
				}
				if nerr != nil {
					err = nerr
					break
				}
				if ev.Type == cove.EventExit {
					res = ev.Result
				}
			}
		}
		if err != nil || res == nil || res.Verdict != cove.VerdictOK {
			t.Fatalf("result %+v, %v", res, err)
		}
		if _, err := io.WriteString(w, "next\n"); err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 1)
		go func() {
			b := make([]byte, 16)
			n, err := r.Read(b)
			if err != nil {
				got <- "error: " + err.Error()
				return
			}
			got <- string(b[:n])
		}()
		select {
		case s := <-got:
			if s != "next\n" {
				t.Fatalf("the caller read %q after the execution (closed: %v)", s, closeIt)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the ended execution ate the caller's next input (closed: %v)", closeIt)
		}
	}
}
