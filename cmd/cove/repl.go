package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/lang"
)

func newReplCmd(e *env) *cobra.Command {
	var (
		sandboxID string
		imagesDir string
		keep      bool
		lf        limitFlags
	)
	cmd := &cobra.Command{
		Use:   "repl (python | javascript | typescript)",
		Short: "Run an interactive interpreter in a sandbox, cell by cell",
		Long: `Run an interactive interpreter in a sandbox: variables, imports and functions
live from one input to the next, as in a notebook.

A complete statement runs when you press Enter; an open block, bracket or string
continues on the next line, and a blank line runs what you typed. Up and down
recall earlier input; Ctrl-C interrupts a running cell (or clears the line);
Ctrl-D or "exit" ends the session. Charts and other images are saved as PNG
files, and their paths printed.

When the input is not a terminal (a pipe or a file), the exit status is 1 if a
cell failed (an exception, or a limit stopped it); a session on a terminal ends
with 0. If the sandbox is stopped or removed meanwhile, the session ends with
an error.

Without --sandbox it runs in a new sandbox that is removed at the end (kept with
--keep); in-process, or on the server given by --server or COVE_URL. With
--sandbox it uses that sandbox on the server.`,
		Example: `  cove repl python
  cove repl typescript --sandbox 3f9a1c0b2d4e
  printf 'x = 6\nx * 7\n' | cove repl python`,
		Args: exactArgs(1, "repl [flags] (python | javascript | typescript)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := lang.Lookup(args[0])
			if err != nil {
				return cove.Errorf(cove.CodeInvalid, "unknown language %q: the REPL runs %s", args[0], replLanguages())
			}
			if _, ok := l.ContextDriver(); !ok {
				return cove.Errorf(cove.CodeInvalid, "the REPL runs python, javascript or typescript, not %s: use `cove shell` for a shell", l.Name)
			}
			limits, err := lf.limits()
			if err != nil {
				return err
			}
			if sandboxID != "" {
				if err := existingSandboxFlags(cmd, keep); err != nil {
					return err
				}
			}
			ctx := cmd.Context()
			var svc cove.Service
			if _, remote := e.serverURL(); remote || sandboxID != "" {
				if svc, err = e.remoteService(ctx); err != nil {
					return err
				}
			} else {
				local, err := e.localService(ctx)
				if err != nil {
					return err
				}
				defer local.close(ctx)
				svc = local
			}
			id := sandboxID
			if id == "" {
				sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Language: l.Name, Limits: limits, Labels: map[string]string{"cove.repl": "true"}})
				if err != nil {
					return err
				}
				id = sb.ID
				if keep {
					fmt.Fprintf(e.stderr, "sandbox %s is kept: remove it with cove rm %s\n", id, id)
				} else {
					defer svc.DeleteSandbox(context.WithoutCancel(ctx), id)
				}
			}
			c, err := svc.CreateContext(ctx, id, cove.ContextSpec{Language: l.Name})
			if err != nil {
				return err
			}
			defer svc.DeleteContext(context.WithoutCancel(ctx), id, c.ID)
			r := &repl{e: e, svc: svc, sandbox: id, context: c.ID, language: l.Name, imagesDir: imagesDir, timeout: limits.Timeout}
			return r.loop(ctx)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&sandboxID, "sandbox", "", "run in this existing sandbox (on the server)")
	fl.StringVar(&imagesDir, "images", "", "save images into this directory (default: a new temporary directory)")
	fl.BoolVar(&keep, "keep", false, "keep the new sandbox when the session ends")
	lf.register(cmd)
	return cmd
}

// replLanguages lists the languages with a REPL, and their aliases.
func replLanguages() string {
	var names []string
	for _, l := range lang.All() {
		if _, ok := l.ContextDriver(); ok {
			n := l.Name
			if len(l.Aliases) > 0 {
				n += " (" + strings.Join(l.Aliases, ", ") + ")"
			}
			names = append(names, n)
		}
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// existingSandboxFlags refuses the flags that only shape a sandbox the
// REPL creates, given with --sandbox: they would be ignored. --timeout
// applies to each cell either way.
func existingSandboxFlags(cmd *cobra.Command, keep bool) error {
	for _, name := range []string{"memory", "cpus", "pids", "disk", "tmp", "output", "open-files", "network"} {
		if cmd.Flags().Changed(name) {
			return cove.Errorf(cove.CodeInvalid, "--%s sets a limit of a new sandbox, and --sandbox uses an existing one with its own limits: leave --%s out (--timeout applies to each cell)", name, name)
		}
	}
	if keep {
		return cove.Errorf(cove.CodeInvalid, "--keep keeps a sandbox the REPL creates; the one given with --sandbox is never removed: leave --keep out")
	}
	return nil
}

// repl is one interactive session on a context.
type repl struct {
	e                          *env
	svc                        cove.Service
	sandbox, context, language string
	// timeout is each cell's wall-clock limit (0: the sandbox's).
	timeout       time.Duration
	imagesDir     string
	cells, images int
	// failed says a cell failed: piped input then ends with status 1.
	failed bool

	// out receives everything printed; on a terminal it is the line
	// editor, which turns newlines into the CRLF a raw terminal needs.
	out, errOut io.Writer
	// writeErr is the first error writing out or errOut: the reader of
	// the output has gone, and the session ends.
	writeErr error
}

// errorWriter keeps the first error of its writes in *err.
type errorWriter struct {
	w   io.Writer
	err *error
}

func (w errorWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil && *w.err == nil {
		*w.err = err
	}
	return n, err
}

// lineSource gives the lines the user types.
type lineSource interface {
	// readLine returns a line; continuation asks for a continuation prompt.
	readLine(continuation bool) (string, error)
}

func (r *repl) loop(ctx context.Context) error {
	out, errOut := r.e.stdout, r.e.stderr
	var src lineSource
	var tty *ttySource
	if f, ok := r.e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		var err error
		tty, err = newTTYSource(ctx, f, r.e.stdout, r.language, func() {
			r.svc.InterruptContext(context.WithoutCancel(ctx), r.sandbox, r.context)
		})
		if err != nil {
			return err
		}
		defer tty.close()
		out, errOut, src = tty, tty, tty
	} else {
		src = newScanSource(ctx, r.e.stdin)
	}
	r.out, r.errOut = errorWriter{out, &r.writeErr}, errorWriter{errOut, &r.writeErr}
	if tty != nil {
		fmt.Fprintf(r.out, "cove %s REPL in sandbox %s. Ctrl-D or exit to leave.\n", r.language, r.sandbox)
	}
	err := r.read(ctx, src, tty)
	if err == nil && tty == nil && r.failed {
		// Piped input is a script: its status says whether every cell ran.
		return &exitError{1}
	}
	return err
}

// read reads cells and runs each; tty, when set, is told when a cell runs.
func (r *repl) read(ctx context.Context, src lineSource, tty *ttySource) error {
	var buf []string
	for {
		line, err := src.readLine(len(buf) > 0)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == errClearLine {
			buf = nil
			continue
		}
		if err == io.EOF {
			if len(buf) > 0 {
				return r.run(ctx, strings.Join(buf, "\n"), tty)
			}
			return nil
		}
		if err != nil {
			return err
		}
		if len(buf) == 0 {
			switch strings.TrimSpace(line) {
			case "":
				continue
			case "exit", "quit", ".exit":
				return nil
			}
		}
		if strings.TrimSpace(line) == "" {
			// A blank line runs what was typed.
			err = r.run(ctx, strings.Join(buf, "\n"), tty)
			buf = nil
		} else if buf = append(buf, line); cellComplete(r.language, buf) {
			err = r.run(ctx, strings.Join(buf, "\n"), tty)
			buf = nil
		}
		if ctx.Err() != nil {
			// A signal: said once, when the session ends.
			return ctx.Err()
		}
		if err != nil {
			return err
		}
	}
}

// run runs one cell and prints its events as they come. A cell that fails
// is noted in r.failed; the error ends the session: the context was
// cancelled, the output cannot be written, or the sandbox is gone.
func (r *repl) run(ctx context.Context, code string, tty *ttySource) error {
	r.cells++
	if tty != nil {
		tty.running.Store(true)
		defer tty.running.Store(false)
	}
	st, err := r.svc.RunCell(ctx, r.sandbox, r.context, cove.CellRequest{Code: code, Timeout: r.timeout})
	if err != nil {
		return r.cellError(ctx, err)
	}
	defer st.Close()
	var atLineStart = true
	write := func(w io.Writer, b []byte) {
		if len(b) > 0 {
			w.Write(b)
			atLineStart = b[len(b)-1] == '\n'
		}
	}
	newline := func() {
		if !atLineStart {
			r.out.Write([]byte("\n"))
			atLineStart = true
		}
	}
	for {
		if r.writeErr != nil {
			return fmt.Errorf("writing the output: %w", r.writeErr)
		}
		ev, err := st.Next()
		if err != nil {
			newline()
			if err == io.EOF {
				return nil
			}
			return r.cellError(ctx, err)
		}
		switch ev.Type {
		case cove.EventStdout:
			write(r.out, ev.Data)
		case cove.EventStderr:
			write(r.errOut, ev.Data)
		case cove.EventResult, cove.EventDisplay:
			newline()
			r.printBundle(ev.Bundle)
		case cove.EventException:
			newline()
			r.failed = true
			r.printException(ev.Exception)
		case cove.EventExit:
			newline()
			res := ev.Result
			if res.Verdict != cove.VerdictOK {
				r.failed = true
			}
			if res.Verdict != cove.VerdictOK && res.Verdict != cove.VerdictError {
				msg := res.Message
				if msg == "" {
					msg = string(res.Verdict)
				}
				fmt.Fprintf(r.errOut, "cove: %s (verdict %s)\n", msg, res.Verdict)
			}
			if r.writeErr != nil {
				return fmt.Errorf("writing the output: %w", r.writeErr)
			}
			return nil
		}
	}
}

// cellError says why a cell could not run. It returns an error that ends
// the session when there is no point going on: the session was
// interrupted (said once, when it ends), or the sandbox or its interpreter
// is gone, so that every cell after would fail the same way.
func (r *repl) cellError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	r.failed = true
	if code := cove.ErrorCode(err); code == cove.CodeNotFound || code == cove.CodeConflict {
		sb, gerr := r.svc.GetSandbox(ctx, r.sandbox)
		switch {
		case cove.ErrorCode(gerr) == cove.CodeNotFound:
			return cove.Errorf(cove.CodeNotFound, "sandbox %s is gone (removed, or expired): the session ends", r.sandbox)
		case gerr == nil && sb.State != cove.StateRunning:
			// The service says why, and what became of the contexts
			// ("is being deleted: its TTL (1h0m0s) ended", "is stopped
			// (idle for 30m), and its contexts ended when it stopped").
			return cove.Errorf(code, "%s; the session's variables are gone, and the session ends", cove.ErrorMessage(err))
		case gerr == nil && code == cove.CodeNotFound:
			return cove.Errorf(cove.CodeNotFound, "the session's interpreter in sandbox %s is gone (the sandbox was restarted): the session ends", r.sandbox)
		}
	}
	fmt.Fprintf(r.errOut, "cove: %s\n", printable(cove.ErrorMessage(err)))
	return nil
}

// printBundle prints an output's best plain form, saving images to files.
func (r *repl) printBundle(b cove.MIMEBundle) {
	if data, ok := b["image/png"]; ok {
		path, size, err := r.saveImage(data)
		if err != nil {
			fmt.Fprintf(r.errOut, "cove: saving an image: %s\n", cove.ErrorMessage(err))
		} else {
			fmt.Fprintf(r.out, "[image %s saved to %s]\n", size, path)
		}
		return
	}
	if text, ok := b["text/plain"]; ok {
		fmt.Fprintln(r.out, strings.TrimRight(text, "\n"))
		return
	}
	for mime := range b {
		fmt.Fprintf(r.out, "[%s output]\n", mime)
	}
}

func (r *repl) printException(x *cove.CellError) {
	if x == nil {
		return
	}
	// Python's traceback entries end with a newline, Node's stack lines
	// do not: print each on its own line either way.
	lines := make([]string, len(x.Traceback))
	for i, l := range x.Traceback {
		lines[i] = strings.TrimRight(l, "\n")
	}
	tb := strings.Join(lines, "\n")
	if tb != "" {
		fmt.Fprintln(r.errOut, tb)
	}
	last := x.Name
	if x.Message != "" {
		last += ": " + x.Message
	}
	// Python's traceback ends with the exception's own line (for a
	// SyntaxError, without the place its message adds, which the lines
	// above show).
	tail := tb[strings.LastIndexByte(tb, '\n')+1:]
	if !strings.Contains(tb, last) && tail != x.Name && !strings.HasPrefix(tail, x.Name+":") {
		fmt.Fprintln(r.errOut, last)
	}
}

// saveImage writes a base64 PNG to the images directory and returns its
// path and size.
func (r *repl) saveImage(b64 string) (string, string, error) {
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", "", err
	}
	if r.imagesDir == "" {
		dir, err := os.MkdirTemp("", "cove-repl-")
		if err != nil {
			return "", "", err
		}
		r.imagesDir = dir
	} else if err := os.MkdirAll(r.imagesDir, 0o755); err != nil {
		return "", "", err
	}
	r.images++
	path := filepath.Join(r.imagesDir, fmt.Sprintf("cell%d-%d.png", r.cells, r.images))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return "", "", err
	}
	size := "png"
	if cfg, err := png.DecodeConfig(bytes.NewReader(data)); err == nil {
		size = fmt.Sprintf("%dx%d", cfg.Width, cfg.Height)
	}
	return path, size, nil
}

// scanSource reads lines from a pipe or file, without prompts; a
// goroutine reads them, so that a signal ends a session waiting for input.
type scanSource struct {
	ctx   context.Context
	lines chan string
	err   error // set before lines is closed
}

func newScanSource(ctx context.Context, in io.Reader) *scanSource {
	s := &scanSource{ctx: ctx, lines: make(chan string)}
	go func() {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			select {
			case s.lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		s.err = sc.Err()
		close(s.lines)
	}()
	return s
}

func (s *scanSource) readLine(bool) (string, error) {
	select {
	case line, ok := <-s.lines:
		if ok {
			return line, nil
		}
		if s.err != nil {
			return "", s.err
		}
		return "", io.EOF
	case <-s.ctx.Done():
		return "", s.ctx.Err()
	}
}

// errClearLine is Ctrl-C at the prompt: drop what was typed.
var errClearLine = fmt.Errorf("line cleared")

// errHangup ends a session whose terminal has gone: in raw mode the
// end of the input is a key (Ctrl-D), never the end of the file.
var errHangup = signalCause{syscall.SIGHUP}

// ttySource reads lines with editing and history from a terminal in raw
// mode. One goroutine reads the terminal all the time, so that Ctrl-C
// while a cell runs interrupts the cell (raw mode turns it into a byte,
// not a signal) and what is typed ahead is kept for the next prompt.
//
// Ctrl-C at the prompt never reaches the line editor (x/term ends the
// line with io.EOF for it, as for Ctrl-D, and keeps the key to read it
// again): Read moves the editor to the end of the line, then fails with
// errClearLine, and readLine starts a new editor with the same history.
type ttySource struct {
	ctx     context.Context
	f       *os.File
	state   *term.State
	out     io.Writer // the terminal itself
	prompt  string
	running atomic.Bool
	keys    chan []byte
	pending []byte
	ctrlC   bool // Read owes the editor errClearLine
	stop    func()
	once    sync.Once

	mu         sync.Mutex // guards the fields below; the editor's size changes in another goroutine
	term       *term.Terminal
	cols, rows int
}

func newTTYSource(ctx context.Context, f *os.File, out io.Writer, language string, interrupt func()) (*ttySource, error) {
	fd := int(f.Fd())
	state, err := term.MakeRaw(fd)
	if err != nil {
		return nil, cove.Errorf(cove.CodeUnavailable, "setting up the terminal: %w", err)
	}
	t := &ttySource{ctx: ctx, f: f, state: state, out: out, prompt: promptFor(language), keys: make(chan []byte, 64)}
	t.term = t.newEditor(nil)
	cols, rows, _ := term.GetSize(fd)
	t.resize(cols, rows)
	t.stop = followWindowSize(fd, t.resize)
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := f.Read(buf)
			if n > 0 {
				b := append([]byte(nil), buf[:n]...)
				if t.running.Load() && bytes.IndexByte(b, 3) >= 0 {
					b = bytes.ReplaceAll(b, []byte{3}, nil)
					interrupt()
				}
				if len(b) > 0 {
					t.keys <- b
				}
			}
			if err != nil {
				close(t.keys)
				return
			}
		}
	}()
	return t, nil
}

// newEditor returns a line editor on the terminal with the history h
// (nil: a new one).
func (t *ttySource) newEditor(h term.History) *term.Terminal {
	e := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{t, t.out}, t.prompt)
	if h != nil {
		e.History = h
	}
	if t.cols > 0 {
		e.SetSize(t.cols, t.rows)
	}
	return e
}

// resize tells the editor the terminal's size. A terminal that reports no
// size (a pty nobody sized, as under script or in CI) is taken as 80 by
// 24: a width of 0 would break every character onto a line of its own.
func (t *ttySource) resize(cols, rows int) {
	if cols <= 0 {
		cols, rows = 80, 24
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cols, t.rows = cols, max(rows, 1)
	t.term.SetSize(t.cols, t.rows)
}

func (t *ttySource) editor() *term.Terminal {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.term
}

func promptFor(language string) string {
	if language == "python" {
		return ">>> "
	}
	return "> "
}

// Read feeds the line editor with the keys the reader goroutine got.
func (t *ttySource) Read(p []byte) (int, error) {
	if t.ctrlC {
		t.ctrlC = false
		return 0, errClearLine
	}
	if len(t.pending) == 0 {
		select {
		case b, ok := <-t.keys:
			if !ok {
				return 0, errHangup
			}
			t.pending = b
		case <-t.ctx.Done():
			return 0, t.ctx.Err()
		}
	}
	if t.pending[0] == 3 {
		t.pending = t.pending[1:]
		t.ctrlC = true
		p[0] = 5 // Ctrl-E: the end of the line, where ^C goes
		return 1, nil
	}
	n := len(t.pending)
	if i := bytes.IndexByte(t.pending, 3); i >= 0 {
		n = i
	}
	n = copy(p, t.pending[:n])
	t.pending = t.pending[n:]
	return n, nil
}

// Write prints through the line editor.
func (t *ttySource) Write(p []byte) (int, error) { return t.editor().Write(p) }

func (t *ttySource) readLine(continuation bool) (string, error) {
	e := t.editor()
	if continuation {
		e.SetPrompt(strings.Repeat(".", len(strings.TrimSpace(t.prompt))) + " ")
	} else {
		e.SetPrompt(t.prompt)
	}
	line, err := e.ReadLine()
	switch err {
	case nil:
	case term.ErrPasteIndicator:
		err = nil
	case errClearLine:
		io.WriteString(t.out, "^C\r\n")
		t.mu.Lock()
		t.term = t.newEditor(e.History)
		t.mu.Unlock()
	default:
		// Ctrl-D or a signal: what comes next starts on a line of its own.
		io.WriteString(t.out, "\r\n")
	}
	return line, err
}

func (t *ttySource) close() {
	t.once.Do(func() {
		t.stop()
		term.Restore(int(t.f.Fd()), t.state)
	})
}

// cellComplete says whether the lines typed so far make a cell to run now:
// nothing is left open (a bracket, a string, a comment, a continued line)
// and, in Python, no compound statement waits for its body to end with a
// blank line.
func cellComplete(language string, lines []string) bool {
	src := strings.Join(lines, "\n")
	if language != "python" {
		return !jsOpen(src)
	}
	if pyOpen(src) {
		return false
	}
	for _, l := range lines {
		t := strings.TrimSpace(stripPyComment(l))
		if strings.HasSuffix(t, ":") || strings.HasPrefix(t, "@") {
			return false // a block: a blank line ends it
		}
	}
	return true
}

// pyOpen reports an open bracket, string or line continuation in Python
// source.
func pyOpen(src string) bool {
	depth := 0
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'':
			q := string(c)
			if strings.HasPrefix(src[i:], q+q+q) {
				end := strings.Index(src[i+3:], q+q+q)
				if end < 0 {
					return true
				}
				i += 3 + end + 2
				continue
			}
			j := i + 1
			for ; j < len(src) && src[j] != c && src[j] != '\n'; j++ {
				if src[j] == '\\' {
					j++
				}
			}
			if j >= len(src) {
				return true
			}
			i = j
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			depth--
		}
	}
	return depth > 0 || strings.HasSuffix(strings.TrimRight(src, " \t"), "\\")
}

func stripPyComment(line string) string {
	if i := strings.IndexByte(line, '#'); i >= 0 && !strings.ContainsAny(line[:i], `"'`) {
		return line[:i]
	}
	return line
}

// jsOpen reports an open bracket, string, template or comment in
// JavaScript or TypeScript source.
func jsOpen(src string) bool {
	depth := 0
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case strings.HasPrefix(src[i:], "//"):
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case strings.HasPrefix(src[i:], "/*"):
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return true
			}
			i += 2 + end + 1
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for ; j < len(src) && src[j] != c && (c == '`' || src[j] != '\n'); j++ {
				if src[j] == '\\' {
					j++
				}
			}
			if j >= len(src) {
				return true
			}
			i = j
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			depth--
		}
	}
	return depth > 0
}
