package ai

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
)

func TestTrim(t *testing.T) {
	t.Parallel()
	if s, note := trim("short", 100); s != "short" || note != "" {
		t.Errorf("short: %q %q", s, note)
	}
	long := "HEAD" + strings.Repeat("é", 5000) + "TAIL"
	s, note := trim(long, 1001)
	if !strings.HasPrefix(s, "HEAD") || !strings.HasSuffix(s, "TAIL") || !strings.Contains(s, "bytes cut by cove") {
		t.Errorf("trimmed %q", s[:40])
	}
	if len(s) > 1100 || !strings.Contains(note, "trimmed to its first") {
		t.Errorf("len %d note %q", len(s), note)
	}
	if !json.Valid([]byte(`"` + strings.ReplaceAll(s, "\n", `\n`) + `"`)) {
		t.Error("trimming split a character")
	}
}

func TestFenceFor(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"x": "```", "a ``` b": "````", "`````": "``````"} {
		if got := fenceFor(in); got != want {
			t.Errorf("fenceFor(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLastCodeBlock(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, md, lang, want string
	}{
		{"tagged", "Why.\n\n```python\nprint(1)\n```\n", "python", "print(1)\n"},
		{"last of the language", "```py\nold()\n```\ntext\n```python\nnew()\n```\n```text\noutput\n```\n", "python", "new()\n"},
		{"alias", "```js\nconsole.log(1)\n```", "javascript", "console.log(1)\n"},
		{"untagged", "```\necho hi\n```", "bash", "echo hi\n"},
		{"output only", "```text\n1\n```", "python", ""},
		{"longer fence", "````python\nx = '```'\n````\n", "python", "x = '```'\n"},
		{"tilde", "~~~ts\nlet a = 1\n~~~", "typescript", "let a = 1\n"},
		{"unclosed", "```python\nprint(2)\n", "python", "print(2)\n"},
		{"none", "no code here", "python", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := lastCodeBlock(tc.md, tc.lang, true); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	// An answer cut short inside a block gives no program (an earlier
	// block may be the code it replaces); cut after its last block, it
	// gives that block.
	for md, want := range map[string]string{
		"```python\nprint(2)\nprint('and":                     "",
		"```python\nold()\n```\nNow faster:\n```python\nnew(": "",
		"```python\nnew()\n```\nThis is faster because":       "new()\n",
		"```python\nprint(2)\n```\n":                          "print(2)\n",
	} {
		if got := lastCodeBlock(md, "python", false); got != want {
			t.Errorf("cut short %q: got %q, want %q", md, got, want)
		}
	}
}

func TestParseFindings(t *testing.T) {
	t.Parallel()
	fs, ok := parseFindings(json.RawMessage(`{"findings":[{"severity":"HIGH","category":"Bug","line":3,"message":" off by one "},{"severity":"odd","category":"style","line":-2,"message":"x"},{"severity":"low","category":"style","message":""}]}`))
	want := []cove.AIFinding{{Severity: "high", Category: "bug", Line: 3, Message: "off by one"}, {Severity: "info", Category: "style", Message: "x"}}
	if !ok || len(fs) != 2 || fs[0] != want[0] || fs[1] != want[1] {
		t.Errorf("%v %+v", ok, fs)
	}
	if _, ok := parseFindings(json.RawMessage(`"nope"`)); ok {
		t.Error("a string parsed as findings")
	}
}

// TestPromptsRender renders every prompt with and without a run, so that
// a template that refers to a missing field fails here.
func TestPromptsRender(t *testing.T) {
	t.Parallel()
	run := &cove.ExecResult{
		Verdict: cove.VerdictOOMKilled, ExitCode: 137, Signal: "SIGKILL", Message: "killed: out of memory (limit 64 MiB)",
		Stdout: "partial\n", StdoutTruncated: true, WallMS: 812, CPUMS: 700, PeakMemoryBytes: 64 << 20,
		Limits: cove.Limits{MemoryBytes: 64 << 20, CPUs: 0.5, Pids: 64, Timeout: 2 * time.Second, OutputBytes: 1 << 20},
	}
	for _, ex := range []*cove.ExecResult{nil, run} {
		req := cove.AIRequest{Language: "python", Filename: "hog.py", Code: "x = [0] * 10**10\n", Execution: ex, Test: "python3 -m pytest -q",
			Files: map[string][]byte{"test_hog.py": []byte("import hog\n"), "blob.bin": {0, 1, 2}}}
		var limits cove.Limits
		if ex != nil {
			limits = ex.Limits
		}
		d := newPromptData(req, limits, 1000)
		d.MaxSteps = 8
		for _, name := range []string{"system.md", "explain.md", "review.md", "optimize.md", "fix.md", "verify.md"} {
			out, err := render(name, d)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if strings.Contains(out, "<no value>") || strings.Contains(out, "{{") {
				t.Errorf("%s: %s", name, out)
			}
			if name == "system.md" {
				if ex != nil && !strings.Contains(out, "memory 64 MiB (no swap), CPU 0.5 core(s), 64 processes and threads, wall-clock time 2s per run") {
					t.Errorf("system prompt without the limits:\n%s", out)
				}
				continue
			}
			if !strings.Contains(out, "Other files of the program, in /workspace:\n\nblob.bin (3 bytes): not text, not shown\n\ntest_hog.py (11 bytes):\n\n```\nimport hog\n```") {
				t.Errorf("%s without the files:\n%s", name, out)
			}
			if !strings.Contains(out, "x = [0] * 10**10") {
				t.Errorf("%s without the code:\n%s", name, out)
			}
			if ex != nil && (!strings.Contains(out, "verdict: oom_killed (killed: out of memory (limit 64 MiB))") ||
				!strings.Contains(out, "stdout (cove stopped it at the output limit of 1 MiB)") || !strings.Contains(out, "stderr: (empty)")) {
				t.Errorf("%s without the run:\n%s", name, out)
			}
			if ex == nil && !strings.Contains(out, "The program has not been run.") {
				t.Errorf("%s:\n%s", name, out)
			}
		}
	}
	// A run stopped by its user has no CPU time or peak memory: they are
	// left out rather than given as 0.
	stopped := &cove.ExecResult{Verdict: cove.VerdictKilled, ExitCode: 137, WallMS: 2020, Message: "stopped by you: CPU time and peak memory are not known"}
	out, err := render("explain.md", newPromptData(cove.AIRequest{Language: "python", Code: "while True: pass\n", Execution: stopped}, cove.Limits{}, 1000))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "- wall time 2020 ms\n") || strings.Contains(out, "CPU time 0") {
		t.Errorf("a stopped run:\n%s", out)
	}
}
