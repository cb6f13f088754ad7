// cove's web UI: log in, then the playground, sandboxes, files, notebook,
// terminal, processes and (for admins) keys views, switched by the URL's
// hash (#/files) or Alt+1..7.

import "./styles.css";
import "@xterm/xterm/css/xterm.css";
import { get, message, onUnauthorized, ApiError } from "./api";
import { h, replace, toast, quietToasts } from "./dom";
import { refreshSandboxes, endSandboxes } from "./sandboxes-state";
import { playgroundView } from "./playground";
import { sandboxesView } from "./sandboxes";
import { filesView } from "./files";
import { notebookView } from "./notebook";
import { terminalView } from "./terminal";
import { processesView } from "./processes";
import { keysView } from "./keys";

interface Key { id: string; name?: string; admin?: boolean }

interface View { id: string; name: string; make: (me: Key) => HTMLElement; admin?: boolean }

// A view may act when it comes into sight or goes out of it (a stream it
// follows only while it is seen), and when it goes for good with the
// session (a logout): then it ends all it runs (streams, timers, polls).
type ViewElement = HTMLElement & { onShow?: () => void; onHide?: () => void; onEnd?: () => void };

const allViews: View[] = [
  { id: "playground", name: "Playground", make: playgroundView },
  { id: "sandboxes", name: "Sandboxes", make: sandboxesView },
  { id: "files", name: "Files", make: filesView },
  { id: "notebook", name: "Notebook", make: notebookView },
  { id: "terminal", name: "Terminal", make: terminalView },
  { id: "processes", name: "Processes", make: processesView },
  // Only an admin key may list and make keys.
  { id: "keys", name: "Keys", make: keysView, admin: true },
];
// The views of the key logged in.
let views: View[] = [];

const app = document.getElementById("app")!;
let shellShown = false;
// endShell ends the views of the session shown, and all they run.
let endShell = () => {};

/**
 * A request refused for want of a key (the page sends none: it has its
 * session cookie) means the cookie is gone, with a logout in another tab
 * or its end: the API's advice to send an Authorization header is not
 * for people on the page.
 */
const loggedOut = "You were logged out (in another tab, or the session ended). Log in again.";

async function boot() {
  onUnauthorized((msg) => { if (shellShown) showLogin(/^missing API key\b/.test(msg) ? loggedOut : msg); });
  let me: Key;
  try {
    me = await get<Key>("/v1/whoami");
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      showLogin(location.hash === "#login-failed" ? "That login link is not valid: cove serve makes a new one each time it starts; open the newest, printed or in login.url." : "");
    } else {
      replace(app, h("main", { class: "login" }, h("div", { class: "card" }, h("h1", null, "cove"), h("p", { class: "error-text", role: "alert" }, message(e)),
        h("button", { type: "button", onclick: () => location.reload() }, "Try again"))));
    }
    app.removeAttribute("aria-busy");
    return;
  }
  showShell(me);
}

function showLogin(problem = "") {
  endShell();
  shellShown = false;
  quietToasts(true);
  const input = h("input", { type: "password", id: "login-token", autocomplete: "current-password", required: true, spellcheck: "false", "aria-describedby": "login-error" }) as HTMLInputElement;
  const err = h("p", { class: "error-text", role: "alert", id: "login-error" }, problem);
  // A token refused marks the field; a session that ended does not.
  const setProblem = (msg: string, refused = false) => {
    replace(err, msg);
    if (refused) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
  };
  setProblem(problem);
  const btn = h("button", { type: "submit", class: "primary" }, "Log in");
  const form = h("form", {
    class: "card",
    onsubmit: async (e: Event) => {
      e.preventDefault();
      btn.disabled = true;
      setProblem("");
      try {
        const resp = await fetch("/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token: input.value }), credentials: "same-origin" });
        if (!resp.ok) {
          const body = await resp.json().catch(() => null);
          throw new Error(body?.error?.message || `the server answered ${resp.status}`);
        }
        // The view shown before (a session that ended) opens again.
        history.replaceState(null, "", "/" + (location.hash === "#login-failed" ? "" : location.hash));
        boot();
      } catch (e2) {
        setProblem(message(e2), true);
        input.focus();
      } finally {
        btn.disabled = false;
      }
    },
  },
  h("h1", null, "cove"),
  // cove serve prints the link on a terminal; run as a service, it
  // writes it to login.url in its data directory instead.
  h("p", null, "Open the login link that ", h("code", null, "cove serve"), " printed when it started (or wrote to ",
    h("code", null, "login.url"), " in its data directory), or paste its token or an API key here."),
  h("div", { class: "field" }, h("label", { for: "login-token" }, "Login token or API key"), input),
  err,
  h("div", { class: "toolbar" }, btn));
  replace(app, h("main", { class: "login" }, form));
  input.focus();
}

function showShell(me: Key) {
  endShell();
  shellShown = true;
  quietToasts(false);
  views = allViews.filter((v) => !v.admin || me.admin);
  const made = new Map<string, HTMLElement>();
  const main = h("main", { id: "main", tabindex: "-1" });
  const links = views.map((v, i) => h("a", { href: "#/" + v.id, "data-view": v.id, title: `${v.name} (Alt+${i + 1})` }, v.name));
  const logout = h("button", {
    type: "button", class: "small", id: "logout",
    onclick: async () => {
      // Nothing of the session goes on while it ends.
      endShell();
      await fetch("/logout", { method: "POST", credentials: "same-origin" }).catch(() => {});
      showLogin("You are logged out.");
    },
  }, "Log out");
  const header = h("header", { class: "top" },
    h("a", { class: "skip", href: "#main", onclick: (e: Event) => { e.preventDefault(); main.focus(); } }, "Skip to content"),
    h("span", { class: "brand" }, "cove"),
    h("nav", { "aria-label": "Views" }, links),
    h("span", { class: "grow" }),
    h("span", { class: "who muted", title: me.admin ? "admin key" : "" }, me.name || me.id),
    logout);
  replace(app, header, main);
  app.removeAttribute("aria-busy");

  const show = () => {
    let id = location.hash.replace(/^#\/?/, "");
    if (!views.some((v) => v.id === id)) id = "playground";
    for (const a of links) {
      if (a.dataset.view === id) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    }
    for (const [k, el] of made) {
      const hide = k !== id;
      if (hide && !el.hidden) (el as ViewElement).onHide?.();
      el.hidden = hide;
    }
    let el = made.get(id);
    if (!el) {
      el = views.find((v) => v.id === id)!.make(me);
      made.set(id, el);
      main.appendChild(el);
    } else {
      // Sandboxes change outside this page too (the API, idle timeouts).
      refreshSandboxes().catch(() => {});
    }
    document.title = views.find((v) => v.id === id)!.name + " · cove";
    (el as ViewElement).onShow?.();
  };
  window.onhashchange = show;
  endShell = () => {
    endShell = () => {};
    window.onhashchange = null;
    for (const el of made.values()) (el as ViewElement).onEnd?.();
    made.clear();
    endSandboxes();
  };
  show();
}

// The key's place, not its character: Option+1 types "¡" on a Mac, and
// some layouts put other characters on the digit row.
document.addEventListener("keydown", (e) => {
  if (!shellShown || !e.altKey || e.ctrlKey || e.metaKey) return;
  const n = Number(/^Digit([1-9])$/.exec(e.code)?.[1] ?? 0);
  if (n >= 1 && n <= views.length) {
    e.preventDefault();
    location.hash = "#/" + views[n - 1].id;
  }
});

window.addEventListener("unhandledrejection", (e) => toast(message(e.reason), "error"));

boot();
