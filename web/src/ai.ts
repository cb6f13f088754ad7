// The AI panel: Explain, Review, Optimize and Fix on the editor's code and
// its last run. The answer streams in as Markdown, rendered safely (no raw
// HTML, no script links); "Apply" puts suggested code into the editor.

import { stream, get, message, ApiError, type ExecResult } from "./api";
import { h, replace, withCode } from "./dom";

interface AIStep { tool: string; input: unknown; output: string; is_error?: boolean }
interface AIFinding { severity: string; category: string; line?: number; message: string }
interface AIResult { text: string; code?: string; findings?: AIFinding[]; model?: string; verified?: boolean; stop_reason?: string }
interface AIEvent { type: string; text?: string; step?: AIStep; result?: AIResult }

type Renderer = (md: string) => string;
let renderer: Promise<Renderer> | null = null;

/** markdown loads the Markdown renderer on first use. */
function markdown(): Promise<Renderer> {
  renderer ??= import("markdown-it").then(({ default: MarkdownIt }) => {
    // html: false escapes any HTML in the answer; markdown-it refuses
    // javascript:, vbscript:, file: and data: links (but data: images).
    const md = new MarkdownIt({ html: false, linkify: false, breaks: false });
    const defaultLink = md.renderer.rules.link_open;
    md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
      tokens[idx].attrSet("rel", "noopener noreferrer nofollow");
      tokens[idx].attrSet("target", "_blank");
      return defaultLink ? defaultLink(tokens, idx, options, env, self) : self.renderToken(tokens, idx, options);
    };
    return (s: string) => md.render(s);
  });
  return renderer;
}

const actions = [
  { id: "explain", name: "Explain", title: "Explain what the code does and how its last run ended" },
  { id: "review", name: "Review", title: "Review the code for bugs, security and style" },
  { id: "optimize", name: "Optimize", title: "Suggest faster or clearer code" },
  { id: "fix", name: "Fix", title: "Suggest corrected code for what went wrong in the last run (the fix is not run: Apply it, then Run)" },
];

export interface AIContext { language: string; code: string; execution?: ExecResult }

/** endNote says how an answer ended, when there is more to say than who wrote it. */
function endNote(r: AIResult): string {
  const by = r.model ? ` (${r.model})` : "";
  if (r.stop_reason === "refusal") return `Claude declined to answer${by}.`;
  if (r.stop_reason === "max_tokens") return `The answer was cut at its token limit${by}.`;
  if (!r.text.trim() && !r.code && !r.findings?.length) return `The answer was empty${by}.`;
  return r.model ? `Answer by ${r.model}.` : "Done.";
}

/** aiPanel returns the panel; ctx gives the code, apply takes suggested code. */
export function aiPanel(ctx: () => AIContext, apply: (code: string) => void): HTMLElement {
  const answer = h("div", { class: "ai-answer markdown", id: "ai-answer", "aria-live": "polite", tabindex: "0" });
  const note = h("div", { class: "ai-note muted" }, "Ask about the code in the editor and its last run.");
  const stopBtn = h("button", { type: "button", class: "small", hidden: true, onclick: () => controller?.abort() }, "Stop");
  let controller: AbortController | null = null;

  const buttons = actions.map((a) => h("button", { type: "button", class: "small", "data-action": a.id, title: a.title, onclick: () => ask(a.id) }, a.name));

  async function ask(action: string) {
    if (controller) return;
    const c = ctx();
    if (!c.code.trim()) {
      replace(note, "Write some code first.");
      return;
    }
    controller = new AbortController();
    for (const b of buttons) b.disabled = true;
    stopBtn.hidden = false;
    replace(note, h("span", { class: "spinner", "aria-hidden": "true" }), ` ${action}…`);
    answer.textContent = "";
    const render = await markdown().catch(() => null);
    let text = "";
    let frame = 0;
    const textBox = h("div", { class: "ai-text" });
    const steps = h("div", { class: "ai-steps" });
    answer.append(steps, textBox);
    const paint = () => {
      frame = 0;
      if (render) textBox.innerHTML = render(text); else textBox.textContent = text;
    };
    try {
      const body: Record<string, unknown> = { language: c.language, code: c.code };
      if (c.execution) body.execution = c.execution;
      let result: AIResult | undefined;
      await stream<AIEvent>(`/v1/ai/${action}`, body, (ev) => {
        if (ev.type === "text" && ev.text) {
          text += ev.text;
          frame ||= requestAnimationFrame(paint);
        } else if (ev.type === "step" && ev.step) {
          steps.appendChild(stepView(ev.step));
        } else if (ev.type === "result" && ev.result) {
          result = ev.result;
        }
      }, controller.signal);
      cancelAnimationFrame(frame);
      if (result) {
        text = result.text || text;
        paint();
        if (result.findings?.length) answer.appendChild(findingsView(result.findings));
        if (result.code) {
          const code = result.code;
          answer.appendChild(h("div", { class: "ai-apply" },
            h("button", { type: "button", class: "primary", id: "ai-apply", onclick: () => apply(code) }, "Apply"),
            h("span", { class: "muted" }, " puts the suggested code into the editor" + (result.verified ? " (it ran and passed)" : ""))));
        }
        replace(note, endNote(result));
      } else {
        paint();
        replace(note, "The answer ended early.");
      }
    } catch (e) {
      cancelAnimationFrame(frame);
      if (text) paint();
      if (controller?.signal.aborted) {
        replace(note, "Stopped.");
      } else {
        const msg = explainError(e);
        replace(note, h("span", { class: "error-text", role: "alert" }, withCode(msg)));
        // Without a key the buttons say how to configure one.
        if (e instanceof ApiError && e.code === "unavailable") for (const b of buttons) b.title = msg;
      }
    } finally {
      controller = null;
      for (const b of buttons) b.disabled = false;
      stopBtn.hidden = true;
    }
  }

  // A server without an API key says so from the start, not on a click.
  get<{ analysis?: boolean }>("/v1/version").then((v) => {
    if (v.analysis !== false) return;
    const hint = "Code analysis needs an Anthropic API key: set `ANTHROPIC_API_KEY` where `cove serve` runs, then restart it.";
    replace(note, h("span", { class: "muted", id: "ai-disabled" }, withCode(hint)));
    for (const b of buttons) {
      b.disabled = true;
      b.title = hint.replaceAll("`", "");
    }
  }).catch(() => { /* the first click says what is wrong */ });

  const panel = h("section", { class: "ai-panel", "aria-label": "AI assistant" },
    h("div", { class: "ai-head" }, h("h2", null, "AI"), h("div", { class: "ai-actions", role: "group", "aria-label": "AI actions" }, buttons, stopBtn)),
    note, answer);
  // The session ended (a logout): an answer on its way is dropped.
  (panel as HTMLElement & { onEnd?: () => void }).onEnd = () => controller?.abort();
  return panel;
}

function explainError(e: unknown): string {
  if (e instanceof ApiError && e.status === 404 && e.code === "not_found" && /no such route/.test(e.message)) {
    return "This cove server has no AI assistant.";
  }
  return message(e);
}

function stepView(s: AIStep): HTMLElement {
  return h("details", { class: "ai-step" + (s.is_error ? " failed" : "") },
    h("summary", null, `ran ${s.tool}${s.is_error ? " (failed)" : ""}`),
    h("pre", null, typeof s.input === "string" ? s.input : JSON.stringify(s.input, null, 2)),
    h("pre", null, s.output));
}

function findingsView(fs: AIFinding[]): HTMLElement {
  return h("ul", { class: "findings" }, fs.map((f) => h("li", { class: "finding sev-" + f.severity },
    h("span", { class: "badge" }, f.severity), " ", f.category ? h("span", { class: "muted" }, f.category + " ") : null,
    f.line ? h("span", { class: "muted" }, `line ${f.line}: `) : null, f.message)));
}
