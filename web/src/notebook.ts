// The notebook: cells that run in a stateful context of the sandbox (its
// variables, imports and functions persist from cell to cell). Charts
// come as images, DataFrames as HTML tables (shown in a sandboxed frame
// that runs no script), errors with their traceback. Run one cell or all;
// interrupt; restart the context.

import { post, request, stream, decodeData, message, ApiError, type ExecEvent, type ExecResult } from "./api";
import { h, replace, store, toast, fmtMs, stripAnsi } from "./dom";
import { Editor } from "./editor";
import { languages } from "./examples";
import { sandboxPicker, currentSandbox, onSandboxes, refreshSandboxes, refreshIfStopped, stateOf } from "./sandboxes-state";

interface Context { id: string; language: string; runs: number; restarts: number; busy: boolean }

const starter: Record<string, string[]> = {
  python: [
    "import math\nradius = 3\nmath.pi * radius ** 2",
    "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nxs = [x / 10 for x in range(100)]\nplt.plot(xs, [math.sin(x) for x in xs])\nplt.title('sin')\nplt.show()",
  ],
  javascript: ["const xs = [1, 2, 3];\nxs.map((x) => x * x)"],
  typescript: ["const greet = (name: string): string => `Hello, ${name}`;\ngreet('cove')"],
};

interface Cell { editor: Editor; out: HTMLElement; count: HTMLElement; el: HTMLElement; runBtn: HTMLButtonElement }

export function notebookView(): HTMLElement {
  let lang = store.get("nb.lang", "python");
  if (!starter[lang]) lang = "python";
  const contexts = new Map<string, string>(); // sandbox/language → context id
  const cells: Cell[] = [];
  const list = h("div", { class: "cells" });
  const status = h("span", { class: "muted nb-status", "aria-live": "polite" });
  let running: { cell: Cell; ctl: AbortController } | null = null;
  let queue = Promise.resolve();
  let gone = false; // the session has ended (a logout): no cell runs again
  // Cells run, per context (sandbox and language), as the server numbers
  // them in tracebacks ("<cell 3>").
  const counters = new Map<string, number>();

  const langSel = h("select", { "aria-label": "Notebook language" },
    ["python", "javascript", "typescript"].map((l) => h("option", { value: l, selected: l === lang }, languages.find((x) => x.id === l)?.name ?? l))) as HTMLSelectElement;
  langSel.addEventListener("change", () => {
    save();
    lang = langSel.value;
    store.set("nb.lang", lang);
    load();
  });

  const key = () => currentSandbox() + "/" + lang;

  function save() {
    store.set("nb.cells." + lang, JSON.stringify(cells.map((c) => c.editor.code)));
  }

  function load() {
    for (const c of cells) c.editor.destroy();
    cells.length = 0;
    list.textContent = "";
    let codes: string[] = starter[lang];
    try {
      const saved = JSON.parse(store.get("nb.cells." + lang, "null"));
      if (Array.isArray(saved) && saved.length) codes = saved.map(String);
    } catch { /* keep the starter */ }
    for (const code of codes) addCell(code);
  }

  function addCell(code = "", after?: Cell) {
    const out = h("div", { class: "cell-out", "aria-live": "polite" });
    const count = h("span", { class: "count mono", "aria-hidden": "true" }, "[ ]");
    const box = h("div", { class: "cell-editor" });
    const runBtn = h("button", { type: "button", class: "small primary", title: "Run (Shift+Enter)" }, "Run") as HTMLButtonElement;
    const el = h("div", { class: "cell" });
    const editor = new Editor({
      parent: box, doc: code, language: lang, label: "Notebook cell",
      onRun: () => runCell(cell), onShiftEnter: () => { runCell(cell); focusNext(cell); },
      onChange: () => save(),
    });
    const cell: Cell = { editor, out, count, el, runBtn };
    runBtn.addEventListener("click", () => runCell(cell));
    el.append(
      h("div", { class: "cell-head" }, count, runBtn,
        h("button", { type: "button", class: "small", "aria-label": "Add a cell below", onclick: () => addCell("", cell).editor.focus() }, "+ Cell"),
        h("button", { type: "button", class: "small danger", "aria-label": "Delete this cell", onclick: () => removeCell(cell) }, "Delete")),
      box, out);
    const at = after ? cells.indexOf(after) + 1 : cells.length;
    cells.splice(at, 0, cell);
    list.insertBefore(el, cells[at + 1]?.el ?? null);
    save();
    return cell;
  }

  function removeCell(c: Cell) {
    const i = cells.indexOf(c);
    if (i < 0) return;
    c.editor.destroy();
    c.el.remove();
    cells.splice(i, 1);
    save();
  }

  function focusNext(c: Cell) {
    const i = cells.indexOf(c);
    (cells[i + 1] ?? addCell("")).editor.focus();
  }

  async function context(fresh = false): Promise<string> {
    const sb = currentSandbox();
    if (!sb) throw new Error("choose a sandbox, or make a new one, first");
    const k = key();
    const have = contexts.get(k);
    if (have && !fresh) return have;
    const ctx = await post<Context>(`/v1/sandboxes/${encodeURIComponent(sb)}/contexts`, { language: lang });
    contexts.set(k, ctx.id);
    return ctx.id;
  }

  function runCell(c: Cell): Promise<boolean> {
    const p = queue.then(() => execute(c));
    queue = p.then(() => {}, () => {});
    return p;
  }

  async function execute(c: Cell): Promise<boolean> {
    if (gone) return false;
    const code = c.editor.code;
    replace(c.out);
    c.count.textContent = "[*]";
    c.el.classList.add("running");
    const ctl = new AbortController();
    running = { cell: c, ctl };
    let ok = true;
    try {
      for (let attempt = 0; ; attempt++) {
        const cid = await context(attempt > 0);
        try {
          await stream(`/v1/sandboxes/${encodeURIComponent(currentSandbox())}/contexts/${encodeURIComponent(cid)}/run`, { code }, (ev) => {
            if (ev.type === "exit" && ev.result) ok = ev.result.verdict === "ok";
            if (ev.type === "exception") ok = false;
            renderEvent(c.out, ev, cells.indexOf(c) + 1);
          }, ctl.signal);
          break;
        } catch (e) {
          // The context is gone (the sandbox restarted): make a new one, once.
          if (attempt === 0 && e instanceof ApiError && e.status === 404) continue;
          throw e;
        }
      }
      const n = (counters.get(key()) ?? 0) + 1;
      counters.set(key(), n);
      c.count.textContent = `[${n}]`;
    } catch (e) {
      ok = false;
      c.count.textContent = "[!]";
      await refreshIfStopped(e);
      c.out.appendChild(h("div", { class: "error-text", role: "alert" }, stoppedHint(e)));
    } finally {
      running = null;
      c.el.classList.remove("running");
    }
    return ok;
  }

  async function runAll() {
    for (const c of cells) {
      if (!(await runCell(c))) break;
    }
  }

  async function interrupt() {
    const sb = currentSandbox();
    const cid = contexts.get(key());
    if (!running || !cid) return;
    try {
      await request("POST", `/v1/sandboxes/${encodeURIComponent(sb)}/contexts/${encodeURIComponent(cid)}/interrupt`);
    } catch (e) {
      running?.ctl.abort();
      toast("could not interrupt: " + message(e), "error");
    }
  }

  async function restart() {
    const sb = currentSandbox();
    const cid = contexts.get(key());
    // Nothing undoes it: the variables, imports and functions the cells
    // made are gone.
    if (cid && !confirm("Restart the context? Its variables, imports and functions are lost: the cells must run again.")) return;
    replace(status, "restarting…");
    try {
      if (cid) await post(`/v1/sandboxes/${encodeURIComponent(sb)}/contexts/${encodeURIComponent(cid)}/restart`);
      else await context();
      counters.set(key(), 0);
      for (const c of cells) { c.count.textContent = "[ ]"; replace(c.out); }
      replace(status, "the context restarted: variables are gone");
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) contexts.delete(key());
      await refreshIfStopped(e);
      replace(status, h("span", { class: "error-text", role: "alert" }, "could not restart: " + stoppedHint(e)));
    }
  }

  // stoppedHint says what to do about a sandbox that does not run.
  function stoppedHint(e: unknown): string {
    const msg = message(e);
    const state = stateOf(currentSandbox());
    if (e instanceof ApiError && e.code === "conflict" && (state === "stopped" || state === "error")) {
      return `${msg}. Press Start above to run it again: the cells then run in a new context, without the variables of the old one.`;
    }
    return msg;
  }

  const view = h("section", { class: "view notebook", "aria-label": "Notebook" },
    sandboxPicker("Sandbox"),
    h("div", { class: "pane" },
      h("div", { class: "toolbar" }, langSel,
        h("button", { type: "button", class: "primary", id: "run-all", onclick: () => runAll() }, "Run all"),
        h("button", { type: "button", id: "interrupt", onclick: () => interrupt(), title: "Interrupt the running cell" }, "Interrupt"),
        h("button", { type: "button", id: "restart", onclick: () => restart(), title: "Restart the context: its variables are lost" }, "Restart"),
        h("button", { type: "button", onclick: () => addCell("").editor.focus() }, "+ Cell"),
        status),
      list));
  onSandboxes(() => replace(status));
  refreshSandboxes().catch(() => {});
  load();
  // The session ended: the cell running stops, and those queued do not run.
  (view as HTMLElement & { onEnd?: () => void }).onEnd = () => {
    gone = true;
    running?.ctl.abort();
  };
  return view;
}

// renderEvent adds one event of a cell's run to its output.
function renderEvent(out: HTMLElement, ev: ExecEvent, cellNo: number) {
  switch (ev.type) {
    case "stdout":
    case "stderr": {
      const text = decodeData(ev);
      const last = out.lastElementChild as HTMLElement | null;
      if (last?.classList.contains("stream") && last.dataset.kind === ev.type) last.appendChild(document.createTextNode(text));
      else out.appendChild(h("pre", { class: "stream " + ev.type, "data-kind": ev.type }, text));
      break;
    }
    case "result":
    case "display":
      if (ev.bundle) out.appendChild(renderBundle(ev.bundle, ev.type, () => `chart ${out.querySelectorAll("img.plot").length + 1} of cell ${cellNo}`));
      break;
    case "exception": {
      const x = ev.exception!;
      out.appendChild(h("div", { class: "exception", role: "alert" },
        h("div", { class: "exc-head" }, h("b", null, x.name), ": ", x.message, x.line ? h("span", { class: "muted" }, ` (line ${x.line})`) : null),
        x.traceback?.length ? h("pre", { class: "traceback" }, stripAnsi(x.traceback.map((l) => (l.endsWith("\n") ? l : l + "\n")).join(""))) : null));
      break;
    }
    case "exit": {
      const r = ev.result as ExecResult;
      if (!r) break;
      const bad = r.verdict !== "ok" && r.verdict !== "error";
      // An interrupted cell stopped, but its context and variables live on.
      const interrupted = r.message === "interrupted";
      out.appendChild(h("div", { class: "cell-foot muted" },
        interrupted ? h("span", { class: "badge" }, "interrupted") : bad ? h("span", { class: "badge bad" }, r.verdict.replace(/_/g, " ")) : null,
        ` ${fmtMs(r.wall_ms)}`,
        interrupted ? h("span", { class: "note" }, " variables are kept") : r.message ? h("span", { class: "note" }, " " + r.message) : null));
      break;
    }
  }
}

// renderBundle shows the richest representation of a MIME bundle that
// is safe to show.
function renderBundle(b: Record<string, string>, kind: string, name: () => string): HTMLElement {
  const wrap = h("div", { class: "bundle " + kind });
  // An image is named by its place; its text form adds to that unless it
  // is only a repr such as matplotlib's "<Figure size 640x480 with 1 Axes>".
  const text = (b["text/plain"] ?? "").trim();
  const alt = name() + (text && !/^<[\s\S]*>$/.test(text) ? ": " + text : "");
  for (const img of ["image/png", "image/jpeg", "image/gif"]) {
    if (b[img]) {
      wrap.appendChild(h("img", { src: `data:${img};base64,${b[img].replace(/\s/g, "")}`, alt, class: "plot" }));
      return wrap;
    }
  }
  if (b["image/svg+xml"]) {
    // As an image, SVG runs no script.
    const svg = b["image/svg+xml"];
    wrap.appendChild(h("img", { src: "data:image/svg+xml;base64," + btoa(unescape(encodeURIComponent(svg))), alt, class: "plot" }));
    return wrap;
  }
  if (b["text/html"]) {
    wrap.appendChild(htmlFrame(b["text/html"]));
    return wrap;
  }
  wrap.appendChild(h("pre", { class: "stream result" }, b["text/plain"] ?? JSON.stringify(Object.keys(b))));
  return wrap;
}

// htmlFrame shows HTML from the sandbox in a frame that may not run
// script: the page's session stays out of the sandbox's reach.
function htmlFrame(html: string): HTMLElement {
  const style = "<style>:root{color-scheme:light dark;font:13px system-ui,sans-serif}body{margin:4px}" +
    "table{border-collapse:collapse}th,td{border:1px solid #8886;padding:2px 8px;text-align:right}" +
    "thead th{background:#8882}</style>";
  const frame = h("iframe", { sandbox: "allow-same-origin", class: "html-out", title: "HTML output", referrerpolicy: "no-referrer" }) as HTMLIFrameElement;
  frame.srcdoc = "<!doctype html><meta charset=utf-8>" + style + html;
  frame.addEventListener("load", () => {
    const d = frame.contentDocument;
    if (d?.body) frame.style.height = Math.min(600, d.body.scrollHeight + 12) + "px";
  });
  return frame;
}
