// The terminal view: a shell in the sandbox, xterm.js over the PTY
// WebSocket. Binary messages carry terminal bytes both ways; text
// messages are controls ({"type": "resize"} from here, "exit" or "error"
// from the server). xterm.js loads on first use.

import { get, message } from "./api";
import { h, replace, toast } from "./dom";
import { sandboxPicker, currentSandbox, onSandboxes, refreshSandboxes, stateOf } from "./sandboxes-state";

type XTerm = import("@xterm/xterm").Terminal;
type Fit = import("@xterm/addon-fit").FitAddon;

function themeOf(): Record<string, string> {
  const cs = getComputedStyle(document.documentElement);
  const v = (n: string) => cs.getPropertyValue(n).trim();
  return { background: v("--term-bg"), foreground: v("--term-fg"), cursor: v("--term-fg"), selectionBackground: v("--selection") };
}

export function terminalView(): HTMLElement {
  const screen = h("div", { class: "term-screen", id: "terminal", "aria-label": "Terminal" });
  const status = h("span", { class: "term-status muted", "aria-live": "polite" }, "not connected");
  const connectBtn = h("button", { type: "button", class: "primary", onclick: () => connect() }, "Connect");
  const disconnectBtn = h("button", { type: "button", disabled: true, onclick: () => disconnect() }, "Disconnect");
  let term: XTerm | null = null;
  let fit: Fit | null = null;
  let ws: WebSocket | null = null;
  let observer: ResizeObserver | null = null;
  let sb = "";
  let gone = false; // the session has ended (a logout): nothing connects again
  let connecting = false;

  async function connect() {
    if (gone) return;
    connecting = true;
    try {
      await open();
    } finally {
      connecting = false;
    }
  }

  async function open() {
    disconnect();
    sb = currentSandbox();
    if (!sb) {
      replace(status, "choose a sandbox, or make a new one, first");
      return;
    }
    connectBtn.disabled = true;
    replace(status, "connecting…");
    try {
      // Errors are clearer as HTTP answers than as a closed WebSocket.
      const info = await get<{ state: string }>(`/v1/sandboxes/${encodeURIComponent(sb)}`);
      if (info.state !== "running") {
        // Stopped elsewhere (the API, the CLI, its idle timeout): the
        // picker shows it so, with its Start button, now.
        if (stateOf(sb) !== info.state) await refreshSandboxes().catch(() => {});
        throw new Error(`the sandbox is ${info.state}` + (info.state === "stopped" || info.state === "error" ? ": press Start beside it" : ""));
      }
      const [{ Terminal }, { FitAddon }] = await Promise.all([import("@xterm/xterm"), import("@xterm/addon-fit")]);
      if (!term) {
        term = new Terminal({ fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace", fontSize: 14, cursorBlink: true, theme: themeOf(), scrollback: 5000 });
        fit = new FitAddon();
        term.loadAddon(fit);
        term.open(screen);
        term.textarea?.setAttribute("aria-describedby", "terminal-hint");
        // Alt+1..7 switch views, as everywhere else in the UI: the
        // terminal lets them through (Tab stays the shell's).
        term.attachCustomKeyEventHandler((e) => !(e.altKey && !e.ctrlKey && !e.metaKey && /^Digit[1-9]$/.test(e.code)));
        term.onData((d) => { if (ws?.readyState === WebSocket.OPEN) ws.send(new TextEncoder().encode(d)); });
        term.onBinary((d) => { if (ws?.readyState === WebSocket.OPEN) ws.send(Uint8Array.from(d, (c) => c.charCodeAt(0))); });
        term.onResize(({ cols, rows }) => { if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "resize", cols, rows })); });
        matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => { if (term) term.options.theme = themeOf(); });
      } else {
        term.reset();
        term.options.cursorBlink = true;
      }
      fit!.fit();
      if (gone) return;
      const proto = location.protocol === "https:" ? "wss:" : "ws:";
      const sock = new WebSocket(`${proto}//${location.host}/v1/sandboxes/${encodeURIComponent(sb)}/pty?cols=${term.cols}&rows=${term.rows}`);
      sock.binaryType = "arraybuffer";
      ws = sock;
      let opened = false, ended = false;
      // ending says in the terminal itself that it is over, and stops the
      // cursor inviting more typing.
      const ending = (what: string) => {
        if (ws !== sock && ws !== null) return; // a newer connection owns the screen
        term!.write(`\r\n\x1b[2m[${what}]\x1b[0m\r\n\x1b[?25l`);
        term!.options.cursorBlink = false;
      };
      sock.onopen = () => {
        opened = true;
        replace(status, "connected to ", h("span", { class: "mono" }, sb));
        disconnectBtn.disabled = false;
        connectBtn.disabled = false;
        connectBtn.textContent = "Reconnect";
        term!.focus();
      };
      sock.onmessage = (ev) => {
        if (typeof ev.data !== "string") {
          term!.write(new Uint8Array(ev.data as ArrayBuffer));
          return;
        }
        try {
          const m = JSON.parse(ev.data);
          if (m.type === "exit") {
            ended = true;
            ending(`the shell exited with code ${m.result?.exit_code ?? "?"}`);
            replace(status, "the shell exited");
          } else if (m.type === "error") {
            ended = true;
            ending("terminal failed: " + (m.error?.message ?? "unknown error"));
            replace(status, h("span", { class: "error-text", role: "alert" }, "terminal failed: " + (m.error?.message ?? "unknown error")));
          }
        } catch { /* not a control message */ }
      };
      sock.onclose = (ev) => {
        const byUs = ws !== sock; // disconnected, or replaced, from here
        if (ws === sock) ws = null;
        disconnectBtn.disabled = true;
        connectBtn.disabled = false;
        connectBtn.textContent = "Reconnect";
        if (!opened) replace(status, h("span", { class: "error-text", role: "alert" }, "could not open a terminal in " + sb + (ev.reason ? ": " + ev.reason : "")));
        else if (!ended) {
          const why = ev.reason || (ev.wasClean ? "the connection closed" : "the connection broke off; the sandbox may have stopped");
          ending("disconnected: " + why);
          replace(status, "disconnected: " + why);
        }
        // Not closed from here: the sandbox may have stopped, and its
        // Start button shows if it did.
        if (!byUs && !gone) refreshSandboxes().catch(() => {});
      };
      observer ??= new ResizeObserver(() => { try { fit?.fit(); } catch { /* hidden */ } });
      observer.observe(screen);
    } catch (e) {
      replace(status, h("span", { class: "error-text", role: "alert" }, "cannot connect: " + message(e)));
      connectBtn.disabled = false;
    }
  }

  function disconnect() {
    const s = ws;
    ws = null;
    s?.close(1000, "closed by the user");
  }

  // The shell keeps Tab: the way out is said where it is seen.
  const hint = h("small", { class: "hint editor-hint", id: "terminal-hint" }, "Tab goes to the shell. To leave the terminal, Alt+1 to Alt+7 switch views (Alt+1 is the Playground), or click outside it.");
  const view = h("section", { class: "view terminal", "aria-label": "Terminal" },
    sandboxPicker("Sandbox", () => connect()),
    h("div", { class: "pane term-pane" },
      h("div", { class: "toolbar" }, connectBtn, disconnectBtn, status),
      screen,
      hint));
  onSandboxes(() => {
    if (ws && currentSandbox() !== sb) {
      disconnect();
      toast("the terminal was closed: another sandbox was chosen");
    }
  });
  const el = view as HTMLElement & { onShow?: () => void; onEnd?: () => void };
  el.onShow = () => {
    if (!ws && !connecting && currentSandbox()) connect();
    else { try { fit?.fit(); } catch { /* not yet */ } term?.focus(); }
  };
  // The session ended: its shell is closed.
  el.onEnd = () => {
    gone = true;
    disconnect();
    observer?.disconnect();
  };
  // Opened first (a reload on #/terminal), the view is shown before the
  // list of sandboxes has come, and with it the sandbox to connect to.
  refreshSandboxes().then(() => {
    if (!gone && !ws && !connecting && !view.hidden && currentSandbox()) connect();
  }).catch(() => {});
  return view;
}
