// The processes view: a sandbox's background processes (a dev server, a
// watcher, a build), whoever started them (this page, the CLI, an AI
// agent through MCP). List them, start one with the shell, follow one's
// output live with its result once it ends, stop (SIGTERM) or kill
// (SIGKILL) one.

import { get, post, del, getStream, decodeData, message, ApiError, type ExecResult } from "./api";
import { h, replace, toast, fmtAge, fmtBytes, field, uid, stripAnsi, withCode } from "./dom";
import { sandboxPicker, sandboxes, currentSandbox, onSandboxes, refreshSandboxes } from "./sandboxes-state";
import { verdictBadge, figures } from "./playground";
import { LiveOutput } from "./output";

/** A background process as the API describes it. */
interface Proc {
  pid: number;
  name?: string;
  cmd: string[];
  state: string; // running or exited
  started_at: string;
  result?: ExecResult;
}

/** How often the list is asked for again while the view is in sight. */
const pollMs = 4000;
/** The most output kept in the page; older output goes first. */
const maxKept = 1 << 20;

// The column names, also shown beside each value when rows stack as cards.
const columns = ["PID", "Name", "Command", "State", "Started", "Result", "Actions"];

/** commandText writes a process's command: a shell line as it was typed. */
function commandText(cmd: string[]): string {
  if (cmd.length === 3 && /(^|\/)(ba|da)?sh$/.test(cmd[0]) && cmd[1] === "-c") return cmd[2];
  return cmd.map((a) => (a === "" || /[\s"'\\$`]/.test(a) ? JSON.stringify(a) : a)).join(" ");
}

export function processesView(): HTMLElement {
  let sb = ""; // the sandbox shown
  let sbState = ""; // its state when last seen, to notice a start or a stop
  let procs: Proc[] = [];
  let shownKey = ""; // what the table shows, to leave it be when nothing changed
  let selected: number | null = null; // the process whose output is shown
  let seq = 0; // the latest list request: older answers are dropped
  const stopAsked = new Set<number>(); // the processes sent SIGTERM from here
  const busy = new Set<number>(); // the processes a signal is on its way to (a second press waits)
  let gone = false; // the session has ended (a logout): nothing more is asked for
  const life = new AbortController(); // aborted then, with the requests on their way

  const base = () => `/v1/sandboxes/${encodeURIComponent(sb)}`;
  const procURL = (pid: number) => `${base()}/processes/${pid}`;

  // The start form.
  const cmdInput = h("input", {
    type: "text", id: "proc-command", class: "mono", spellcheck: "false", autocapitalize: "off", autocomplete: "off",
    placeholder: "e.g. python3 -m http.server 8000",
  }) as HTMLInputElement;
  const nameInput = h("input", { type: "text", id: "proc-name", spellcheck: "false", autocapitalize: "off", autocomplete: "off", placeholder: "e.g. web" }) as HTMLInputElement;
  const startBtn = h("button", { type: "submit", class: "primary", id: "proc-start" }, "Start process");
  const formError = h("p", { class: "error-text", role: "alert", hidden: true });
  const showFormError = (msg: string) => { replace(formError, withCode(msg)); formError.hidden = false; };
  const form = h("form", {
    class: "proc-form",
    onsubmit: async (e: Event) => {
      e.preventDefault();
      formError.hidden = true;
      const shell = cmdInput.value.trim();
      if (!sb) {
        showFormError("Choose a sandbox, or make a new one, first.");
        return;
      }
      if (!shell) {
        showFormError("Write a command line to run, for example `python3 -m http.server 8000`.");
        cmdInput.focus();
        return;
      }
      const body: Record<string, string> = { shell };
      const name = nameInput.value.trim();
      if (name) body.name = name;
      const at = sb;
      startBtn.disabled = true;
      try {
        const p = await post<Proc>(`${base()}/processes`, body);
        if (at !== sb || gone) return;
        toast(`started process ${p.pid}${p.name ? " (" + p.name + ")" : ""}`, "ok");
        // The form is done with, as the list and the output show the
        // process: both fields clear, ready for the next.
        cmdInput.value = "";
        nameInput.value = "";
        select(p.pid, p);
        await load();
      } catch (err) {
        if (at !== sb || gone) return;
        showFormError("Could not start the process: " + stoppedHint(err));
      } finally {
        startBtn.disabled = false;
      }
    },
  },
  h("div", { class: "proc-cmd" }, field("Command (run with the shell)", cmdInput)),
  h("div", { class: "proc-name" }, field("Name (optional)", nameInput)),
  startBtn);
  form.addEventListener("input", () => { formError.hidden = true; });

  // stoppedHint says what to do about a sandbox that does not run.
  function stoppedHint(e: unknown): string {
    const msg = message(e);
    const state = sandboxes().find((s) => s.id === sb)?.state ?? "";
    if (e instanceof ApiError && e.code === "conflict" && (state === "stopped" || state === "error")) {
      return `${msg}. Press Start above to run it again: its files are kept, but its processes ended when it stopped.`;
    }
    return msg;
  }

  // The list.
  const tbody = h("tbody");
  const tableId = uid("proctable");
  const table = h("table", { class: "table proc-table cards", "aria-labelledby": tableId },
    h("thead", null, h("tr", null, columns.map((c, i) => h("th", { scope: "col" }, i === columns.length - 1 ? h("span", { class: "visually-hidden" }, c) : c)))),
    tbody);
  const listNote = h("p", { class: "proc-note muted", role: "status" });
  const refreshBtn = h("button", { type: "button", id: "proc-refresh", onclick: () => load(true) }, "Refresh");

  async function load(byHand = false) {
    if (gone) return;
    const my = ++seq;
    if (!sb) {
      procs = [];
      shownKey = "";
      replace(tbody);
      table.hidden = true;
      replace(listNote, "Choose a sandbox, or make a new one, to see its processes.");
      listNote.className = "proc-note muted";
      return;
    }
    if (byHand) refreshBtn.disabled = true;
    try {
      const res = await get<{ processes: Proc[] }>(`${base()}/processes`, life.signal);
      if (my !== seq) return;
      procs = res.processes ?? [];
      render();
    } catch (e) {
      if (my !== seq) return;
      // A sandbox stopped elsewhere: the picker's Start shows once the
      // list of sandboxes says so.
      if (e instanceof ApiError && e.code === "conflict") await refreshSandboxes().catch(() => {});
      if (my !== seq) return;
      procs = [];
      shownKey = "";
      replace(tbody);
      table.hidden = true;
      replace(listNote, "Cannot list the processes: " + stoppedHint(e));
      listNote.className = "proc-note error-text";
    } finally {
      if (byHand) refreshBtn.disabled = false;
    }
  }

  function render() {
    const key = JSON.stringify([procs, selected, [...stopAsked]]);
    if (key === shownKey) {
      // Only the ages move on.
      for (const p of procs) {
        const age = tbody.querySelector(`tr[data-pid="${p.pid}"] .age`);
        if (age) age.textContent = fmtAge(p.started_at) + " ago";
      }
      return;
    }
    shownKey = key;
    // The focus stays on the same button of the same process as the rows
    // are made again; on its Output button when that one went.
    const focused = document.activeElement instanceof HTMLElement && tbody.contains(document.activeElement) ? document.activeElement.dataset.key ?? "" : "";
    table.hidden = procs.length === 0;
    if (procs.length === 0) {
      replace(listNote, ...withCode("No processes yet: start one above (a dev server, a watcher, a build), or with `cove spawn`; those an AI agent starts show here too."));
    } else {
      replace(listNote);
    }
    listNote.className = "proc-note muted";
    const [cPID, cName, cCmd, cState, cStarted, cResult, cActions] = columns;
    replace(tbody, procs.map((p) => {
      const running = p.state === "running";
      const label = `process ${p.pid}${p.name ? " (" + p.name + ")" : ""}`;
      const r = p.result;
      return h("tr", { class: p.pid === selected ? "current" : "", "data-pid": String(p.pid) },
        h("td", { class: "mono", "data-label": cPID }, String(p.pid)),
        h("td", { class: p.name ? "" : "blank", "data-label": cName }, p.name ?? ""),
        h("td", { class: "mono proc-command-cell", "data-label": cCmd, title: p.cmd.join(" ") }, commandText(p.cmd)),
        h("td", { "data-label": cState }, h("span", { class: "state " + p.state }, p.state)),
        h("td", { class: "age", "data-label": cStarted, title: new Date(p.started_at).toLocaleString() }, fmtAge(p.started_at) + " ago"),
        h("td", { class: "proc-result" + (running ? " blank" : ""), "data-label": cResult },
          r ? h("span", { class: "proc-result-in" }, verdictBadge(r), figures(r)) : running ? "" : "no result"),
        h("td", { class: "actions", "data-label": cActions },
          h("button", {
            type: "button", class: "small", "data-key": `logs-${p.pid}`, "aria-label": `Output of ${label}`,
            "aria-pressed": String(p.pid === selected), onclick: () => select(p.pid),
          }, "Output"),
          running ? h("button", {
            type: "button", class: "small", "data-key": `stop-${p.pid}`,
            "aria-label": `Stop ${label}`, title: "Ask it to stop (SIGTERM)", onclick: () => stop(p),
          }, "Stop") : null,
          running && stopAsked.has(p.pid) ? h("button", {
            type: "button", class: "small danger", "data-key": `kill-${p.pid}`,
            "aria-label": `Kill ${label}`, title: "End it at once (SIGKILL)", onclick: () => kill(p),
          }, "Kill") : null));
    }));
    if (focused) {
      const again = tbody.querySelector<HTMLElement>(`[data-key="${focused}"]`) ??
        tbody.querySelector<HTMLElement>(`[data-key="logs-${focused.replace(/^\w+-/, "")}"]`);
      again?.focus();
    }
    renderLogActions();
  }

  // Stop and Kill.
  async function signal(p: Proc, how: "stop" | "kill") {
    if (busy.has(p.pid)) return;
    const at = sb;
    busy.add(p.pid);
    try {
      if (how === "stop") {
        // Noted before it is sent: the process may end, and its output
        // show its result, before the answer to the request arrives.
        stopAsked.add(p.pid);
        try {
          await post(`${procURL(p.pid)}/signal`, { signal: "SIGTERM" });
        } catch (e) {
          stopAsked.delete(p.pid);
          throw e;
        }
        toast(`asked process ${p.pid} to stop (SIGTERM)`, "ok");
      } else {
        await del(procURL(p.pid));
        toast(`killed process ${p.pid} (SIGKILL)`, "ok");
      }
    } catch (e) {
      // A process that has exited meanwhile is not signalled: the
      // server says how it ended.
      if (at === sb && !gone) toast(`could not ${how} process ${p.pid}: ${message(e)}`, "error");
    } finally {
      busy.delete(p.pid);
      if (at === sb) await load();
    }
  }
  const stop = (p: Proc) => signal(p, "stop");
  const kill = (p: Proc) => signal(p, "kill");

  // The output of the selected process.
  const logTitle = h("h2", { id: uid("proclog") });
  const logCmd = h("span", { class: "mono muted proc-log-cmd" });
  const out = h("pre", { class: "output proc-output", role: "log", "aria-live": "off", "aria-labelledby": logTitle.id, tabindex: "0" });
  const logStatus = h("div", { class: "run-status proc-status", "aria-live": "polite" });
  const logActions = h("span", { class: "toolbar proc-log-actions" });
  const closeBtn = h("button", { type: "button", class: "small", id: "proc-close", onclick: () => unselect(true) }, "Close");
  const logPane = h("div", { class: "pane proc-log-pane", hidden: true },
    h("div", { class: "pane-head" }, logTitle, logCmd, h("span", { class: "grow" }), logActions,
      closeBtn),
    logStatus,
    out);
  let followCtl: AbortController | null = null;
  let dropped = 0; // characters dropped from its start
  let droppedNote: HTMLElement | null = null;
  // A server that runs for days says a lot: the newest output stays.
  const live = new LiveOutput(out, maxKept, (n) => {
    dropped += n;
    droppedNote ??= h("span", { class: "note" });
    droppedNote.textContent = `[${fmtBytes(dropped)} of earlier output not shown]\n`;
    if (out.firstChild !== droppedNote) out.insertBefore(droppedNote, out.firstChild);
  });
  let ended = false; // the output followed has come to its end

  function renderLogActions() {
    const p = procs.find((x) => x.pid === selected);
    // The focus stays on the button pressed; on Close once the process
    // has exited and its buttons went.
    const had = document.activeElement instanceof HTMLElement && logActions.contains(document.activeElement) ? document.activeElement.dataset.key : "";
    if (!p || p.state !== "running") {
      replace(logActions);
    } else {
      replace(logActions,
        h("button", { type: "button", class: "small", "data-key": "stop", title: "Ask it to stop (SIGTERM)", onclick: () => stop(p) }, "Stop"),
        stopAsked.has(p.pid) ? h("button", { type: "button", class: "small danger", "data-key": "kill", title: "End it at once (SIGKILL)", onclick: () => kill(p) }, "Kill") : null);
    }
    if (had) (logActions.querySelector<HTMLElement>(`[data-key="${had}"]`) ?? closeBtn).focus();
  }

  function select(pid: number, p = procs.find((x) => x.pid === pid)) {
    selected = pid;
    follow(pid, p);
    render();
  }

  function unselect(byHand = false) {
    const was = selected;
    followCtl?.abort();
    followCtl = null;
    selected = null;
    logPane.hidden = true;
    render();
    if (byHand && was !== null) tbody.querySelector<HTMLElement>(`[data-key="logs-${was}"]`)?.focus();
  }

  async function follow(pid: number, p?: Proc) {
    if (gone) return;
    followCtl?.abort();
    const ctl = new AbortController();
    followCtl = ctl;
    logPane.hidden = false;
    replace(logTitle, `Process ${pid}`, p?.name ? " · " + p.name : "");
    logCmd.textContent = p ? commandText(p.cmd) : "";
    logCmd.title = p ? p.cmd.join(" ") : "";
    live.clear();
    dropped = 0;
    droppedNote = null;
    ended = false;
    replace(logStatus, h("span", { class: "spinner", "aria-hidden": "true" }), " following its output…");
    let result: ExecResult | null = null;
    try {
      await getStream(`${procURL(pid)}/logs?follow=true`, (ev) => {
        if (ctl.signal.aborted) return;
        if (ev.type === "stdout" || ev.type === "stderr") {
          live.write(ev.type, stripAnsi(decodeData(ev)));
        } else if (ev.type === "exit" && ev.result) {
          result = ev.result;
        }
      }, ctl.signal);
      if (ctl.signal.aborted) return;
      // The result comes under output shown in full.
      await live.drained();
      if (ctl.signal.aborted) return;
      ended = true;
      if (result) {
        const r = result as ExecResult;
        const notes = [
          stopAsked.has(pid) ? "stopped by you" : "",
          (r.stdout_truncated || r.stderr_truncated) && !r.message ? "the start of its output is no longer kept (the last 1 MiB of each stream is)" : "",
          r.message ?? "",
        ].filter(Boolean);
        replace(logStatus, h("span", { class: "muted" }, "exited:"), verdictBadge(r), figures(r),
          notes.length ? h("span", { class: "note status-note" }, notes.join("; ")) : null);
      } else {
        replace(logStatus, h("span", { class: "badge bad" }, "no result"), " the output ended without the process's result");
      }
      if (live.empty) out.appendChild(h("span", { class: "note" }, "(no output)"));
      // It has exited: the list says so too.
      await load();
    } catch (e) {
      if (ctl.signal.aborted) return;
      replace(logStatus, h("span", { class: "error-text", role: "alert" }, "Cannot follow its output: " + stoppedHint(e)),
        h("button", { type: "button", class: "small", onclick: () => follow(pid, procs.find((x) => x.pid === pid) ?? p) }, "Follow again"));
      load();
    } finally {
      if (followCtl === ctl) followCtl = null;
    }
  }

  const view = h("section", { class: "view processes", "aria-label": "Processes" },
    sandboxPicker("Sandbox", () => load()),
    h("div", { class: "pane proc-list-pane" },
      form,
      formError,
      h("div", { class: "pane-head" }, h("h2", { id: tableId }, "Processes"), h("span", { class: "grow" }), refreshBtn),
      h("div", { class: "table-wrap" }, table),
      listNote),
    logPane);

  // Another sandbox chosen: its processes, nothing followed. The same
  // one started or stopped: its list again.
  const sync = () => {
    if (gone) return;
    const cur = currentSandbox();
    const state = sandboxes().find((s) => s.id === cur)?.state ?? "";
    if (cur === sb) {
      if (state !== sbState) {
        sbState = state;
        load();
      }
      return;
    }
    sb = cur;
    sbState = state;
    stopAsked.clear();
    busy.clear();
    formError.hidden = true;
    followCtl?.abort();
    followCtl = null;
    selected = null;
    logPane.hidden = true;
    procs = [];
    shownKey = "";
    replace(tbody);
    table.hidden = true;
    replace(listNote, sb ? "Loading…" : "");
    load();
  };
  onSandboxes(sync);
  refreshSandboxes().then(sync).catch((e) => toast(message(e), "error"));
  sync();

  // Processes come and go from elsewhere (the CLI, an agent): while the
  // view is in sight, the list is asked for again now and then.
  const poll = setInterval(() => {
    if (view.hidden || document.visibilityState !== "visible" || !sb) return;
    load();
  }, pollMs);

  const el = view as HTMLElement & { onShow?: () => void; onHide?: () => void; onEnd?: () => void };
  el.onShow = () => {
    load();
    if (selected !== null && !followCtl && !ended) follow(selected, procs.find((x) => x.pid === selected));
  };
  // Out of sight, the output is not followed (the stream is dropped);
  // it is read again from its start when the view comes back, unless it
  // had come to its end.
  el.onHide = () => {
    followCtl?.abort();
    followCtl = null;
  };
  // The session ended: the poll, the output followed and the list asked
  // for end with it.
  el.onEnd = () => {
    gone = true;
    seq++;
    clearInterval(poll);
    life.abort();
    followCtl?.abort();
    followCtl = null;
    live.clear();
  };
  return view;
}
