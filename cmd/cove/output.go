package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
	"unicode"

	"golang.org/x/term"

	"github.com/cove-sandbox/cove"
)

// writeJSON prints v as indented JSON, the --json form of every command.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints aligned columns for people.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = cell(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// cell makes a value safe to print in a table: names chosen inside a
// sandbox may hold tabs, newlines or terminal escapes, which are quoted.
func cell(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// printableLine makes a line of text safe to print: tabs stay, other
// control characters and escapes are quoted.
func printableLine(s string) string {
	for _, r := range s {
		if r != '\t' && !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// orDash shows an empty value as "-".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// labelText renders labels as k=v pairs in key order.
func labelText(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

// age renders how long ago t was, in its largest unit: 45s, 3m, 5h, 2d.
func age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return span(max(time.Since(t), 0))
}

// expiresIn renders when a sandbox's TTL ends: "in 45s", "in 59m", "in
// 1h30m", "in 3d", "now" once due, "-" without a TTL. It rounds up, to
// the minute from a minute on, so that a TTL of 2h just set reads "in
// 2h", not "in 1h".
func expiresIn(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Until(t)
	switch {
	case d <= 0:
		return "now"
	case d <= time.Minute:
		return fmt.Sprintf("in %ds", int((d+time.Second-1)/time.Second))
	}
	m := int((d + time.Minute - 1) / time.Minute)
	switch {
	case m < 60:
		return fmt.Sprintf("in %dm", m)
	case m < 48*60 && m%60 == 0:
		return fmt.Sprintf("in %dh", m/60)
	case m < 48*60:
		return fmt.Sprintf("in %dh%dm", m/60, m%60)
	}
	return fmt.Sprintf("in %dd", m/(24*60))
}

// span renders a duration in its largest unit, rounded down: 45s, 3m,
// 5h, 2d.
func span(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	default:
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
}

// timestamp renders t in local time to the minute.
func timestamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

// isTerminal reports whether w is a terminal, where spinners and progress
// bars are shown; pipes and files get none.
func isTerminal(w any) bool {
	if p, ok := w.(*pipeWriter); ok {
		w = p.w
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// spin shows a spinner with msg on stderr while a slow call runs, when
// stderr is a terminal and the output is not JSON. The returned function
// stops it and clears its line.
func (e *env) spin(msg string, asJSON bool) (stop func()) {
	if asJSON || !isTerminal(e.stderr) {
		return func() {}
	}
	return startSpinner(e.stderr, msg, 150*time.Millisecond)
}

// startSpinner draws a spinner on w after delay (fast calls show
// nothing) until the returned function is called.
func startSpinner(w io.Writer, msg string, delay time.Duration) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-done:
			return
		case <-time.After(delay):
		}
		frames := []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}
		tick := time.NewTicker(80 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			fmt.Fprintf(w, "\r%s %s", frames[i%len(frames)], msg)
			select {
			case <-done:
				fmt.Fprint(w, "\r\x1b[K")
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
		})
	}
}

// progressThreshold is the size above which a transfer shows progress.
const progressThreshold = 1 << 20

// progress reports a transfer on a terminal: bytes so far, the total when
// known, and the rate.
type progress struct {
	w     io.Writer
	label string
	total int64 // 0: unknown
	n     atomic.Int64
	start time.Time
	done  chan struct{}
	wg    sync.WaitGroup
	shown bool
}

// progress returns a progress reporter for a transfer of total bytes (0 if
// unknown), or nil when stderr is not a terminal.
func (e *env) progress(label string, total int64) *progress {
	if !isTerminal(e.stderr) {
		return nil
	}
	return startProgress(e.stderr, label, total, 200*time.Millisecond)
}

func startProgress(w io.Writer, label string, total int64, every time.Duration) *progress {
	p := &progress{w: w, label: label, total: total, start: time.Now(), done: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-tick.C:
				p.draw()
			}
		}
	}()
	return p
}

// draw prints the current state once the transfer is, or will be, larger
// than the threshold.
func (p *progress) draw() {
	n := p.n.Load()
	if max(n, p.total) <= progressThreshold {
		return
	}
	p.shown = true
	fmt.Fprintf(p.w, "\r\x1b[K%s", p.line(n, time.Since(p.start)))
}

// line renders one progress line.
func (p *progress) line(n int64, elapsed time.Duration) string {
	rate := ""
	if s := elapsed.Seconds(); s > 0 {
		rate = "  " + cove.FormatBytes(int64(float64(n)/s)) + "/s"
	}
	if p.total <= 0 {
		return fmt.Sprintf("%s  %s%s", p.label, cove.FormatBytes(n), rate)
	}
	const width = 24
	filled := int(min(n, p.total) * width / p.total)
	return fmt.Sprintf("%s  [%s%s] %3d%%  %s / %s%s", p.label, strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
		min(n, p.total)*100/p.total, cove.FormatBytes(n), cove.FormatBytes(p.total), rate)
}

// finish draws the final state and ends the line. It is safe on nil.
func (p *progress) finish() {
	if p == nil {
		return
	}
	close(p.done)
	p.wg.Wait()
	p.draw()
	if p.shown {
		fmt.Fprintln(p.w)
	}
}

// reader counts what is read through r. It is safe on nil.
func (p *progress) reader(r io.Reader) io.Reader {
	if p == nil {
		return r
	}
	return &countingReader{r: r, n: &p.n}
}

// writer counts what is written through w. It is safe on nil.
func (p *progress) writer(w io.Writer) io.Writer {
	if p == nil {
		return w
	}
	return &countingWriter{w: w, n: &p.n}
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(int64(n))
	return n, err
}
