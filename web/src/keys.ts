// The keys view (admins only): the API keys with their quotas; make a key
// for a person or a program (its secret is shown once, to copy); revoke
// one.

import { get, post, del, message } from "./api";
import { h, replace, toast, fmtAge, fmtBytes, field } from "./dom";

/** An API key as the API describes it. */
interface Key {
  id: string;
  name?: string;
  admin: boolean;
  quota?: { max_sandboxes?: number; max_concurrent_execs?: number; max_memory_mb?: number };
  created_at: string;
  revoked_at?: string;
}

const columns = ["Name", "ID", "Role", "Quota", "Created", "Status", "Actions"];

function quotaText(k: Key): string {
  const q = k.quota ?? {};
  const parts = [];
  if (q.max_sandboxes) parts.push(q.max_sandboxes === 1 ? "1 sandbox" : `${q.max_sandboxes} sandboxes`);
  if (q.max_concurrent_execs) parts.push(q.max_concurrent_execs === 1 ? "1 run at once" : `${q.max_concurrent_execs} runs at once`);
  if (q.max_memory_mb) parts.push(fmtBytes(q.max_memory_mb * 1048576) + " memory in all");
  return parts.join(", ");
}

/** keysView lists the keys; me is the key logged in, which cannot revoke itself. */
export function keysView(me: { id: string }): HTMLElement {
  const tbody = h("tbody");
  const listError = h("p", { class: "error-text", role: "alert", hidden: true });
  let keys: Key[] = [];

  async function refresh() {
    try {
      const res = await get<{ keys: Key[] }>("/v1/keys");
      keys = res.keys ?? [];
      listError.hidden = true;
    } catch (e) {
      replace(listError, "Cannot list the keys: " + message(e));
      listError.hidden = false;
    }
    fill();
  }

  function fill() {
    // The focus on a row's button is kept across the rows made again:
    // a key revoked has no Revoke, and the table takes it then.
    const a = document.activeElement as HTMLElement | null;
    const had = a && tbody.contains(a) ? a.getAttribute("aria-label") : null;
    const lost = !!a && tbody.contains(a);
    const [cName, cID, cRole, cQuota, cCreated, cStatus, cActions] = columns;
    // Active keys first, each group oldest first as the server lists them.
    const sorted = [...keys.filter((k) => !k.revoked_at), ...keys.filter((k) => k.revoked_at)];
    replace(tbody, sorted.map((k) => {
      const label = k.name || k.id;
      return h("tr", { "data-id": k.id, class: k.revoked_at ? "revoked" : "" },
        h("td", { "data-label": cName }, k.name || h("span", { class: "muted" }, "(no name)")),
        h("td", { class: "mono", "data-label": cID }, k.id),
        h("td", { "data-label": cRole }, k.admin ? "admin" : "user"),
        h("td", { "data-label": cQuota, class: "quota" + (quotaText(k) ? "" : " blank") }, quotaText(k)),
        h("td", { "data-label": cCreated, title: k.created_at }, fmtAge(k.created_at) + " ago"),
        h("td", { "data-label": cStatus, title: k.revoked_at ?? "" },
          k.revoked_at ? h("span", { class: "state stopped" }, "revoked " + fmtAge(k.revoked_at) + " ago") : h("span", { class: "state running" }, "active")),
        h("td", { class: "actions", "data-label": cActions },
          k.revoked_at ? null : k.id === me.id ? h("span", { class: "muted own-key", title: "A key cannot revoke itself: revoke it while logged in with another admin key" }, "your key") : h("button", {
            type: "button", class: "small danger", "aria-label": `Revoke ${label}`,
            onclick: async (e: Event) => {
              if ((e.currentTarget as HTMLElement).getAttribute("aria-disabled") === "true") return;
              if (!confirm(`Revoke the key ${label}? Programs that use it are refused from now on; its sandboxes stay.`)) return;
              // Marked, not disabled, while it is asked: the focus stays.
              const btn = e.currentTarget as HTMLButtonElement;
              btn.setAttribute("aria-disabled", "true");
              try {
                await del(`/v1/keys/${encodeURIComponent(k.id)}`);
                toast(`revoked ${label}`, "ok");
              } catch (err) {
                toast(`could not revoke ${label}: ${message(err)}`, "error");
                btn.removeAttribute("aria-disabled");
              }
              await refresh();
            },
          }, "Revoke")));
    }));
    if (!lost) return;
    const same = had ? [...tbody.querySelectorAll<HTMLElement>("button")].find((b) => b.getAttribute("aria-label") === had) : undefined;
    (same ?? tableWrap).focus();
  }

  // The create form.
  const name = h("input", { type: "text", maxlength: "100", placeholder: "e.g. ci-bot or alice", spellcheck: "false", autocomplete: "off" }) as HTMLInputElement;
  const admin = h("input", { type: "checkbox", "aria-describedby": "admin-hint" }) as HTMLInputElement;
  const maxSandboxes = h("input", { type: "number", min: "1", step: "1", placeholder: "no limit", inputmode: "numeric" }) as HTMLInputElement;
  const maxExecs = h("input", { type: "number", min: "1", step: "1", placeholder: "no limit", inputmode: "numeric" }) as HTMLInputElement;
  const maxMemory = h("input", { type: "number", min: "1", step: "1", placeholder: "no limit", inputmode: "numeric" }) as HTMLInputElement;
  const formError = h("p", { class: "error-text", role: "alert", hidden: true });
  const secretBox = h("div", { class: "new-key", hidden: true, role: "status" });
  const createBtn = h("button", { type: "submit", class: "primary", id: "create-key" }, "Create key");

  function showSecret(k: Key & { key: string }) {
    const secret = h("input", { type: "text", readonly: true, value: k.key, class: "mono", id: "new-key-secret", "aria-label": `The secret of ${k.name || k.id}`, spellcheck: "false" }) as HTMLInputElement;
    const copy = h("button", {
      type: "button",
      onclick: async () => {
        secret.select();
        try {
          await navigator.clipboard.writeText(k.key);
          toast("copied the key", "ok");
        } catch {
          // Without clipboard access the key is selected: Ctrl+C copies it.
          toast("press Ctrl+C to copy the selected key");
        }
      },
    }, "Copy");
    replace(secretBox,
      h("p", null, h("b", null, `The key ${k.name || k.id}: copy it now, it is not shown again.`),
        " Programs send it as ", h("code", null, "Authorization: Bearer …"), "; the CLI reads it from ", h("code", null, "COVE_API_KEY"), "."),
      h("div", { class: "toolbar" }, secret, copy,
        h("button", { type: "button", onclick: () => { secretBox.hidden = true; replace(secretBox); name.focus(); } }, "Done")));
    secretBox.hidden = false;
    secret.focus();
    secret.select();
  }

  const form = h("form", {
    class: "create-form",
    onsubmit: async (e: Event) => {
      e.preventDefault();
      formError.hidden = true;
      const body: Record<string, unknown> = { name: name.value.trim() };
      if (admin.checked) body.admin = true;
      const quota: Record<string, number> = {};
      if (maxSandboxes.value) quota.max_sandboxes = Number(maxSandboxes.value);
      if (maxExecs.value) quota.max_concurrent_execs = Number(maxExecs.value);
      if (maxMemory.value) quota.max_memory_mb = Number(maxMemory.value);
      if (Object.keys(quota).length) body.quota = quota;
      createBtn.disabled = true;
      try {
        const k = await post<Key & { key: string }>("/v1/keys", body);
        form.reset();
        showSecret(k);
        await refresh();
      } catch (err) {
        replace(formError, "Could not create the key: " + message(err));
        formError.hidden = false;
      } finally {
        createBtn.disabled = false;
      }
    },
  },
  h("div", { class: "grid-fields" },
    field("Name", name, "who or what uses it"),
    field("Max sandboxes", maxSandboxes, "at once"),
    field("Max runs at once", maxExecs),
    field("Max memory (MiB)", maxMemory, "of all its sandboxes"),
    h("div", { class: "field checkbox" }, h("label", null, admin, " Admin"), h("small", { class: "hint", id: "admin-hint" }, "may manage keys and see every sandbox"))),
  formError,
  h("div", { class: "toolbar" }, createBtn));
  form.addEventListener("input", () => { formError.hidden = true; });

  const tableWrap = h("div", { class: "table-wrap", tabindex: "-1", "aria-labelledby": "keys-title", role: "region" },
    h("table", { class: "table cards", "aria-labelledby": "keys-title" },
      h("thead", null, h("tr", null, columns.map((c, i) => h("th", { scope: "col" }, i === columns.length - 1 ? h("span", { class: "visually-hidden" }, c) : c)))),
      tbody));
  const view = h("section", { class: "view keys", "aria-label": "API keys" },
    h("div", { class: "pane" },
      h("div", { class: "pane-head" }, h("h2", { id: "keys-title" }, "API keys"), h("span", { class: "grow" }),
        h("button", { type: "button", onclick: () => refresh() }, "Refresh")),
      listError,
      tableWrap),
    h("div", { class: "pane" },
      h("h2", null, "Create a key"),
      secretBox,
      form));
  (view as HTMLElement & { onShow?: () => void }).onShow = () => { refresh(); };
  return view;
}
