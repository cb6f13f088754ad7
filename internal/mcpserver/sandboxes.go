package mcpserver

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cove-sandbox/cove"
)

type createSandboxInput struct {
	Language           string            `json:"language,omitempty" jsonschema:"the default language of run_code in this sandbox: run_code with this sandbox_id may then leave language out"`
	MemoryMB           int64             `json:"memory_mb,omitempty" jsonschema:"memory limit in MiB, no swap (default 512)"`
	CPUs               float64           `json:"cpus,omitempty" jsonschema:"CPU limit in cores, such as 0.5 or 2 (default 1)"`
	DiskMB             int64             `json:"disk_mb,omitempty" jsonschema:"workspace disk limit in MiB (default 1024)"`
	TimeoutSeconds     float64           `json:"timeout_seconds,omitempty" jsonschema:"time limit of each execution in seconds (default 30)"`
	Network            string            `json:"network,omitempty" jsonschema:"hosts the sandbox may reach over HTTP(S), through cove's proxy, separated by commas: such as pypi.org,files.pythonhosted.org for pip install, *.example.com, or example.com:8080 (default: none, the sandbox reaches nothing)"`
	Env                map[string]string `json:"env,omitempty" jsonschema:"environment variables for everything that runs in the sandbox"`
	Labels             map[string]string `json:"labels,omitempty" jsonschema:"labels to find the sandbox by in list_sandboxes"`
	IdleTimeoutSeconds float64           `json:"idle_timeout_seconds,omitempty" jsonschema:"stop the sandbox after this many seconds without activity; start_sandbox brings it back with its files (default: the server's)"`
	TTLSeconds         float64           `json:"ttl_seconds,omitempty" jsonschema:"delete the sandbox this many seconds after its creation (default: the server's, which may be never)"`
	Keep               bool              `json:"keep,omitempty" jsonschema:"keep the sandbox after this MCP session ends (default false: it is deleted with the session)"`
}

// sandboxOutput describes a sandbox to the model.
type sandboxOutput struct {
	SandboxID      string            `json:"sandbox_id" jsonschema:"the sandbox's id"`
	State          string            `json:"state" jsonschema:"starting, running, stopping, stopped or error"`
	Language       string            `json:"language,omitempty" jsonschema:"the default language of run_code"`
	MemoryBytes    int64             `json:"memory_bytes" jsonschema:"memory limit in bytes"`
	CPUs           float64           `json:"cpus" jsonschema:"CPU limit in cores"`
	DiskBytes      int64             `json:"disk_bytes" jsonschema:"workspace disk limit in bytes"`
	TimeoutSeconds float64           `json:"timeout_seconds" jsonschema:"time limit of one execution in seconds"`
	Network        string            `json:"network,omitempty" jsonschema:"the hosts the sandbox may reach through cove's HTTP proxy (none when empty)"`
	Labels         map[string]string `json:"labels,omitempty" jsonschema:"the sandbox's labels"`
	CreatedAt      time.Time         `json:"created_at" jsonschema:"when it was created"`
	ExpiresAt      *time.Time        `json:"expires_at,omitempty" jsonschema:"when its time to live ends and it is deleted"`
	Session        string            `json:"session,omitempty" jsonschema:"what becomes of it when this MCP session ends, if this session created it"`
}

func toSandboxOutput(sb *cove.Sandbox, fate string) sandboxOutput {
	o := sandboxOutput{
		SandboxID: sb.ID, State: string(sb.State), Language: sb.Language,
		MemoryBytes: sb.Limits.MemoryBytes, CPUs: sb.Limits.CPUs, DiskBytes: sb.Limits.DiskBytes,
		TimeoutSeconds: sb.Limits.Timeout.Seconds(), Labels: sb.Labels, CreatedAt: sb.CreatedAt, Session: fate,
	}
	if sb.Limits.Network != cove.NetworkNone {
		o.Network = sb.Limits.Network
	}
	if !sb.ExpiresAt.IsZero() {
		o.ExpiresAt = &sb.ExpiresAt
	}
	return o
}

// describe is a sandbox in one line.
func (o sandboxOutput) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", o.SandboxID, o.State)
	if o.Language != "" {
		fmt.Fprintf(&b, ", %s", o.Language)
	}
	fmt.Fprintf(&b, ", %s memory, %s CPU, %s disk, %ss per execution", cove.FormatBytes(o.MemoryBytes), number(o.CPUs), cove.FormatBytes(o.DiskBytes), number(o.TimeoutSeconds))
	if o.Network != "" {
		fmt.Fprintf(&b, ", network to %s", o.Network)
	}
	if len(o.Labels) > 0 {
		var ls []string
		for _, k := range slices.Sorted(maps.Keys(o.Labels)) {
			ls = append(ls, k+"="+o.Labels[k])
		}
		fmt.Fprintf(&b, ", labels %s", strings.Join(ls, ","))
	}
	if o.ExpiresAt != nil {
		fmt.Fprintf(&b, ", expires %s", o.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if o.Session != "" {
		fmt.Fprintf(&b, " (%s)", o.Session)
	}
	return b.String()
}

// keepInProcessHint says what to do about keep where sandboxes end with
// the MCP server's process.
const keepInProcessHint = "only a human can make sandboxes outlive this session, by connecting cove mcp to a cove server (COVE_URL and COVE_API_KEY) or using cove serve's MCP endpoint"

// checkKeep refuses keep where the sandboxes run in the server's own
// process, which they cannot outlive.
func (s *Server) checkKeep(tool string, keep bool) error {
	if !keep || !s.opts.InProcess {
		return nil
	}
	hint := "leave keep out: the sandbox then lasts until this session ends; " + keepInProcessHint
	if tool == "run_code" {
		hint = "leave keep out; for a sandbox that stays between calls until this session ends, create_sandbox and run_code with its sandbox_id; " + keepInProcessHint
	}
	return s.failHint(tool, cove.Errorf(cove.CodeInvalid, "keep is not available here: this MCP server runs its sandboxes in its own process (cove mcp without COVE_URL), and they end with it"), hint)
}

func (s *Server) createSandbox(ctx context.Context, st *session, in createSandboxInput) (*mcp.CallToolResult, sandboxOutput, error) {
	if err := s.checkKeep("create_sandbox", in.Keep); err != nil {
		return nil, sandboxOutput{}, err
	}
	spec := cove.SandboxSpec{
		Language: in.Language,
		Limits: cove.Limits{
			MemoryBytes: in.MemoryMB << 20, CPUs: in.CPUs, DiskBytes: in.DiskMB << 20, Timeout: seconds(in.TimeoutSeconds),
			Network: in.Network,
		},
		Env: in.Env, Labels: in.Labels,
		IdleTimeout: seconds(in.IdleTimeoutSeconds), TTL: seconds(in.TTLSeconds),
	}
	sb, err := s.svc.CreateSandbox(ctx, spec)
	if err != nil {
		return nil, sandboxOutput{}, err
	}
	if !st.own(ctx, sb.ID, in.Keep) {
		return nil, sandboxOutput{}, cove.Errorf(cove.CodeUnavailable, "the MCP session ended while the sandbox was being created")
	}
	out := toSandboxOutput(sb, st.fate(sb.ID))
	text := "created sandbox " + out.describe() + "\nIts workspace is /workspace; pass sandbox_id " + sb.ID + " to the other tools."
	return textResult(text), out, nil
}

type listSandboxesInput struct {
	Labels map[string]string `json:"labels,omitempty" jsonschema:"keep sandboxes that carry all of these labels"`
	State  string            `json:"state,omitempty" jsonschema:"keep sandboxes in this state: starting, running, stopping, stopped or error"`
}

type listSandboxesOutput struct {
	Sandboxes []sandboxOutput `json:"sandboxes" jsonschema:"the sandboxes, newest first"`
	More      bool            `json:"more,omitempty" jsonschema:"there are more sandboxes than listed"`
}

func (s *Server) listSandboxes(ctx context.Context, st *session, in listSandboxesInput) (*mcp.CallToolResult, listSandboxesOutput, error) {
	l, err := s.svc.ListSandboxes(ctx, cove.ListOptions{Labels: in.Labels, State: cove.SandboxState(in.State), Limit: 100})
	if err != nil {
		return nil, listSandboxesOutput{}, err
	}
	out := listSandboxesOutput{Sandboxes: []sandboxOutput{}, More: l.NextPageToken != ""}
	var b strings.Builder
	if len(l.Sandboxes) == 0 {
		b.WriteString("no sandboxes; create_sandbox makes one\n")
	}
	for _, sb := range l.Sandboxes {
		o := toSandboxOutput(sb, st.fate(sb.ID))
		out.Sandboxes = append(out.Sandboxes, o)
		b.WriteString(o.describe() + "\n")
	}
	if out.More {
		b.WriteString("(more sandboxes exist; filter by labels or state to see others)\n")
	}
	return textResult(b.String()), out, nil
}

type sandboxInput struct {
	SandboxID string `json:"sandbox_id" jsonschema:"the sandbox's id"`
}

func (s *Server) startSandbox(ctx context.Context, st *session, in sandboxInput) (*mcp.CallToolResult, sandboxOutput, error) {
	sb, err := s.svc.StartSandbox(ctx, in.SandboxID)
	if err != nil {
		return nil, sandboxOutput{}, err
	}
	st.use(sb.ID)
	out := toSandboxOutput(sb, st.fate(sb.ID))
	return textResult("started sandbox " + out.describe()), out, nil
}

type deletedOutput struct {
	Deleted string `json:"deleted" jsonschema:"what was deleted"`
}

func (s *Server) deleteSandbox(ctx context.Context, st *session, in sandboxInput) (*mcp.CallToolResult, deletedOutput, error) {
	if err := s.svc.DeleteSandbox(ctx, in.SandboxID); err != nil {
		return nil, deletedOutput{}, err
	}
	st.deletedSandbox(in.SandboxID)
	return textResult("deleted sandbox " + in.SandboxID), deletedOutput{Deleted: in.SandboxID}, nil
}

// textResult is a tool result of one text.
func textResult(text string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}
}
