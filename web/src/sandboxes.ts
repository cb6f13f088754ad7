// The sandboxes view: the list with state, language, labels, age and
// limits; create with options; stop, start, renew the TTL, delete; choose the sandbox
// that the other views use.

import { get, post, del, patch, message } from "./api";
import { h, replace, toast, fmtAge, fmtUntil, fmtBytes, fmtSpan, field, uid } from "./dom";
import { languages } from "./examples";
import { sandboxes, refreshSandboxes, onSandboxes, currentSandbox, setCurrentSandbox, parseDuration, type Sandbox } from "./sandboxes-state";

// parsePairs reads KEY=value lines.
function parsePairs(text: string, what: string): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const i = line.indexOf("=");
    if (i <= 0) throw new Error(`${what}: write each as NAME=value (not "${line}")`);
    out[line.slice(0, i).trim()] = line.slice(i + 1);
  }
  return Object.keys(out).length ? out : undefined;
}

/** goDuration writes a Go duration as people do: "2h0m0s" as "2h", "1h30m0s" as "1h30m". */
export function goDuration(d: string): string {
  return d.replace(/([hm])0s$/, "$1").replace(/h0m$/, "h");
}

// expiryText says when a sandbox goes, as it stands now.
function expiryText(s: Sandbox): string {
  return s.expires_at ? "expires in " + fmtUntil(s.expires_at) : (s.ttl ? "ttl " + goDuration(s.ttl) : "");
}

// idleText says when a sandbox is stopped for idling.
function idleText(s: Sandbox): string {
  const idle = parseDuration(s.idle_timeout);
  return idle > 0 ? "stops after " + fmtSpan(idle) + " idle" : "";
}

// The column names, also shown beside each value when rows stack as cards;
// Owner only while the list holds the sandboxes of more than one key (an
// admin's), as in cove ls.
const columns = ["ID", "State", "Language", "Labels", "Age", "Limits", "Expiry and idle stop", "Actions"];
const ownerColumn = "Owner";

function limitsText(s: Sandbox): string {
  const l = s.limits ?? {};
  const parts = [];
  if (l.memory_mb) parts.push(fmtBytes(Number(l.memory_mb) * 1048576));
  if (l.cpus) parts.push(l.cpus + " CPU");
  if (l.timeout) parts.push("timeout " + l.timeout);
  if (l.disk_mb) parts.push("disk " + fmtBytes(Number(l.disk_mb) * 1048576));
  if (l.network && l.network !== "none") parts.push("network " + String(l.network).split(",").join(", "));
  return parts.join(", ");
}

function wide(el: HTMLElement): HTMLElement {
  el.classList.add("wide");
  return el;
}

export function sandboxesView(): HTMLElement {
  const tbody = h("tbody");
  const headRow = h("tr");
  // The names of the keys that own sandboxes, by id: asked for (an admin
  // may list keys) once the list holds another key's sandbox.
  const keyNames = new Map<string, string>();
  const askedFor = new Set<string>();
  const askNames = async (owners: Set<string>) => {
    for (const o of owners) askedFor.add(o);
    try {
      const res = await get<{ keys: { id: string; name?: string }[] }>("/v1/keys");
      for (const k of res.keys ?? []) if (k.name) keyNames.set(k.id, k.name);
      if (!gone) fill();
    } catch { /* the ids stay */ }
  };
  const empty = h("p", { class: "muted", hidden: true }, "No sandboxes yet: create one below. (The playground's ephemeral runs each get a fresh sandbox, gone when the run ends, and are not listed.)");
  const busy = new Set<string>();
  let gone = false; // the session has ended (a logout): nothing more is asked for

  // act does verb (say "stop") to a sandbox, and says it is done (say "stopped").
  const act = async (s: Sandbox, verb: string, done: string, f: () => Promise<unknown>) => {
    if (busy.has(s.id)) return;
    busy.add(s.id);
    fill();
    try {
      await f();
      toast(`${done} ${s.id}`, "ok");
    } catch (e) {
      toast(`could not ${verb} ${s.id}: ${message(e)}`, "error");
    } finally {
      busy.delete(s.id);
      if (!gone) await refreshSandboxes().catch((e) => toast(message(e), "error"));
    }
  };

  // A button that cannot be pressed now stays focusable (aria-disabled),
  // so that the keyboard focus stays where it was while it waits.
  const button = (action: string, label: string, text: string, off: boolean, onclick: () => void, cls = "small", title?: string) =>
    h("button", { type: "button", class: cls, "data-action": action, "aria-label": label, title, "aria-disabled": off ? "true" : undefined, onclick: () => { if (!off) onclick(); } }, text);

  function fill() {
    // The focus in the table is put back where it was after the rows are
    // made again: on the same button of the same row, or the one in its
    // place (Stop gives way to Start), or the next row once it is gone.
    const a = document.activeElement as HTMLElement | null;
    const had = a && tbody.contains(a) ? a : null;
    const hadRow = had?.closest("tr") as HTMLTableRowElement | null;
    const hadId = hadRow?.dataset.id ?? "";
    const hadLabel = had?.getAttribute("aria-label") ?? "";
    const hadIndex = hadRow ? [...hadRow.querySelectorAll("button")].indexOf(had as HTMLButtonElement) : -1;
    const hadRowIndex = hadRow ? [...tbody.rows].indexOf(hadRow) : -1;

    const list = sandboxes();
    empty.hidden = list.length > 0;
    const cur = currentSandbox();
    const owners = new Set(list.map((s) => s.owner ?? ""));
    const byOwner = owners.size > 1;
    if (byOwner && [...owners].some((o) => !askedFor.has(o))) askNames(owners);
    const shown = byOwner ? [columns[0], ownerColumn, ...columns.slice(1)] : columns;
    replace(headRow, shown.map((c, i) => h("th", { scope: "col" }, i === shown.length - 1 ? h("span", { class: "visually-hidden" }, c) : c)));
    replace(tbody, list.map((s) => {
      const running = s.state === "running";
      // Starting or stopping: the server is busy with it already.
      const dis = busy.has(s.id) || s.state === "starting" || s.state === "stopping";
      const labels = Object.entries(s.labels ?? {}).map(([k, v]) => h("span", { class: "tag" }, `${k}=${v}`));
      const [cID, cState, cLang, cLabels, cAge, cLimits, cExpiry, cActions] = columns;
      const id = encodeURIComponent(s.id);
      const owner = s.owner ?? "";
      const ownerName = keyNames.get(owner);
      return h("tr", { class: s.id === cur ? "current" : "", "data-id": s.id },
        h("td", { class: "mono", "data-label": cID }, s.id),
        byOwner ? h("td", { class: "owner" + (owner ? "" : " blank") + (ownerName ? "" : " mono"), "data-label": ownerColumn, title: ownerName ? "key " + owner : null }, ownerName ?? owner) : null,
        h("td", { "data-label": cState }, h("span", { class: "state " + s.state }, s.state)),
        h("td", { "data-label": cLang, class: s.language ? "" : "blank" }, s.language ?? ""),
        h("td", { "data-label": cLabels, class: labels.length ? "" : "blank" }, labels),
        h("td", { title: s.created_at, class: "age", "data-label": cAge }, fmtAge(s.created_at)),
        h("td", { class: "limits" + (limitsText(s) ? "" : " blank"), "data-label": cLimits }, limitsText(s)),
        h("td", { class: "expiry" + (expiryText(s) || idleText(s) ? "" : " blank"), "data-label": cExpiry },
          h("span", { class: "ttl" }, expiryText(s)), expiryText(s) && idleText(s) ? h("br") : null, h("span", { class: "idle muted" }, idleText(s))),
        h("td", { class: "actions", "data-label": cActions },
          s.id === cur
            ? button("use", `In use: ${s.id}`, "In use", true, () => {})
            : button("use", `Use ${s.id}`, "Use", false, () => { setCurrentSandbox(s.id); toast(`working in ${s.id}`); }),
          running
            ? button("stop", `Stop ${s.id}`, "Stop", dis, () => act(s, "stop", "stopped", () => post(`/v1/sandboxes/${id}/stop`)))
            : button("start", `Start ${s.id}`, "Start", dis, () => act(s, "start", "started", () => post(`/v1/sandboxes/${id}/start`))),
          // Renew starts the sandbox's TTL again from now, with its length.
          s.ttl && s.expires_at
            ? button("renew", `Renew the TTL of ${s.id} (${goDuration(s.ttl)} from now)`, "Renew", dis,
              () => act(s, "renew the TTL of", "renewed the TTL of", () => patch(`/v1/sandboxes/${id}`, { ttl: s.ttl })),
              "small", `Start the ${goDuration(s.ttl)} TTL again from now`)
            : null,
          button("delete", `Delete ${s.id}`, "Delete", dis, () => { if (confirm(`Delete sandbox ${s.id} and its files?`)) act(s, "delete", "deleted", () => del(`/v1/sandboxes/${id}`)); }, "small danger")));
    }));

    if (!had || had.isConnected) return;
    const row = [...tbody.rows].find((r) => r.dataset.id === hadId);
    if (row) {
      const btns = [...row.querySelectorAll("button")];
      (btns.find((b) => b.getAttribute("aria-label") === hadLabel) ?? btns[hadIndex] ?? btns[0])?.focus();
    } else if (tbody.rows.length) {
      // Gone: the row that took its place.
      tbody.rows[Math.min(hadRowIndex, tbody.rows.length - 1)].querySelector("button")?.focus();
    } else {
      title.focus();
    }
  }
  onSandboxes(fill);

  // Age and expiry move on without a Refresh; only their text changes, so
  // focus and the buttons stay as they are.
  const tick = () => {
    for (const s of sandboxes()) {
      const row = tbody.querySelector<HTMLElement>(`tr[data-id="${CSS.escape(s.id)}"]`);
      if (!row) continue;
      const age = row.querySelector(".age"), exp = row.querySelector(".expiry");
      if (age) age.textContent = fmtAge(s.created_at);
      const ttl = exp?.querySelector(".ttl");
      if (ttl) ttl.textContent = expiryText(s);
    }
  };
  const ticker = setInterval(tick, 30000);

  // The create form.
  const lang = h("select", null, h("option", { value: "" }, "any"), languages.map((l) => h("option", { value: l.id }, l.name))) as HTMLSelectElement;
  // The bounds are the server's: memory from 8 MiB, 0.01 to 256 CPUs, and
  // a disk of 0 is the default one.
  const mem = h("input", { type: "number", min: "8", step: "1", placeholder: "default", inputmode: "numeric" }) as HTMLInputElement;
  const cpus = h("input", { type: "number", min: "0.01", max: "256", step: "any", placeholder: "default", inputmode: "decimal" }) as HTMLInputElement;
  const timeout = h("input", { type: "text", placeholder: "e.g. 30s" }) as HTMLInputElement;
  const disk = h("input", { type: "number", min: "0", step: "1", placeholder: "default", inputmode: "numeric" }) as HTMLInputElement;
  const ttl = h("input", { type: "text", placeholder: "e.g. 1h (none)" }) as HTMLInputElement;
  const idle = h("input", { type: "text", placeholder: "e.g. 30m (default)" }) as HTMLInputElement;
  const network = h("input", { type: "text", placeholder: "e.g. pypi.org, *.pythonhosted.org (none)", spellcheck: "false", autocapitalize: "off" }) as HTMLInputElement;
  const env = h("textarea", { rows: 3, placeholder: "NAME=value, one a line", spellcheck: "false" }) as HTMLTextAreaElement;
  const labels = h("textarea", { rows: 3, placeholder: "name=value, one a line", spellcheck: "false" }) as HTMLTextAreaElement;
  const formError = h("p", { class: "error-text", role: "alert", hidden: true });
  // The inputs with the API's name of the field each fills, first in a
  // message about it ("ttl: ..."), and the words naming it in the
  // messages about the limits ("invalid limits: memory 4 MiB is below
  // the minimum of 8 MiB").
  const fields: [string, RegExp, HTMLElement][] = [
    ["limits.timeout", /^invalid limits: .*\btimeout\b/, timeout], ["ttl", /\bttl\b/, ttl], ["idle_timeout", /\bidle.timeout\b/, idle],
    ["limits.memory_mb", /^invalid limits: .*\bmemory\b/, mem], ["limits.cpus", /^invalid limits: .*\bcpus\b/, cpus],
    ["limits.disk_mb", /^invalid limits: .*\bdisk\b/, disk], ["limits.network", /^invalid limits: .*\b(network|host)/i, network],
    ["env", /\benv(ironment)?\b/i, env], ["labels", /\blabels?\b/i, labels],
  ];
  const clearError = () => {
    formError.hidden = true;
    formError.textContent = "";
    for (const [, , c] of fields) c.removeAttribute("aria-invalid");
  };
  const createBtn = h("button", { type: "submit", class: "primary", id: "create-sandbox" }, "Create sandbox");
  const form = h("form", {
    class: "create-form",
    onsubmit: async (e: Event) => {
      e.preventDefault();
      clearError();
      const spec: Record<string, unknown> = {};
      try {
        if (lang.value) spec.language = lang.value;
        const limits: Record<string, unknown> = {};
        if (mem.value) limits.memory_mb = Number(mem.value);
        if (cpus.value) limits.cpus = Number(cpus.value);
        if (disk.value) limits.disk_mb = Number(disk.value);
        if (timeout.value.trim()) limits.timeout = timeout.value.trim();
        if (network.value.trim()) limits.network = network.value.trim();
        if (Object.keys(limits).length) spec.limits = limits;
        if (ttl.value.trim()) spec.ttl = ttl.value.trim();
        if (idle.value.trim()) spec.idle_timeout = idle.value.trim();
        spec.env = parsePairs(env.value, "environment");
        spec.labels = parsePairs(labels.value, "labels");
      } catch (err) {
        replace(formError, message(err));
        formError.hidden = false;
        const bad = /^labels/.test(message(err)) ? labels : env;
        bad.setAttribute("aria-invalid", "true");
        bad.focus();
        return;
      }
      createBtn.disabled = true;
      try {
        const sb = await post<Sandbox>("/v1/sandboxes", spec);
        if (gone) return;
        setCurrentSandbox(sb.id);
        toast(`created sandbox ${sb.id}`, "ok");
        await refreshSandboxes();
      } catch (err) {
        const msg = message(err);
        // The API names a value it cannot read by its field: the inputs
        // that hold the values refused are marked, the first focused.
        const bad = fields.filter(([name, re]) => msg.startsWith(name + ": ") || re.test(msg)).map(([, , c]) => c);
        for (const c of bad) c.setAttribute("aria-invalid", "true");
        replace(formError, "Could not create the sandbox: " + msg);
        formError.hidden = false;
        bad[0]?.focus();
      } finally {
        createBtn.disabled = false;
        // A disabled button loses the focus: it comes back to it.
        if (document.activeElement === document.body || !document.activeElement) createBtn.focus();
      }
    },
  },
  h("div", { class: "grid-fields" },
    field("Language", lang),
    field("Memory (MiB)", mem),
    field("CPUs", cpus),
    field("Timeout per run", timeout),
    field("Disk (MiB)", disk),
    field("Time to live", ttl, "deleted after this"),
    field("Idle timeout", idle, "stopped after this idle"),
    // A list of hosts can be long: the field takes the whole row.
    wide(field("Network", network, "hosts it may reach over HTTP(S), separated by commas; none when empty")),
  ),
  h("div", { class: "grid-fields two" }, field("Environment", env), field("Labels", labels)),
  formError,
  h("div", { class: "toolbar" }, createBtn));
  form.addEventListener("input", clearError);

  const tableId = uid("sbtable");
  const title = h("h2", { id: tableId, tabindex: "-1" }, "Sandboxes");
  const view = h("section", { class: "view sandboxes", "aria-label": "Sandboxes" },
    h("div", { class: "pane" },
      h("div", { class: "pane-head" }, title, h("span", { class: "grow" }),
        h("button", { type: "button", onclick: () => refreshSandboxes().catch((e) => toast(message(e), "error")) }, "Refresh")),
      h("div", { class: "table-wrap" },
        h("table", { class: "table sandbox-table cards", "aria-labelledby": tableId },
          h("thead", null, headRow),
          tbody)),
      empty),
    h("div", { class: "pane" }, h("details", { class: "create", open: true }, h("summary", null, h("h2", null, "Create a sandbox")), form)));
  refreshSandboxes().catch((e) => toast(message(e), "error"));
  fill();
  // The session ended: the ages stop and nothing is asked for again.
  (view as HTMLElement & { onEnd?: () => void }).onEnd = () => {
    gone = true;
    clearInterval(ticker);
  };
  return view;
}
