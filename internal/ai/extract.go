package ai

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/anthropics/anthropic-sdk-go"

	"github.com/cove-sandbox/cove"
)

// findingsToolName is the tool through which a review reports its
// findings as structured data.
const findingsToolName = "report_findings"

// The values a finding may take.
var (
	severities = []string{"critical", "high", "medium", "low", "info"}
	categories = []string{"bug", "security", "performance", "style"}
)

// findingsTool is the review's tool, with the JSON schema of a finding.
func findingsTool() anthropic.ToolUnionParam {
	return tool(findingsToolName, "Report the findings of the review as structured data. Call it once, after writing the review, with every finding (an empty list when there are none).", map[string]any{
		"findings": map[string]any{
			"type": "array",
			"items": map[string]any{
				"type": "object",
				"properties": map[string]any{
					"severity": map[string]any{"type": "string", "enum": severities},
					"category": map[string]any{"type": "string", "enum": categories},
					"line":     map[string]any{"type": "integer", "minimum": 0, "description": "The line number the finding refers to; 0 for the whole program."},
					"message":  map[string]any{"type": "string", "description": "The finding and its remedy, in one or two sentences."},
				},
				"required":             []string{"severity", "category", "line", "message"},
				"additionalProperties": false,
			},
		},
	}, "findings")
}

// tool declares a client tool with an object input schema.
func tool(name, description string, properties map[string]any, required ...string) anthropic.ToolUnionParam {
	return anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{
		Name:        name,
		Description: anthropic.String(description),
		InputSchema: anthropic.ToolInputSchemaParam{Properties: properties, Required: required},
	}}
}

// findingsOf returns a review's findings: from its report_findings call,
// else from a JSON block of its text. called says the tool was called.
func findingsOf(msg *anthropic.Message, text string) (findings []cove.AIFinding, called bool) {
	for _, b := range msg.Content {
		if b.Type == "tool_use" && b.Name == findingsToolName {
			called = true
			if fs, ok := parseFindings(b.Input); ok {
				return fs, true
			}
		}
	}
	for _, blk := range slices.Backward(codeBlocks(text)) {
		if blk.info == "json" {
			if fs, ok := parseFindings(json.RawMessage(blk.body)); ok {
				return fs, called
			}
		}
	}
	return nil, called
}

// parseFindings reads {"findings": [...]} or a bare list, normalising
// what the schema allows.
func parseFindings(raw json.RawMessage) ([]cove.AIFinding, bool) {
	var wrapped struct {
		Findings []cove.AIFinding `json:"findings"`
	}
	var list []cove.AIFinding
	if err := json.Unmarshal(raw, &wrapped); err == nil && wrapped.Findings != nil {
		list = wrapped.Findings
	} else if err := json.Unmarshal(raw, &list); err != nil {
		return nil, false
	}
	out := make([]cove.AIFinding, 0, len(list))
	for _, f := range list {
		f.Severity = strings.ToLower(strings.TrimSpace(f.Severity))
		f.Category = strings.ToLower(strings.TrimSpace(f.Category))
		if !slices.Contains(severities, f.Severity) {
			f.Severity = "info"
		}
		if f.Line < 0 {
			f.Line = 0
		}
		f.Message = strings.TrimSpace(f.Message)
		if f.Message != "" {
			out = append(out, f)
		}
	}
	return out, true
}

// codeBlock is a fenced block of Markdown.
type codeBlock struct {
	info string // the first word of the info string, lower case
	body string
	// closed says the block's closing fence came; an unclosed block runs
	// to the end of the text.
	closed bool
}

// codeBlocks returns the fenced code blocks of md in order (``` or ~~~,
// three or more; an unclosed block runs to the end).
func codeBlocks(md string) []codeBlock {
	var out []codeBlock
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimLeft(lines[i], " ")
		if len(lines[i])-len(line) > 3 {
			continue
		}
		ch, n := fenceRun(line)
		if n < 3 || (ch == '`' && strings.ContainsRune(line[n:], '`')) {
			continue
		}
		info := strings.ToLower(strings.TrimSpace(line[n:]))
		if f := strings.Fields(info); len(f) > 0 {
			info = strings.Trim(f[0], "{}.")
		}
		var body []string
		closed := false
		j := i + 1
		for ; j < len(lines); j++ {
			l := strings.TrimSpace(lines[j])
			if c, m := fenceRun(l); c == ch && m >= n && len(l) == m {
				closed = true
				break
			}
			body = append(body, lines[j])
		}
		out = append(out, codeBlock{info: info, body: strings.Join(body, "\n"), closed: closed})
		i = j
	}
	return out
}

// fenceRun returns the fence character that line starts with and how
// many of it there are.
func fenceRun(line string) (byte, int) {
	if line == "" || (line[0] != '`' && line[0] != '~') {
		return 0, 0
	}
	n := 0
	for n < len(line) && line[n] == line[0] {
		n++
	}
	return line[0], n
}

// languageTags are the info strings that mark a block as code of a
// language.
var languageTags = map[string][]string{
	"python":     {"python", "py", "python3"},
	"javascript": {"javascript", "js", "node", "mjs", "cjs", "jsx"},
	"typescript": {"typescript", "ts", "tsx"},
	"bash":       {"bash", "sh", "shell", "zsh"},
}

// lastCodeBlock returns the program of an answer: the last block tagged
// with the language, else the last block not tagged as something else
// (output, JSON, a diff), with a final newline. complete says the answer
// ended as the model meant it to; an answer cut short (at its token
// limit, or refused) inside a block gives no program: that block is a
// program cut short, and an earlier one may be the code it replaces.
func lastCodeBlock(md, language string, complete bool) string {
	blocks := codeBlocks(md)
	if !complete && len(blocks) > 0 && !blocks[len(blocks)-1].closed {
		return ""
	}
	tags := languageTags[language]
	if len(tags) == 0 {
		tags = []string{language}
	}
	pick := -1
	for i, b := range blocks {
		if slices.Contains(tags, b.info) {
			pick = i
		}
	}
	if pick < 0 {
		for i, b := range blocks {
			switch b.info {
			case "text", "json", "diff", "console", "output", "plaintext", "txt":
			default:
				pick = i
			}
		}
	}
	if pick < 0 {
		return ""
	}
	code := strings.TrimRight(blocks[pick].body, "\n ")
	if code == "" {
		return ""
	}
	return code + "\n"
}
