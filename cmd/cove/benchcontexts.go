package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cove-sandbox/cove"
)

// benchContexts measures stateful contexts: a trivial cell through the
// in-process service and through the REST API, interleaved, against a
// fresh interpreter process started in the same sandbox; and what an idle
// context of each language costs in memory.
func benchContexts(ctx context.Context, b *benchServer, runs int) error {
	out := b.out
	sb, err := b.svc.CreateSandbox(ctx, cove.SandboxSpec{})
	if err != nil {
		return err
	}
	defer b.svc.DeleteSandbox(context.WithoutCancel(ctx), sb.ID)
	c, err := b.svc.CreateContext(ctx, sb.ID, cove.ContextSpec{Language: "python"})
	if err != nil {
		return err
	}
	if err := runCellOK(ctx, b.svc, sb.ID, c.ID, "x = 1"); err != nil {
		return err
	}
	timed := func(f func() error) (time.Duration, error) {
		t := time.Now()
		err := f()
		return time.Since(t), err
	}
	var local, remote, fresh []time.Duration
	for i := 0; i < runs+2; i++ {
		dl, err := timed(func() error { return runCellOK(ctx, b.svc, sb.ID, c.ID, "x + 1") })
		if err != nil {
			return err
		}
		dr, err := timed(func() error { return runCellOK(ctx, b.client, sb.ID, c.ID, "x + 1") })
		if err != nil {
			return err
		}
		df, err := timed(func() error {
			st, err := b.svc.Exec(ctx, sb.ID, cove.ExecRequest{Cmd: []string{"python3", "-c", "x = 1; print(x + 1)"}})
			if err != nil {
				return err
			}
			res, err := cove.Collect(st)
			if err == nil && res.Verdict != cove.VerdictOK {
				err = fmt.Errorf("python3: %s", res.Verdict)
			}
			return err
		})
		if err != nil {
			return err
		}
		if i >= 2 {
			local, remote, fresh = append(local, dl), append(remote, dr), append(fresh, df)
		}
	}
	fmt.Fprintf(out, "python context, cell `x + 1` (%d rounds, interleaved)\n", runs)
	fmt.Fprintf(out, "  in-process p50 %.2f ms, REST p50 %.2f ms; a fresh python3 process in the same sandbox p50 %.2f ms\n\n", ms(p50(local)), ms(p50(remote)), ms(p50(fresh)))

	for _, language := range []string{"python", "javascript"} {
		pss, rss, err := idleContextMemory(ctx, b.svc, language, 4)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "an idle %s context: %.1f MiB proportional set size (%.1f MiB resident)\n", language, pss, rss)
	}
	fmt.Fprintln(out)
	return nil
}

func runCellOK(ctx context.Context, svc cove.Service, id, cid, code string) error {
	st, err := svc.RunCell(ctx, id, cid, cove.CellRequest{Code: code})
	if err != nil {
		return err
	}
	run, err := cove.CollectCell(st)
	if err == nil && run.Verdict != cove.VerdictOK {
		err = fmt.Errorf("cell %q: %s %s", code, run.Verdict, run.Message)
	}
	return err
}

// idleContextMemory starts n idle contexts in a new sandbox and returns
// the average proportional and resident set size of their interpreters,
// in MiB, read from /proc inside the sandbox.
func idleContextMemory(ctx context.Context, svc cove.Service, language string, n int) (pss, rss float64, err error) {
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{})
	if err != nil {
		return 0, 0, err
	}
	defer svc.DeleteSandbox(context.WithoutCancel(ctx), sb.ID)
	for range n {
		c, err := svc.CreateContext(ctx, sb.ID, cove.ContextSpec{Language: language})
		if err != nil {
			return 0, 0, err
		}
		if err := runCellOK(ctx, svc, sb.ID, c.ID, "1"); err != nil {
			return 0, 0, err
		}
	}
	comm := map[string]string{"python": "python3", "javascript": "node"}[language]
	script := `for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = "` + comm + `" ] && awk '/^Pss:/{p=$2} /^Rss:/{r=$2} END{print p, r}' $p/smaps_rollup; done`
	st, err := svc.Exec(ctx, sb.ID, cove.ExecRequest{Shell: script})
	if err != nil {
		return 0, 0, err
	}
	res, err := cove.Collect(st)
	if err != nil {
		return 0, 0, err
	}
	var sumP, sumR float64
	lines := strings.Fields(res.Stdout)
	if len(lines) != 2*n {
		return 0, 0, fmt.Errorf("expected %d %s interpreters in the sandbox, found %d (%q)", n, language, len(lines)/2, res.Stderr)
	}
	for i := 0; i < len(lines); i += 2 {
		p, _ := strconv.ParseFloat(lines[i], 64)
		r, _ := strconv.ParseFloat(lines[i+1], 64)
		sumP, sumR = sumP+p, sumR+r
	}
	return sumP / float64(n) / 1024, sumR / float64(n) / 1024, nil
}
