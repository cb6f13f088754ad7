// Small helpers to build the page without a framework.

export type Child = Node | string | number | null | undefined | false | Child[];
type Props = Record<string, unknown>;

// Properties set as DOM properties rather than attributes.
const domProps = new Set(["value", "checked", "disabled", "hidden", "selected", "multiple", "indeterminate"]);

/** h builds an element: h("button", {class: "primary", onclick: f}, "Run"). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props?: Props | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on") && typeof v === "function") {
        el.addEventListener(k.slice(2), v as EventListener);
      } else if (k === "class") {
        el.className = String(v);
      } else if (k === "text") {
        el.textContent = String(v);
      } else if (domProps.has(k)) {
        (el as unknown as Record<string, unknown>)[k] = v;
      } else {
        el.setAttribute(k, v === true ? "" : String(v));
      }
    }
  }
  append(el, children);
  return el;
}

function append(el: Node, children: Child[]) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
  }
}

/** replace empties el and appends children. */
export function replace(el: Element, ...children: Child[]) {
  el.textContent = "";
  append(el, children);
}

// Toasts are quiet while the login page is shown: the views of the
// session that ended have nothing left to report (a request of theirs
// refused for want of a session says so on the login page itself).
let quiet = false;

/** quietToasts drops the toasts shown, and those to come while on. */
export function quietToasts(on: boolean) {
  quiet = on;
  if (on) document.getElementById("toasts")?.replaceChildren();
}

/** toast shows a short message at the bottom of the page. */
export function toast(message: string, kind: "info" | "error" | "ok" = "info") {
  const box = document.getElementById("toasts");
  if (!box || quiet) return;
  while (box.children.length >= 3) box.firstElementChild!.remove();
  const t = h("div", { class: "toast " + kind, role: kind === "error" ? "alert" : "status" }, message,
    h("button", { class: "icon", "aria-label": "Dismiss", onclick: () => t.remove() }, "×"));
  box.appendChild(t);
  setTimeout(() => t.remove(), kind === "error" ? 10000 : 4000);
}

/** fmtBytes writes a byte count for people. */
export function fmtBytes(n: number): string {
  if (!isFinite(n) || n < 0) return "?";
  if (n < 1024) return n + " B";
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024, i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) + " " + units[i];
}

/** fmtMs writes a duration in milliseconds. */
export function fmtMs(ms: number): string {
  if (ms < 1000) return ms + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(2) + " s";
  return Math.floor(ms / 60000) + " min " + Math.round((ms % 60000) / 1000) + " s";
}

/**
 * fmtSpan writes a number of seconds for people, rounded to the nearest
 * second under a minute, minute under a day, and hour above.
 */
export function fmtSpan(s: number): string {
  s = Math.max(0, s);
  if (Math.round(s) < 60) return Math.round(s) + " s";
  const mins = Math.round(s / 60);
  if (mins < 60) return mins + " min";
  if (mins < 1440) {
    const m = mins % 60;
    return Math.floor(mins / 60) + " h" + (m ? " " + m + " min" : "");
  }
  const hours = Math.round(s / 3600);
  const hrs = hours % 24;
  return Math.floor(hours / 24) + " d" + (hrs ? " " + hrs + " h" : "");
}

/** fmtAge writes how long ago a time was. */
export function fmtAge(iso: string): string {
  const t = Date.parse(iso);
  if (!t) return "";
  return fmtSpan((Date.now() - t) / 1000);
}

/** fmtUntil writes how long until a time ("1 h 59 min" for a TTL of 2h made seconds ago). */
export function fmtUntil(iso: string): string {
  const t = Date.parse(iso);
  if (!t) return "";
  return fmtSpan((t - Date.now()) / 1000);
}

/** withCode renders `code` spans of a message as code elements. */
export function withCode(text: string): Child[] {
  return text.split(/(`[^`\n]+`)/).map((part) =>
    part.length > 2 && part.startsWith("`") && part.endsWith("`") ? h("code", null, part.slice(1, -1)) : part);
}

/** stripAnsi removes terminal colour codes from text. */
export function stripAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "");
}

let idSeq = 0;
/** uid returns a fresh id for label/for pairs. */
export function uid(prefix = "f"): string {
  return prefix + "-" + (++idSeq);
}

/** field wraps a control with its label, and its hint, which describes the control. */
export function field(label: string, control: HTMLElement, hint?: string): HTMLElement {
  const id = control.id || uid();
  control.id = id;
  let note: HTMLElement | null = null;
  if (hint) {
    note = h("small", { class: "hint", id: id + "-hint" }, hint);
    control.setAttribute("aria-describedby", note.id);
  }
  return h("div", { class: "field" }, h("label", { for: id }, label), control, note);
}

/** store reads and writes small values kept across reloads. */
export const store = {
  get(key: string, fallback = ""): string {
    try { return localStorage.getItem("cove." + key) ?? fallback; } catch { return fallback; }
  },
  set(key: string, value: string) {
    try { localStorage.setItem("cove." + key, value); } catch { /* storage full or off */ }
  },
};
