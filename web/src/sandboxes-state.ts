// The sandboxes the views share: the list as last fetched, the sandbox
// that the files, notebook and terminal views work in, and a picker for it.

import { get, post, message, ApiError } from "./api";
import { h, store, toast } from "./dom";

/** A sandbox as the API describes it. */
export interface Sandbox {
  id: string;
  state: string;
  language?: string;
  limits: Record<string, number | string>;
  env?: Record<string, string>;
  labels?: Record<string, string>;
  /** The id of the key it belongs to. */
  owner?: string;
  ttl?: string;
  idle_timeout?: string;
  created_at: string;
  last_active_at: string;
  expires_at?: string;
}

let list: Sandbox[] = [];
const listeners = new Set<() => void>();

/** sandboxes returns the list as last fetched. */
export function sandboxes(): Sandbox[] { return list; }

/** onSandboxes calls f whenever the list or the current sandbox changes. */
export function onSandboxes(f: () => void): () => void {
  listeners.add(f);
  return () => listeners.delete(f);
}

function notify() { for (const f of listeners) f(); }

// The session the list belongs to: a list asked for in an ended one is
// dropped.
let session = 0;

/**
 * endSandboxes forgets the list and every listener of it: the session
 * they belong to has ended (a logout), and its views with it.
 */
export function endSandboxes() {
  session++;
  list = [];
  listeners.clear();
  active = false;
  clearTimeout(nextTimer);
}

// The list is fetched again when a listed sandbox is due to go (its TTL)
// or to stop (its idle timeout), at least once a minute while the page is
// seen, and when the page comes back into sight: sandboxes change outside
// this page (the API, the reaper), and one that is gone must not be
// offered. active is set by the first fetch of a session.
let active = false;
let nextTimer = 0;
let lastFetch = 0;
const everyMs = 60000;

/** parseDuration reads a Go duration ("1h30m0s", "90s") in seconds; NaN if it is none. */
export function parseDuration(d: string | undefined): number {
  if (!d) return NaN;
  const units: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 1e-3, "µs": 1e-6, us: 1e-6, ns: 1e-9 };
  let total = 0, rest = d.trim();
  if (rest === "0") return 0;
  while (rest) {
    const m = /^(\d+(?:\.\d+)?)(h|ms|m|s|µs|us|ns)/.exec(rest);
    if (!m) return NaN;
    total += Number(m[1]) * units[m[2]];
    rest = rest.slice(m[0].length);
  }
  return total;
}

// dueAt is when the server next changes a sandbox by itself (ms since
// the epoch), or 0: its TTL ends, or a running one has been idle long
// enough to be stopped.
function dueAt(s: Sandbox): number {
  let due = s.expires_at ? Date.parse(s.expires_at) || 0 : 0;
  const idle = parseDuration(s.idle_timeout);
  if (s.state === "running" && idle > 0) {
    const stop = (Date.parse(s.last_active_at) || 0) + idle * 1000;
    if (stop && (!due || stop < due)) due = stop;
  }
  return due;
}

function schedule() {
  clearTimeout(nextTimer);
  if (!active) return;
  const now = Date.now();
  let wait = everyMs;
  for (const s of list) {
    const due = dueAt(s);
    // One well past due is one the server keeps (a busy sandbox is not
    // stopped for idling): the minute's fetch sees it.
    if (!due || due < now - 10000) continue;
    // A moment after it is due, for the reaper to act.
    wait = Math.min(wait, Math.max(2000, due - now + 1500));
  }
  nextTimer = window.setTimeout(() => {
    if (!active) return;
    if (document.hidden) { schedule(); return; }
    refreshSandboxes().catch(() => schedule());
  }, wait);
}

// Back in sight (another tab, another window): fetched again, at most
// every few seconds.
function onBack() {
  if (!active || document.hidden || Date.now() - lastFetch < 5000) return;
  refreshSandboxes().catch(() => {});
}
document.addEventListener("visibilitychange", onBack);
window.addEventListener("focus", onBack);

/** refreshSandboxes fetches the list. */
export async function refreshSandboxes(): Promise<Sandbox[]> {
  const my = session;
  const all: Sandbox[] = [];
  let token = "";
  for (let i = 0; i < 20; i++) {
    const page = await get<{ sandboxes: Sandbox[]; next_page_token?: string }>("/v1/sandboxes?limit=100" + (token ? "&page_token=" + encodeURIComponent(token) : ""));
    if (my !== session) return list;
    all.push(...(page.sandboxes ?? []));
    token = page.next_page_token ?? "";
    if (!token) break;
  }
  // A deleted sandbox may still be listed for a while: it is gone.
  list = all.filter((s) => s.state !== "deleted");
  lastFetch = Date.now();
  active = true;
  schedule();
  notify();
  return list;
}

/**
 * refreshIfStopped fetches the list again when the server refused a call
 * to a sandbox as not running (a conflict): stopped elsewhere (the API,
 * the CLI, its idle timeout), it shows as stopped, with its Start button,
 * now rather than at the next poll.
 */
export async function refreshIfStopped(e: unknown): Promise<void> {
  if (e instanceof ApiError && e.code === "conflict") await refreshSandboxes().catch(() => {});
}

/** stateOf is a listed sandbox's state, or "". */
export function stateOf(id: string): string {
  return list.find((s) => s.id === id)?.state ?? "";
}

/**
 * currentSandbox is the sandbox the views work in: the one chosen last,
 * if it is listed; none before the list is fetched, or once it has gone.
 */
export function currentSandbox(): string {
  const id = store.get("sandbox");
  return id && list.some((s) => s.id === id) ? id : "";
}

/**
 * setCurrentSandbox makes a sandbox the one the views work in, the
 * playground's too (Use in Sandboxes, a new sandbox, a picker).
 */
export function setCurrentSandbox(id: string) {
  store.set("sandbox", id);
  store.set("playground.ephemeral", "");
  notify();
}

/**
 * playgroundSandbox is where the playground runs: the current sandbox,
 * unless "New ephemeral sandbox" was chosen there since ("" then).
 */
export function playgroundSandbox(): string {
  return store.get("playground.ephemeral") === "1" ? "" : currentSandbox();
}

/** runEphemeral makes the playground run in a fresh sandbox each time, until a sandbox is chosen again. */
export function runEphemeral() {
  store.set("playground.ephemeral", "1");
  notify();
}

/** createSandbox makes a sandbox with the server's defaults and makes it current. */
export async function createSandbox(spec: Record<string, unknown> = {}): Promise<Sandbox> {
  const sb = await post<Sandbox>("/v1/sandboxes", spec);
  await refreshSandboxes().catch(() => {});
  setCurrentSandbox(sb.id);
  return sb;
}

/** describe names a sandbox in a list. */
export function describe(s: Sandbox): string {
  const labels = Object.entries(s.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(" ");
  return `${s.id} · ${s.state}${s.language ? " · " + s.language : ""}${labels ? " · " + labels : ""}`;
}

/**
 * startButton is a hidden Start button for a stopped sandbox: it starts
 * the sandbox that id() names, says how that went and refreshes the list.
 */
export function startButton(attrs: Record<string, string>, id: () => string, onStarted?: () => void): HTMLButtonElement {
  const btn = h("button", {
    type: "button", hidden: true, ...attrs,
    onclick: async () => {
      const sb = id();
      if (!sb) return;
      btn.disabled = true;
      try {
        await post(`/v1/sandboxes/${encodeURIComponent(sb)}/start`);
        toast(`started ${sb}`, "ok");
        await refreshSandboxes().catch(() => {});
        onStarted?.();
      } catch (e) {
        toast(`could not start ${sb}: ${message(e)}`, "error");
      } finally {
        btn.disabled = false;
      }
    },
  }, "Start") as HTMLButtonElement;
  return btn;
}

/**
 * sandboxPicker is the bar at the top of the files, notebook and terminal
 * views: choose the sandbox, or make one; a stopped one has a Start button
 * beside it, and onStarted is called once it runs.
 */
export function sandboxPicker(label: string, onStarted?: () => void): HTMLElement {
  const sel = h("select", { "aria-label": label, class: "sandbox-select" }) as HTMLSelectElement;
  const start = startButton({ class: "primary picker-start" }, currentSandbox, onStarted);
  const fill = () => {
    const cur = currentSandbox();
    sel.textContent = "";
    if (list.length === 0) sel.appendChild(h("option", { value: "" }, "no sandbox yet"));
    else if (!cur) sel.appendChild(h("option", { value: "", selected: true }, "choose a sandbox"));
    for (const s of list) sel.appendChild(h("option", { value: s.id, selected: s.id === cur }, describe(s)));
    // A stopped sandbox, or one that died (state error), starts again
    // with its files.
    const state = list.find((s) => s.id === cur)?.state ?? "";
    const wasShown = !start.hidden;
    start.hidden = state !== "stopped" && state !== "error";
    start.title = start.hidden ? "" : `Start ${cur} again, with its files`;
    // The focus goes on to the select when the button goes.
    if (wasShown && start.hidden && document.activeElement === document.body) sel.focus();
  };
  sel.addEventListener("change", () => setCurrentSandbox(sel.value));
  const create = h("button", {
    type: "button",
    onclick: async () => {
      create.disabled = true;
      try {
        const sb = await createSandbox({});
        toast(`created sandbox ${sb.id}`, "ok");
      } catch (e) {
        toast("could not create a sandbox: " + message(e), "error");
      } finally {
        create.disabled = false;
      }
    },
  }, "New sandbox");
  const bar = h("div", { class: "picker" }, h("span", { class: "picker-label" }, label), sel, start, create);
  onSandboxes(fill);
  fill();
  return bar;
}
