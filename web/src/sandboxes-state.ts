// The sandboxes the views share: the list as last fetched, the sandbox
// that the files, notebook and terminal views work in, and a picker for it.

import { get, post, message } from "./api";
import { h, store, toast } from "./dom";

/** A sandbox as the API describes it. */
export interface Sandbox {
  id: string;
  state: string;
  language?: string;
  limits: Record<string, number | string>;
  env?: Record<string, string>;
  labels?: Record<string, string>;
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
}

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
  list = all;
  notify();
  return list;
}

/** currentSandbox is the sandbox the files, notebook and terminal views use. */
export function currentSandbox(): string {
  const id = store.get("sandbox");
  return list.length === 0 || list.some((s) => s.id === id) ? id : "";
}

export function setCurrentSandbox(id: string) {
  store.set("sandbox", id);
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
 * sandboxPicker is the bar at the top of the files, notebook and terminal
 * views: choose the sandbox, or make one; a stopped one has a Start button
 * beside it, and onStarted is called once it runs.
 */
export function sandboxPicker(label: string, onStarted?: () => void): HTMLElement {
  const sel = h("select", { "aria-label": label, class: "sandbox-select" }) as HTMLSelectElement;
  const start = h("button", {
    type: "button", class: "primary picker-start", hidden: true,
    onclick: async () => {
      const id = currentSandbox();
      if (!id) return;
      start.disabled = true;
      try {
        await post(`/v1/sandboxes/${encodeURIComponent(id)}/start`);
        toast(`started ${id}`, "ok");
        await refreshSandboxes().catch(() => {});
        onStarted?.();
      } catch (e) {
        toast(`could not start ${id}: ${message(e)}`, "error");
      } finally {
        start.disabled = false;
      }
    },
  }, "Start");
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
