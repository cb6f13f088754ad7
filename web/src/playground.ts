// The playground: an editor, a language and sandbox picker, Run and Stop,
// standard input, the output streamed live, the run's figures, and the AI
// panel on the code and its last run.

import { stream, stopExecution, decodeData, message, ApiError, type ExecResult } from "./api";
import { h, replace, store, fmtBytes, fmtMs, uid, stripAnsi, toast, type Child } from "./dom";
import { Editor } from "./editor";
import { languages, example } from "./examples";
import { sandboxes, onSandboxes, refreshSandboxes, refreshIfStopped, describe, playgroundSandbox, setCurrentSandbox, runEphemeral, startButton } from "./sandboxes-state";
import { aiPanel } from "./ai";
import { LiveOutput } from "./output";

/** The largest output kept in the page; more is counted, not shown. */
const maxShown = 2 << 20;

/** outputPane shows a run's output and figures; the notebook reuses its parts. */
export function verdictBadge(r: ExecResult): HTMLElement {
  const ok = r.verdict === "ok";
  return h("span", { class: "badge " + (ok ? "ok" : "bad"), title: "verdict" }, r.verdict.replace(/_/g, " "));
}

/**
 * figures shows a run's exit and what it used; nothing is measured of a
 * program that never ran (a TypeScript syntax error stops it before it
 * starts), and no zeros are shown for it.
 */
export function figures(r: ExecResult): HTMLElement {
  const ran = r.wall_ms > 0 || r.cpu_ms > 0 || r.peak_memory_bytes > 0;
  return h("span", { class: "figures" },
    h("span", null, "exit ", h("b", null, String(r.exit_code)), r.signal ? ` (${r.signal})` : ""),
    ran ? [
      h("span", null, "wall ", h("b", null, fmtMs(r.wall_ms))),
      h("span", null, "cpu ", h("b", null, fmtMs(r.cpu_ms))),
      h("span", null, "peak memory ", h("b", null, fmtBytes(r.peak_memory_bytes))),
    ] : h("span", { title: "no time or memory was measured: the program did not start" }, "did not run"));
}

/**
 * refusal says why a run in sandbox sb did not start, in the playground's
 * words. The server refuses to overwrite a workspace file of the user's
 * with the program's own (file, changed in Files or by the code; reason
 * file_exists), and says to give the code another filename: the
 * playground has none to give, so it says what can be done here instead.
 */
function refusal(e: unknown, sb: string, file: string): Child {
  if (!(e instanceof ApiError && e.code === "conflict" && e.reason === "file_exists")) return message(e);
  return [`/workspace/${file} in sandbox ${sb} is a file of yours (made or changed outside the playground), and running the code would overwrite it: rename or delete it in `,
    h("a", { href: "#/files" }, "Files"), ", or run in a New ephemeral sandbox."];
}

export function playgroundView(): HTMLElement {
  let lang = store.get("lang", "python");
  if (!languages.some((l) => l.id === lang)) lang = "python";
  const codeOf = (l: string) => store.get("code." + l) || example(l);

  let saveTimer = 0;
  let saveCode = () => {};
  const editorBox = h("div", { class: "editor-box" });
  const editor = new Editor({
    parent: editorBox, doc: codeOf(lang), language: lang, label: "Code editor",
    onRun: () => run(),
    onChange: (doc) => {
      clearTimeout(saveTimer);
      const l = lang;
      saveCode = () => { clearTimeout(saveTimer); saveCode = () => {}; store.set("code." + l, doc); };
      saveTimer = window.setTimeout(() => saveCode(), 250);
    },
  });
  // What was typed in the last moment before a reload or a closed tab is
  // kept too.
  const onPageHide = () => saveCode();
  window.addEventListener("pagehide", onPageHide);

  const langSel = h("select", { id: "language", "aria-label": "Language" },
    languages.map((l) => h("option", { value: l.id, selected: l.id === lang }, l.name))) as HTMLSelectElement;
  langSel.addEventListener("change", () => {
    clearTimeout(saveTimer);
    saveCode = () => {};
    store.set("code." + lang, editor.code);
    lang = langSel.value;
    store.set("lang", lang);
    editor.setLanguage(lang);
    editor.code = codeOf(lang);
    tsHint.hidden = lang !== "typescript";
  });
  // cove strips TypeScript's types and runs the JavaScript left: a type
  // error is not reported, which a TypeScript user would expect.
  const tsHint = h("small", { class: "hint", id: "ts-hint", hidden: lang !== "typescript" },
    "Types are not checked: the code is transpiled and run as JavaScript.");

  // Where the code runs: the sandbox in use (Use in Sandboxes, a new one,
  // the pickers of the other views), or a fresh one each time.
  const sbSel = h("select", { id: "run-in", "aria-label": "Run in" }) as HTMLSelectElement;
  // A stopped sandbox runs nothing: it is started from here.
  const startBtn = startButton({ class: "primary", id: "start-run-in" }, () => sbSel.value);
  const fillSandboxes = () => {
    const cur = playgroundSandbox();
    sbSel.textContent = "";
    sbSel.appendChild(h("option", { value: "" }, "New ephemeral sandbox"));
    for (const s of sandboxes()) sbSel.appendChild(h("option", { value: s.id, selected: s.id === cur }, describe(s)));
    const state = sandboxes().find((s) => s.id === cur)?.state ?? "";
    const wasShown = !startBtn.hidden;
    startBtn.hidden = state !== "stopped" && state !== "error";
    startBtn.title = startBtn.hidden ? "" : `Start ${cur} again, with its files, to run the code in it`;
    // The focus goes on to Run when the button goes.
    if (wasShown && startBtn.hidden && document.activeElement === document.body) runBtn.focus();
  };
  sbSel.addEventListener("change", () => { if (sbSel.value) setCurrentSandbox(sbSel.value); else runEphemeral(); });
  const exampleBtn = h("button", {
    type: "button", title: "Replace the code with this language's starter example",
    onclick: () => { editor.code = example(lang); editor.focus(); },
  }, "Example");
  const runBtn = h("button", { type: "button", class: "primary", id: "run", title: "Run (Ctrl+Enter)", onclick: () => run() }, "Run");
  const stopBtn = h("button", { type: "button", id: "stop", disabled: true, title: "Stop the run", onclick: () => stop() }, "Stop");
  onSandboxes(fillSandboxes);
  fillSandboxes();
  const stdinId = uid("stdin");
  const stdin = h("textarea", { id: stdinId, class: "stdin", rows: 2, spellcheck: "false", placeholder: "Standard input for the program (optional)" }) as HTMLTextAreaElement;
  stdin.value = store.get("stdin");
  stdin.addEventListener("input", () => store.set("stdin", stdin.value));
  stdin.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); }
  });

  const out = h("pre", { id: "output", class: "output", role: "log", "aria-live": "polite", "aria-label": "Output", tabindex: "0" });
  const live = new LiveOutput(out);
  const status = h("div", { id: "run-status", class: "run-status", "aria-live": "polite" }, h("span", { class: "muted" }, "Press Run or Ctrl+Enter."));

  let controller: AbortController | null = null;
  // The last run, with the code and language it ran: the AI panel sends
  // it only while the editor still holds that code, so that an answer
  // about edited (or applied) code is not told another program's output.
  let lastRun: { code: string; language: string; result: ExecResult & { stdout: string; stderr: string } } | null = null;

  const setRunning = (on: boolean) => {
    // A disabled button drops the focus to the page: keyboard users keep
    // it on whichever of Run and Stop can be pressed now.
    const a = document.activeElement;
    const hadFocus = a === runBtn || a === stopBtn;
    runBtn.disabled = on;
    stopBtn.disabled = !on;
    runBtn.textContent = on ? "Running…" : "Run";
    if (hadFocus) (on ? stopBtn : runBtn).focus();
  };

  // The running execution's id, for Stop, once its answer has begun;
  // stopping is set once Stop asked cove to stop it.
  let execId: string | null = null;
  let stopping = false;
  let stopTimer = 0;

  function stop() {
    const ctl = controller;
    if (!ctl) return;
    if (!execId || stopping) {
      // No id to stop it by (the answer has not begun), or a second
      // press: dropping the request kills the run too, but its result
      // is lost.
      ctl.abort();
      return;
    }
    stopping = true;
    replace(status, h("span", { class: "spinner", "aria-hidden": "true" }), " stopping…");
    // The run's stream ends with its result; should it not, in 5 s, the
    // request is dropped.
    stopTimer = window.setTimeout(() => ctl.abort(), 5000);
    stopExecution(execId).catch((e) => {
      // not_found: the run ended meanwhile, and its result is on its
      // way in the stream; dropping that would call it stopped.
      if (!(e instanceof ApiError && e.code === "not_found")) ctl.abort();
    });
  }

  async function run() {
    if (controller) return;
    const code = editor.code;
    const runLang = lang;
    live.clear();
    replace(status, h("span", { class: "spinner", "aria-hidden": "true" }), " running…");
    setRunning(true);
    controller = new AbortController();
    const started = performance.now();
    let shown = 0, hidden = 0;
    let stdoutText = "", stderrText = "";
    const sb = sbSel.value;
    // The file is named, so that a refusal to overwrite it can name it.
    const file = languages.find((l) => l.id === runLang)?.file ?? "";
    const body: Record<string, unknown> = { language: runLang, code };
    if (file) body.filename = file;
    if (stdin.value) body.stdin = stdin.value;
    const path = sb ? `/v1/sandboxes/${encodeURIComponent(sb)}/code` : "/v1/run";
    try {
      let result: ExecResult | null = null;
      await stream(path, body, (ev) => {
        if (ev.type === "stdout" || ev.type === "stderr") {
          // Colour codes would show as raw escapes: the output is text.
          const text = stripAnsi(decodeData(ev));
          if (ev.type === "stdout") stdoutText += text; else stderrText += text;
          if (shown + text.length > maxShown) { hidden += text.length; return; }
          shown += text.length;
          live.write(ev.type, text);
        } else if (ev.type === "exit" && ev.result) {
          result = ev.result;
        }
      }, controller.signal, (id) => { execId = id; });
      // The verdict comes under output shown in full.
      await live.drained();
      if (hidden) {
        const atEnd = out.scrollHeight - out.scrollTop - out.clientHeight < 24;
        out.appendChild(h("span", { class: "note" }, `\n[${fmtBytes(hidden)} more output not shown]`));
        if (atEnd) out.scrollTop = out.scrollHeight;
      }
      if (result) {
        const r = result as ExecResult;
        lastRun = { code, language: runLang, result: { ...r, stdout: stdoutText, stderr: stderrText } };
        // The notes go on a line of their own under the verdict and the
        // figures, so a long one wraps there instead of pushing them about.
        const notes = [
          // The message names the limit when the output hit it.
          (r.stdout_truncated || r.stderr_truncated) && !r.message ? "output truncated at the limit" : "",
          r.message ?? "",
          runLang === "python" && /\bplt\.|matplotlib/.test(code) ? "charts show in the Notebook view; here only text comes back" : "",
        ].filter(Boolean);
        // A run stopped on request says so in its message; one that
        // ended by itself as Stop was pressed says how it ended.
        replace(status, verdictBadge(r), figures(r),
          notes.length ? h("span", { class: "note status-note" }, notes.join("; ")) : null);
      } else {
        replace(status, h("span", { class: "badge bad" }, "no result"), " the run ended without a result");
      }
    } catch (e) {
      await live.drained();
      if (controller?.signal.aborted) {
        // The stream was dropped (Stop before the answer began, or cove
        // did not stop the run in time), and with it the run: the
        // server's figures (CPU time, peak memory) would come at its end,
        // so they are not known here. The wall time is the browser's,
        // and says so; nothing is made up.
        const wall = Math.round(performance.now() - started);
        lastRun = {
          code, language: runLang, result: {
            verdict: "killed", exit_code: -1, wall_ms: wall, cpu_ms: 0, peak_memory_bytes: 0, stdout: stdoutText, stderr: stderrText,
            message: `stopped by the user after about ${fmtMs(wall)}; its CPU time and peak memory were not measured`,
          },
        };
        const unknown = "not known: Stop ends the run before cove reports it";
        replace(status, h("span", { class: "badge bad", title: "verdict" }, "stopped"),
          h("span", { class: "figures" },
            h("span", { title: "measured by the browser, from Run to Stop" }, "wall ", h("b", null, "~" + fmtMs(wall))),
            h("span", { title: "CPU time " + unknown }, "cpu ", h("b", null, "—")),
            h("span", { title: "peak memory " + unknown }, "peak memory ", h("b", null, "—"))),
          h("span", { class: "note status-note" }, "stopped by you: CPU time and peak memory are not known for a stopped run"));
      } else {
        // Said once, in the output, where a TypeScript error's lines (the
        // code, then a caret under it) have room.
        await refreshIfStopped(e);
        out.appendChild(h("span", { class: "error-line", role: "alert" }, out.textContent ? "\n" : "", refusal(e, sb, file)));
        replace(status, h("span", { class: "badge bad" }, "error"), h("span", { class: "note" }, "the run did not start: see the output"));
      }
    } finally {
      controller = null;
      execId = null;
      stopping = false;
      clearTimeout(stopTimer);
      setRunning(false);
    }
  }

  const ai = aiPanel(() => {
    const code = editor.code;
    const ran = lastRun && lastRun.code === code && lastRun.language === lang ? lastRun.result : undefined;
    return { language: lang, code, execution: ran };
  }, (code) => {
    editor.code = code;
    editor.focus();
  });

  refreshSandboxes().catch(() => {});

  const view = h("section", { class: "view playground", "aria-label": "Playground" },
    h("div", { class: "pane editor-pane" },
      h("div", { class: "toolbar" }, langSel, sbSel, startBtn, exampleBtn, h("span", { class: "grow" }), stopBtn, runBtn),
      editorBox,
      h("small", { class: "hint editor-hint", id: "editor-hint" }, "Tab indents; Esc then Tab leaves the editor. Ctrl+Enter runs."),
      tsHint,
      h("label", { for: stdinId, class: "stdin-label" }, "Standard input"),
      stdin),
    h("div", { class: "pane output-pane" },
      h("div", { class: "pane-head" }, h("h2", null, "Output"), status),
      out,
      ai));
  // Ctrl/Cmd+Enter runs from anywhere in the playground (the page itself
  // has the focus after logging in), not only from the editor and the
  // standard input, which handle it themselves.
  const onKey = (e: KeyboardEvent) => {
    if (e.defaultPrevented || e.key !== "Enter" || !(e.ctrlKey || e.metaKey) || e.altKey) return;
    if (view.hidden || !view.isConnected) return;
    if (e.target !== document.body && !view.contains(e.target as Node)) return;
    e.preventDefault();
    run();
  };
  document.addEventListener("keydown", onKey);
  // The session ended: a run (and the AI's answer) ends with it; the
  // code typed last is kept.
  (view as HTMLElement & { onEnd?: () => void }).onEnd = () => {
    saveCode();
    window.removeEventListener("pagehide", onPageHide);
    document.removeEventListener("keydown", onKey);
    clearTimeout(stopTimer);
    controller?.abort();
    live.clear();
    (ai as HTMLElement & { onEnd?: () => void }).onEnd?.();
  };
  return view;
}
