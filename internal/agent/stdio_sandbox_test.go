package agent_test

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/agent"
)

// collectExec reads an execution (or a process's logs) to its end: its
// standard output and error, and its result.
func collectExec(t *testing.T, ex *agent.Exec) (stdout, stderr string, res *agent.ExecResult) {
	t.Helper()
	defer ex.Close()
	var out, errOut bytes.Buffer
	for {
		o, err := ex.Next()
		if err == io.EOF {
			return out.String(), errOut.String(), res
		}
		if err != nil {
			t.Fatalf("reading the execution: %v", err)
		}
		switch {
		case o.Result != nil:
			res = o.Result
		case o.Stream == 2:
			errOut.Write(o.Data)
		default:
			out.Write(o.Data)
		}
	}
}

// TestProgramsReopenTheirStandardStreams: a program opens /dev/stdin,
// /dev/stdout and /dev/stderr again by name, as shells and many tools do,
// whether it runs as an execution (with or without standard input) or in
// the background: the pipes it was given are its user's. /dev/null, its
// standard input when it has none, is not given away.
func TestProgramsReopenTheirStandardStreams(t *testing.T) {
	c, ctx := newSandbox(t, "stdio", cove.DefaultLimits())
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	const script = `cat /dev/stdin; echo out >/dev/stdout; echo err >/dev/stderr; ` +
		`[ "$(stat -L -c %u /proc/$$/fd/1)" = "$(id -u)" ] && echo mine; ` +
		`[ "$(stat -c %u /dev/null)" != "$(id -u)" ] && echo "null not mine"`
	argv := []string{"/bin/sh", "-c", script}

	t.Run("exec with stdin", func(t *testing.T) {
		ex, err := c.Start(ctx, &agent.ExecSpec{Argv: argv, Env: env, Dir: "/workspace", TimeoutMS: 10000}, strings.NewReader("piped in\n"))
		if err != nil {
			t.Fatal(err)
		}
		out, errOut, res := collectExec(t, ex)
		if res == nil || res.ExitCode != 0 || out != "piped in\nout\nmine\nnull not mine\n" || errOut != "err\n" {
			t.Errorf("result %+v, stdout %q, stderr %q", res, out, errOut)
		}
	})

	t.Run("exec without stdin", func(t *testing.T) {
		ex, err := c.Start(ctx, &agent.ExecSpec{Argv: argv, Env: env, Dir: "/workspace", TimeoutMS: 10000}, nil)
		if err != nil {
			t.Fatal(err)
		}
		out, errOut, res := collectExec(t, ex)
		if res == nil || res.ExitCode != 0 || out != "out\nmine\nnull not mine\n" || errOut != "err\n" {
			t.Errorf("result %+v, stdout %q, stderr %q", res, out, errOut)
		}
	})

	t.Run("background process", func(t *testing.T) {
		p, err := c.Spawn(ctx, &agent.ExecSpec{Argv: argv, Env: env, Dir: "/workspace"}, "stdio")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.WriteStdin(ctx, p.PID, []byte("written in\n"), true); err != nil {
			t.Fatal(err)
		}
		info, err := c.Wait(ctx, p.PID)
		if err != nil {
			t.Fatal(err)
		}
		logs, err := c.Logs(ctx, p.PID, false)
		if err != nil {
			t.Fatal(err)
		}
		out, errOut, _ := collectExec(t, logs)
		if info.Result == nil || info.Result.ExitCode != 0 || out != "written in\nout\nmine\nnull not mine\n" || errOut != "err\n" {
			t.Errorf("result %+v, stdout %q, stderr %q", info.Result, out, errOut)
		}
	})
}
