package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/client"
	"github.com/cove-sandbox/cove/internal/httpapi"
	"github.com/cove-sandbox/cove/internal/runtime/native"
	"github.com/cove-sandbox/cove/internal/service"
	"github.com/prometheus/procfs"
)

// benchServer is an in-process cove server on a loopback port.
type benchServer struct {
	out    io.Writer
	url    string // the server's base URL
	key    string // its admin key
	svc    *service.Service
	be     *native.Backend
	client *client.Client
	srv    *http.Server
}

func startBenchServer(ctx context.Context, e *env, pool int) (*benchServer, error) {
	serverGC(e.getenv)
	be, err := native.New(ctx, e.nativeOptions(nil, true))
	if err != nil {
		return nil, err
	}
	// The sandboxes' lifetimes are cove serve's, so that the idle figures
	// include the reaper's work.
	svc := service.New(be, service.Options{Defaults: e.cfg.Limits, PoolSize: pool, RunReuse: e.cfg.RunReuse, IdleTimeout: e.cfg.IdleTimeout, TTL: e.cfg.TTL})
	if err := svc.Start(ctx); err != nil {
		return nil, err
	}
	secret := "cove_bench_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := svc.EnsureAdminKey(ctx, secret); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: httpapi.New(svc, httpapi.Options{Auth: svc}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	c, err := client.New("http://"+ln.Addr().String(), secret)
	if err != nil {
		return nil, err
	}
	return &benchServer{out: e.stdout, url: "http://" + ln.Addr().String(), key: secret, svc: svc, be: be, client: c, srv: srv}, nil
}

func (b *benchServer) close(ctx context.Context) {
	b.srv.Close()
	b.svc.Close(context.WithoutCancel(ctx))
	b.be.Close()
}

func p50(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// benchAPI measures the REST API's figures: its overhead on an exec, the
// one-call run throughput, creation from the warm pool, and the cost of
// idle sandboxes.
func benchAPI(ctx context.Context, e *env, runs int, idle int, seconds int, python string) error {
	out := e.stdout
	b, err := startBenchServer(ctx, e, e.cfg.PoolSize)
	if err != nil {
		return err
	}
	defer b.close(ctx)
	sb, err := b.svc.CreateSandbox(ctx, cove.SandboxSpec{})
	if err != nil {
		return err
	}
	execTrue := func(s cove.Service) (time.Duration, error) {
		t := time.Now()
		st, err := s.Exec(ctx, sb.ID, cove.ExecRequest{Cmd: []string{"true"}})
		if err != nil {
			return 0, err
		}
		res, err := cove.Collect(st)
		if err == nil && res.Verdict != cove.VerdictOK {
			err = fmt.Errorf("exec: %s", res.Verdict)
		}
		return time.Since(t), err
	}
	var local, remote []time.Duration
	for i := 0; i < runs+2; i++ {
		dl, err := execTrue(b.svc)
		if err != nil {
			return err
		}
		dr, err := execTrue(b.client)
		if err != nil {
			return err
		}
		if i >= 2 {
			local, remote = append(local, dl), append(remote, dr)
		}
	}
	fmt.Fprintf(out, "exec `true` in a live sandbox (%d rounds, interleaved)\n", runs)
	fmt.Fprintf(out, "  in-process p50 %.2f ms, REST p50 %.2f ms: API overhead %.2f ms\n\n", ms(p50(local)), ms(p50(remote)), ms(p50(remote)-p50(local)))

	if err := benchContexts(ctx, b, runs); err != nil {
		return fmt.Errorf("contexts: %w", err)
	}

	// Creation from the warm pool: wait for the pool to be full before
	// each measured create, as a server between requests would be.
	var creates []time.Duration
	for i := 0; i < runs; i++ {
		deadline := time.Now().Add(10 * time.Second)
		for b.svc.PoolReady() < e.cfg.PoolSize && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		t := time.Now()
		s, err := b.client.CreateSandbox(ctx, cove.SandboxSpec{})
		if err != nil {
			return err
		}
		creates = append(creates, time.Since(t))
		if err := b.client.DeleteSandbox(ctx, s.ID); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "POST /v1/sandboxes from the warm pool: p50 %.2f ms (%d creates)\n\n", ms(p50(creates)), runs)

	// One-call runs one at a time, each from a full pool, against the same
	// code run in a live sandbox through the API, interleaved.
	collect := func(st cove.Stream, err error) error {
		var res *cove.ExecResult
		if err == nil {
			res, err = cove.Collect(st)
		}
		if err == nil && (res.Verdict != cove.VerdictOK || res.Stdout != "1\n") {
			err = fmt.Errorf("python print(1): %s %q", res.Verdict, res.Stderr)
		}
		return err
	}
	live, err := b.client.CreateSandbox(ctx, cove.SandboxSpec{})
	if err != nil {
		return err
	}
	defer b.client.DeleteSandbox(ctx, live.ID)
	// Before each request the pool is full and the machine quiet again (a
	// one-call run's teardown and the pool's refill follow its answer).
	settle := func() {
		deadline := time.Now().Add(10 * time.Second)
		for b.svc.PoolReady() < e.cfg.PoolSize && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		time.Sleep(30 * time.Millisecond)
	}
	var oneCall, inSandbox []time.Duration
	for i := 0; i < runs; i++ {
		settle()
		t := time.Now()
		if err := collect(b.client.Run(ctx, cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "python", Code: "print(1)"}})); err != nil {
			return err
		}
		oneCall = append(oneCall, time.Since(t))
		settle()
		t = time.Now()
		if err := collect(b.client.RunCode(ctx, live.ID, cove.CodeRequest{Language: "python", Code: "print(1)"})); err != nil {
			return err
		}
		inSandbox = append(inSandbox, time.Since(t))
	}
	fmt.Fprintf(out, "POST /v1/run of python print(1), one at a time (run_reuse %d, warm pool %d): p50 %.2f ms\n", e.cfg.RunReuse, e.cfg.PoolSize, ms(p50(oneCall)))
	fmt.Fprintf(out, "  the same code run in a live sandbox (POST /v1/sandboxes/{id}/code): p50 %.2f ms (%d rounds, interleaved)\n\n", ms(p50(inSandbox)), runs)

	if err := benchRemoteRun(ctx, b, runs, python, settle); err != nil {
		return err
	}

	// Throughput of POST /v1/run at concurrency 4, between two halves of
	// the same measure for the bare interpreter: the machine's speed
	// varies by more than the differences worth knowing.
	half := time.Duration(seconds) * time.Second / 2
	bare1, err := concurrently(ctx, half, func() (int64, error) {
		return 0, exec.CommandContext(ctx, python, "-c", "print(1)").Run()
	})
	if err != nil {
		return fmt.Errorf("bare %s: %w", python, err)
	}
	oneRun := func() (int64, error) {
		st, err := b.client.Run(ctx, cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "python", Code: "print(1)"}})
		var res *cove.ExecResult
		if err == nil {
			res, err = cove.Collect(st)
		}
		if err == nil && (res.Verdict != cove.VerdictOK || res.Stdout != "1\n") {
			err = fmt.Errorf("run: %s %q", res.Verdict, res.Stderr)
		}
		if err != nil {
			return 0, err
		}
		return res.CPUMS, nil
	}
	// As configured (run_reuse), then with a new sandbox for every run.
	_, hits0, misses0 := b.svc.RunnersReady()
	api, err := concurrently(ctx, 2*half, oneRun)
	if err != nil {
		return err
	}
	_, hits1, misses1 := b.svc.RunnersReady()
	b.svc.SetRunReuse(0)
	fresh, err := concurrently(ctx, 2*half, oneRun)
	b.svc.SetRunReuse(e.cfg.RunReuse)
	if err != nil {
		return err
	}
	bare2, err := concurrently(ctx, half, func() (int64, error) {
		return 0, exec.CommandContext(ctx, python, "-c", "print(1)").Run()
	})
	if err != nil {
		return fmt.Errorf("bare %s: %w", python, err)
	}
	bare := bare1.add(bare2)
	report := func(what string, l load) {
		fmt.Fprintf(out, "POST /v1/run of python print(1) at concurrency 4, %s: %d runs in %.1f s = %.1f runs/s, %.0f%% of bare\n",
			what, l.n, l.elapsed.Seconds(), l.rate(), 100*l.rate()/bare.rate())
		if l.n > 0 && l.busy > 0 {
			perRun, prog := ms(l.busy)/float64(l.n), float64(l.extra)/float64(l.n)
			// The rest is what a sandbox costs: it varies less from day to
			// day than the program's own time does.
			fmt.Fprintf(out, "  machine CPU per run %.1f ms, of which the program's own %.1f ms and the rest (cove, the kernel's work for the sandbox, the client) %.1f ms\n", perRun, prog, perRun-prog)
		}
	}
	report(fmt.Sprintf("run_reuse %d", e.cfg.RunReuse), api)
	if e.cfg.RunReuse > 0 {
		fmt.Fprintf(out, "  %d runs got a sandbox reset after an earlier run, %d a new one\n", hits1-hits0, misses1-misses0)
	}
	report("run_reuse 0 (a new sandbox for every run)", fresh)
	fmt.Fprintf(out, "  bare %s -c 'print(1)' at concurrency 4, before and after: %.1f runs/s, machine CPU per run %.1f ms\n",
		python, bare.rate(), ms(bare.busy)/float64(max(bare.n, 1)))
	fmt.Fprintln(out)

	if idle > 0 {
		if err := benchIdle(ctx, b, idle); err != nil {
			return err
		}
	}
	return nil
}

// benchRemoteRun times the cove command's one-shot run against the server,
// as a user runs it with COVE_URL and COVE_API_KEY set, interleaved with
// the bare interpreter, and where its time goes.
func benchRemoteRun(ctx context.Context, b *benchServer, runs int, python string, settle func()) error {
	self, err := os.Executable()
	if err != nil {
		return cove.Errorf(cove.CodeInternal, "finding cove's own binary: %w", err)
	}
	env := []string{"PATH=/usr/bin:/bin"}
	steps := newBenchSteps(true)
	var bare, cmd []time.Duration
	for i := 0; i < runs+2; i++ {
		settle()
		t := time.Now()
		c := exec.CommandContext(ctx, python, "-c", "print(1)")
		c.Env = env
		if err := c.Run(); err != nil {
			return fmt.Errorf("%s: %w", python, err)
		}
		db := time.Since(t)
		settle()
		var stdout, stderr strings.Builder
		c = exec.CommandContext(ctx, self, "run", "-l", "python", "-c", "print(1)")
		c.Env = append(env, "COVE_URL="+b.url, "COVE_API_KEY="+b.key, "COVE_TRACE_FD=3")
		c.Stdout, c.Stderr = &stdout, &stderr
		t = time.Now()
		ds, err := runTraced(c)
		dc := time.Since(t)
		if err == nil && stdout.String() != "1\n" {
			err = fmt.Errorf("printed %q", stdout.String())
		}
		if err != nil {
			return fmt.Errorf("cove run against the server: %v %s", err, stderr.String())
		}
		if i >= 2 {
			bare, cmd = append(bare, db), append(cmd, dc)
			addStepDurations(steps, ds)
		}
	}
	finishSteps(steps)
	fmt.Fprintf(b.out, "cove run -l python -c 'print(1)' against this server (COVE_URL), one at a time: p50 %.2f ms, %.2fx bare %s (p50 %.2f ms; %d rounds, interleaved)\n",
		ms(p50(cmd)), ms(p50(cmd))/ms(p50(bare)), python, ms(p50(bare)), runs)
	printSteps(b.out, steps)
	fmt.Fprintln(b.out)
	return nil
}

// benchIdle holds n idle sandboxes and reports what they cost the host.
func benchIdle(ctx context.Context, b *benchServer, n int) error {
	out := b.out
	dropCaches()
	before := memAvailable()
	var ids []string
	t := time.Now()
	for i := 0; i < n; i++ {
		s, err := b.svc.CreateSandbox(ctx, cove.SandboxSpec{Limits: cove.Limits{MemoryBytes: 256 << 20}})
		if err != nil {
			return fmt.Errorf("sandbox %d of %d: %w", i+1, n, err)
		}
		ids = append(ids, s.ID)
	}
	took := time.Since(t)
	time.Sleep(time.Second)
	dropCaches()
	after := memAvailable()
	rss := agentRSS()
	// What holding them costs the machine's CPU while nothing happens.
	busy0, t0 := busyCPU(), time.Now()
	time.Sleep(5 * time.Second)
	idleCPU := float64(busyCPU()-busy0) / float64(time.Since(t0))
	fmt.Fprintf(out, "%d idle sandboxes held at once (created in %.1f s)\n", n, took.Seconds())
	fmt.Fprintf(out, "  host memory: %.1f MiB in all, %.2f MiB per sandbox (MemAvailable before and after)\n", float64(before-after)/(1<<20), float64(before-after)/float64(n)/(1<<20))
	fmt.Fprintf(out, "  agents' resident memory: %.2f MiB per sandbox on average\n", float64(rss)/float64(n)/(1<<20))
	fmt.Fprintf(out, "  machine CPU while they idle: %.1f%% of one core (over 5 s, cove serve's idle timeout and reaper)\n", 100*idleCPU)
	for _, id := range ids {
		b.svc.DeleteSandbox(ctx, id)
	}
	return nil
}

// dropCaches drops the page cache so that MemAvailable compares like with
// like.
func dropCaches() { os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0) }

// memAvailable reads MemAvailable from /proc/meminfo, in bytes.
func memAvailable() int64 {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0
	}
	m, err := fs.Meminfo()
	if err != nil || m.MemAvailableBytes == nil {
		return 0
	}
	return int64(*m.MemAvailableBytes)
}

// agentRSS sums the resident memory of every cove agent on the host.
func agentRSS() int64 {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0
	}
	procs, _ := fs.AllProcs()
	var total int64
	for _, p := range procs {
		if cmd, err := p.CmdLine(); err != nil || len(cmd) == 0 || cmd[0] != "cove-agent" {
			continue
		}
		if st, err := p.NewStatus(); err == nil {
			total += int64(st.VmRSS)
		}
	}
	return total
}

// load is what concurrently measured.
type load struct {
	n       int           // calls that succeeded
	elapsed time.Duration // wall time
	busy    time.Duration // the machine's CPU time meanwhile
	extra   int64         // the sum of what the calls returned
}

func (l load) rate() float64 {
	if l.elapsed <= 0 {
		return 0
	}
	return float64(l.n) / l.elapsed.Seconds()
}

func (l load) add(o load) load {
	return load{n: l.n + o.n, elapsed: l.elapsed + o.elapsed, busy: l.busy + o.busy, extra: l.extra + o.extra}
}

// concurrently calls fn from 4 goroutines until d has passed, and stops at
// the first error.
func concurrently(ctx context.Context, d time.Duration, fn func() (int64, error)) (load, error) {
	var (
		mu    sync.Mutex
		l     load
		first error
		wg    sync.WaitGroup
	)
	stop := time.Now().Add(d)
	busy0 := busyCPU()
	start := time.Now()
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) && ctx.Err() == nil {
				v, err := fn()
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				if err == nil {
					l.n++
					l.extra += v
				}
				failed := first != nil
				mu.Unlock()
				if failed {
					return
				}
			}
		}()
	}
	wg.Wait()
	l.elapsed = time.Since(start)
	l.busy = busyCPU() - busy0
	if first == nil {
		first = ctx.Err()
	}
	return l, first
}

// busyCPU is the CPU time all of the machine's cores have spent not idle,
// from /proc/stat; 0 where it cannot be read.
func busyCPU() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	// user nice system idle iowait irq softirq steal guest guest_nice:
	// the first three and irq, softirq (guest time is within user).
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i > 6 {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}
