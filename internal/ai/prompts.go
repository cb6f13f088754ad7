package ai

import (
	"bytes"
	"embed"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"unicode/utf8"

	"github.com/cove-sandbox/cove"
)

//go:embed prompts/*.md
var promptFiles embed.FS

// prompts returns the embedded templates: system.md, one per action,
// verify.md for the fix loop, and the shared parts. They are parsed on
// first use, not when cove starts: most commands never ask Claude.
var prompts = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("").Option("missingkey=error").ParseFS(promptFiles, "prompts/*.md"))
})

// promptData is what the templates see.
type promptData struct {
	Language string
	Filename string
	Code     string
	// Numbered is the code with a line number before each line.
	Numbered string
	// Lines counts the code's lines in words ("1 line", "12 lines").
	Lines string
	// Fence is a Markdown fence that the code cannot close.
	Fence string
	Run   *runData
	// Files are the program's other files, by name.
	Files []fileData
	// Limits describes the limits that applied, in words ("" unknown).
	Limits   string
	Test     string
	MaxSteps int
}

// runData describes an execution for the templates.
type runData struct {
	Verdict    string
	ExitCode   int
	Signal     string
	Message    string
	WallMS     int64
	CPUMS      int64
	PeakMemory string
	Stdout     outputData
	Stderr     outputData
}

// fileData is another file of the program.
type fileData struct {
	Name   string
	Size   string
	Text   string
	Fence  string
	Note   string
	Binary bool
}

// outputData is one output stream, trimmed to the budget.
type outputData struct {
	Name  string
	Text  string
	Fence string
	// Note says how the output was cut, if it was.
	Note  string
	Empty bool
}

// newPromptData builds the templates' data for req; budget bounds each
// output stream of the execution.
func newPromptData(req cove.AIRequest, limits cove.Limits, budget int) *promptData {
	code := strings.TrimRight(req.Code, "\n")
	lines := strings.Split(code, "\n")
	width := len(strconv.Itoa(len(lines)))
	var num strings.Builder
	for i, l := range lines {
		fmt.Fprintf(&num, "%*d| %s\n", width, i+1, l)
	}
	d := &promptData{
		Language: req.Language, Filename: req.Filename, Code: code,
		Numbered: strings.TrimRight(num.String(), "\n"), Lines: plural(len(lines), "line"),
		Fence: fenceFor(code), Limits: describeLimits(limits), Test: req.Test,
	}
	for _, name := range slices.Sorted(maps.Keys(req.Files)) {
		b := req.Files[name]
		f := fileData{Name: name, Size: about(len(b)), Binary: !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0}
		if !f.Binary {
			f.Text, f.Note = trim(string(b), budget)
			f.Text = strings.TrimRight(f.Text, "\n")
			f.Fence = fenceFor(f.Text)
		}
		d.Files = append(d.Files, f)
	}
	if ex := req.Execution; ex != nil {
		d.Run = &runData{
			Verdict: string(ex.Verdict), ExitCode: ex.ExitCode, Signal: ex.Signal, Message: ex.Message,
			WallMS: ex.WallMS, CPUMS: ex.CPUMS,
			Stdout: newOutput("stdout", ex.Stdout, ex.StdoutTruncated, ex.Limits.OutputBytes, budget),
			Stderr: newOutput("stderr", ex.Stderr, ex.StderrTruncated, ex.Limits.OutputBytes, budget),
		}
		if ex.PeakMemoryBytes > 0 {
			d.Run.PeakMemory = cove.FormatBytes(ex.PeakMemoryBytes)
		}
	}
	return d
}

func newOutput(name, s string, cutByCove bool, limit int64, budget int) outputData {
	o := outputData{Name: name, Empty: s == ""}
	var notes []string
	if cutByCove {
		if limit > 0 {
			notes = append(notes, fmt.Sprintf("cove stopped it at the output limit of %s", cove.FormatBytes(limit)))
		} else {
			notes = append(notes, "cove stopped it at the output limit")
		}
	}
	s, escaped := printable(s)
	if escaped {
		notes = append(notes, `not all of it is text: each byte that is not printable UTF-8 is shown as \xNN`)
	}
	text, note := trim(s, budget)
	if note != "" {
		notes = append(notes, note)
	}
	o.Text, o.Note, o.Fence = strings.TrimRight(text, "\n"), strings.Join(notes, "; "), fenceFor(text)
	return o
}

// printable returns s with each byte that is not part of printable UTF-8
// text (invalid UTF-8, NUL and other control characters, such as the
// escape sequences of a terminal; newline, tab and carriage return stay)
// written as \xNN, and whether there was any. A program's binary output
// would otherwise reach the API as a run of replacement characters, each
// a token, saying nothing about the bytes.
func printable(s string) (string, bool) {
	clean := func(r rune) bool {
		return r >= 0x20 && r != 0x7f && (r < 0x80 || r >= 0xa0) || r == '\n' || r == '\t' || r == '\r'
	}
	ok := utf8.ValidString(s)
	for _, r := range s {
		if !ok || !clean(r) {
			ok = false
			break
		}
	}
	if ok {
		return s, false
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/4)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || !clean(r) {
			for j := range n {
				fmt.Fprintf(&b, `\x%02x`, s[i+j])
			}
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String(), true
}

// render executes the named template.
func render(name string, d *promptData) (string, error) {
	var b strings.Builder
	if err := prompts().ExecuteTemplate(&b, name, d); err != nil {
		return "", cove.Errorf(cove.CodeInternal, "rendering the %s prompt: %w", name, err)
	}
	return strings.TrimSpace(b.String()) + "\n", nil
}

// trim cuts s to about budget bytes, keeping its head and its tail (where
// errors and tracebacks usually are) with a marker where the middle was,
// and returns a note saying so; s within the budget comes back whole.
func trim(s string, budget int) (text, note string) {
	if budget <= 0 || len(s) <= budget {
		return s, ""
	}
	head, tail := budget/2, budget-budget/2
	h := s[:head]
	for len(h) > 0 && !utf8.ValidString(h) {
		h = h[:len(h)-1]
	}
	t := s[len(s)-tail:]
	for len(t) > 0 && !utf8.RuneStart(t[0]) {
		t = t[1:]
	}
	cut := len(s) - len(h) - len(t)
	text = h + fmt.Sprintf("\n[... %d bytes cut by cove ...]\n", cut) + t
	note = fmt.Sprintf("%s in all; trimmed to its first %s and last %s", about(len(s)), about(len(h)), about(len(t)))
	return text, note
}

// plural counts n things in words.
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// about renders a size roughly, for people: "812 bytes", "4 KiB", "2.5 MiB".
func about(n int) string {
	f := float64(n)
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d bytes", n)
	case n < 1<<20:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", f/(1<<10)), ".0") + " KiB"
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", f/(1<<20)), ".0") + " MiB"
}

// fenceFor returns a backtick fence longer than any run of backticks in s.
func fenceFor(s string) string {
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}

// describeLimits says in words what limits applied ("" when unknown).
func describeLimits(l cove.Limits) string {
	if l == (cove.Limits{}) {
		return ""
	}
	var parts []string
	add := func(ok bool, format string, args ...any) {
		if ok {
			parts = append(parts, fmt.Sprintf(format, args...))
		}
	}
	add(l.MemoryBytes > 0, "memory %s (no swap)", cove.FormatBytes(l.MemoryBytes))
	add(l.CPUs > 0, "CPU %g core(s)", l.CPUs)
	add(l.Pids > 0, "%d processes and threads", l.Pids)
	add(l.Timeout > 0, "wall-clock time %s per run", l.Timeout)
	add(l.OutputBytes > 0, "output %s per stream (stdout, stderr)", cove.FormatBytes(l.OutputBytes))
	add(l.DiskBytes > 0, "workspace disk %s", cove.FormatBytes(l.DiskBytes))
	add(l.TmpBytes > 0, "/tmp %s", cove.FormatBytes(l.TmpBytes))
	add(l.OpenFiles > 0, "%d open files", l.OpenFiles)
	add(l.FileBytes > 0, "files up to %s", cove.FormatBytes(l.FileBytes))
	return strings.Join(parts, ", ")
}
