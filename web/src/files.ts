// The files view: the sandbox's workspace as a tree; upload by button and
// by drag and drop (many files, folders too, with progress); download a
// file, or a folder as zip; rename, delete, new folder; open a text file
// in the editor and save it back.

import { get, post, request, upload, putRaw, getText, message, encPath } from "./api";
import { h, replace, toast, fmtBytes } from "./dom";
import { Editor, languageOfPath } from "./editor";
import { sandboxPicker, currentSandbox, onSandboxes, refreshSandboxes, refreshIfStopped, sandboxes } from "./sandboxes-state";

interface FileInfo { path: string; name: string; size: number; mode: string; is_dir: boolean; symlink?: string; mod_time: string }

/** The largest file opened in the editor. */
const maxEdit = 2 << 20;

const join = (dir: string, name: string) => (dir && dir !== "." ? dir + "/" + name : name);
const parent = (p: string) => (p.includes("/") ? p.slice(0, p.lastIndexOf("/")) : "");
// under says whether p is the path at or a path inside it.
const under = (p: string, at: string) => p === at || p.startsWith(at + "/");
// moved is p after the path from was moved to to.
const moved = (p: string, from: string, to: string) => (under(p, from) ? to + p.slice(from.length) : p);

export function filesView(): HTMLElement {
  let sb = "";
  let selected = ""; // the folder that uploads and new folders go to
  const open = new Set<string>([""]); // expanded folders
  const tree = h("ul", { class: "tree", "aria-label": "Workspace" });
  const where = h("span", { class: "where mono", "aria-live": "polite" });
  const toRoot = h("button", { type: "button", class: "small link", hidden: true, onclick: () => setSelected("") }, "(use the root)");
  const progress = h("div", { class: "progress", hidden: true },
    h("span", { class: "progress-label" }), h("progress", { max: "1", value: "0", "aria-label": "Upload progress" }));
  const treeBox = h("div", { class: "tree-box", tabindex: "-1", "aria-label": "Workspace files" }, tree);
  const dropHint = h("div", { class: "drop-hint", "aria-hidden": "true" }, "Drop files or folders to upload them");

  const fileInput = h("input", { type: "file", multiple: true, id: "upload-input", class: "visually-hidden", "aria-label": "Upload files" }) as HTMLInputElement;
  fileInput.addEventListener("change", () => {
    const files = Array.from(fileInput.files ?? []).map((f) => ({ file: f, path: f.name }));
    fileInput.value = "";
    if (files.length) uploadFiles(files, selected);
  });
  // A folder without drag and drop: the browser gives each file its path
  // under the chosen folder, as a drop does.
  const folderInput = h("input", { type: "file", multiple: true, webkitdirectory: true, id: "upload-folder-input", class: "visually-hidden", "aria-label": "Upload a folder" }) as HTMLInputElement;
  folderInput.addEventListener("change", () => {
    const files = Array.from(folderInput.files ?? []).map((f) => ({ file: f, path: f.webkitRelativePath || f.name }));
    folderInput.value = "";
    if (files.length) uploadFiles(files, selected);
  });
  // The last failure stays in sight until the next action succeeds or it is dismissed.
  const errorBox = h("div", { class: "files-error", role: "alert", hidden: true });
  function showError(msg: string) {
    replace(errorBox, h("span", { class: "error-text" }, msg), h("button", { type: "button", class: "icon", "aria-label": "Dismiss the error", onclick: () => { errorBox.hidden = true; } }, "×"));
    errorBox.hidden = false;
  }
  const clearError = () => { errorBox.hidden = true; };

  const base = () => `/v1/sandboxes/${encodeURIComponent(sb)}`;
  const fileURL = (p: string) => `${base()}/files/${encPath(p)}`;

  function setSelected(dir: string) {
    selected = dir;
    where.textContent = "/workspace" + (dir ? "/" + dir : "");
    toRoot.hidden = !dir;
    for (const row of tree.querySelectorAll<HTMLElement>(".row.dir")) row.classList.toggle("selected", row.dataset.path === dir);
  }

  async function list(dir: string): Promise<FileInfo[]> {
    const q = dir ? `${fileURL(dir)}?list=true` : `${base()}/files?list=true`;
    const res = await get<{ entries: FileInfo[] }>(q);
    const entries = res.entries ?? [];
    entries.sort((a, b) => (a.is_dir === b.is_dir ? a.name.localeCompare(b.name) : a.is_dir ? -1 : 1));
    return entries;
  }

  // The newest render wins: an older one that ends later is dropped.
  let renders = 0;

  /**
   * render lists the workspace again. The keyboard focus in the tree
   * stays on the same button of the same path; focusPath (a path
   * renamed or made) moves it to that path's row; a row gone hands it to
   * the row in its place, or to the tree.
   */
  async function render(focusPath?: string) {
    const a = document.activeElement as HTMLElement | null;
    const had = a && tree.contains(a) ? a : null;
    const hadRow = had?.closest("li.row") as HTMLElement | null;
    const hadKind = ["rename", "delete", "download"].find((c) => had?.classList.contains("act-" + c)) ?? "name";
    const hadIndex = hadRow ? [...tree.querySelectorAll("li.row")].indexOf(hadRow) : -1;
    const want = focusPath ?? hadRow?.dataset.path;
    const my = ++renders;
    if (!sb) {
      replace(tree, h("li", { class: "muted" }, "Choose a sandbox, or make a new one, to see its files."));
      return;
    }
    try {
      const items = await renderDir("", 0);
      if (my !== renders) return;
      replace(tree, items.length ? items : h("li", { class: "muted" }, "The workspace is empty: upload files with the button or drop them here."));
      setSelected(selected);
    } catch (e) {
      if (my !== renders) return;
      replace(tree, h("li", { class: "error-text", role: "alert" }, "Cannot list the files: " + message(e)));
      // Stopped elsewhere: its Start button shows.
      refreshIfStopped(e);
    }
    if (want === undefined) return;
    // Not if the focus went on elsewhere meanwhile (a row's focus was
    // lost with the row).
    const now = document.activeElement;
    if (focusPath === undefined && now && now !== document.body && now.isConnected) return;
    const rows = [...tree.querySelectorAll<HTMLElement>("li.row")];
    const same = rows.find((r) => r.dataset.path === want);
    const row = same ?? rows[Math.min(hadIndex, rows.length - 1)];
    if (row) (same && row.querySelector<HTMLElement>(".act-" + hadKind) || row.querySelector<HTMLElement>(".act-name"))?.focus();
    else treeBox.focus();
  }

  async function renderDir(dir: string, depth: number): Promise<HTMLElement[]> {
    const entries = await list(dir);
    const out: HTMLElement[] = [];
    for (const fi of entries) {
      const p = join(dir, fi.name);
      out.push(row(fi, p, depth));
      if (fi.is_dir && open.has(p)) {
        try {
          const kids = await renderDir(p, depth + 1);
          out.push(h("li", { class: "sub" }, h("ul", { "aria-label": p }, kids.length ? kids : h("li", { class: "muted empty", style: `padding-left:${(depth + 2) * 16}px` }, "empty"))));
        } catch (e) {
          out.push(h("li", { class: "error-text" }, message(e)));
        }
      }
    }
    return out;
  }

  function row(fi: FileInfo, p: string, depth: number): HTMLElement {
    const isOpen = open.has(p);
    const name = h("button", {
      type: "button", class: "name act-name",
      title: (fi.is_dir ? (isOpen ? "Collapse" : "Expand") + " and upload here: " : "Open in the editor: ") + p,
      "aria-expanded": fi.is_dir ? String(isOpen) : undefined,
      onclick: () => {
        if (fi.is_dir) {
          // Collapsing a folder hands the upload target back to its parent.
          if (isOpen) {
            open.delete(p);
            for (const o of [...open]) if (o.startsWith(p + "/")) open.delete(o);
            setSelected(selected === p || selected.startsWith(p + "/") ? parent(p) : selected);
          } else {
            open.add(p);
            setSelected(p);
          }
          render();
        } else {
          openFile(p, fi);
        }
      },
    }, h("span", { class: "icon", "aria-hidden": "true" }, fi.is_dir ? (isOpen ? "▾" : "▸") : "·"), fi.name + (fi.is_dir ? "/" : ""));
    const actions = h("span", { class: "actions" },
      fi.is_dir
        ? h("a", { class: "button small act-download", href: `${fileURL(p)}?archive=zip`, download: fi.name + ".zip", "aria-label": `Download ${p} as zip` }, "Zip")
        : h("a", { class: "button small act-download", href: `${fileURL(p)}?raw=true`, download: fi.name, "aria-label": `Download ${p}` }, "Download"),
      h("button", { type: "button", class: "small act-rename", "aria-label": `Rename ${p}`, onclick: () => rename(p, fi) }, "Rename"),
      h("button", { type: "button", class: "small danger act-delete", "aria-label": `Delete ${p}`, onclick: () => remove(p, fi) }, "Delete"));
    const li = h("li", {
      class: "row " + (fi.is_dir ? "dir" : "file"), "data-path": p,
      style: `padding-left:${depth * 16}px`,
    }, name, h("span", { class: "size muted" }, fi.is_dir ? "" : fmtBytes(fi.size)), actions);
    if (fi.is_dir) {
      li.addEventListener("dragover", (e) => { e.preventDefault(); li.classList.add("drop"); });
      li.addEventListener("dragleave", () => li.classList.remove("drop"));
      li.addEventListener("drop", (e) => { e.stopPropagation(); li.classList.remove("drop"); onDrop(e as DragEvent, p); });
    }
    return li;
  }

  async function rename(p: string, fi: FileInfo) {
    const to = prompt(`Rename ${p} to:`, fi.name)?.trim();
    if (!to || to === fi.name) return;
    // A rename stays in its folder: a slash would move the file elsewhere.
    if (to.includes("/") || to === "." || to === "..") {
      showError(`could not rename ${p}: a name cannot contain "/" or be "." or "..": a rename keeps the file in its folder`);
      return;
    }
    const dest = join(parent(p), to);
    const mine = sb;
    try {
      await post(`${base()}/fs/move`, { from: p, to: dest });
      toast(`renamed ${p} to ${to}`, "ok");
      clearError();
      if (mine === sb) {
        // The upload target, the folders open and the file in the editor
        // follow it.
        setSelected(moved(selected, p, dest));
        for (const o of [...open]) if (under(o, p)) { open.delete(o); open.add(moved(o, p, dest)); }
      }
      if (editor && editSb === mine && under(editing, p)) {
        editing = moved(editing, p, dest);
        editorTitle.textContent = "/workspace/" + editing;
      }
    } catch (e) {
      showError(`could not rename ${p}: ${message(e)}`);
      render();
      return;
    }
    render(dest);
  }

  async function remove(p: string, fi: FileInfo) {
    const mine = sb;
    const inEditor = !!editor && editSb === mine && under(editing, p);
    const lost = inEditor && dirty() ? ` The unsaved edits to ${editing} are lost.` : "";
    if (!confirm(`Delete ${fi.is_dir ? "the folder " : ""}${p}${fi.is_dir ? " and everything in it" : ""}?${lost}`)) return;
    try {
      await request("DELETE", `${fileURL(p)}${fi.is_dir ? "?recursive=true" : ""}`);
      toast(`deleted ${p}`, "ok");
      clearError();
      // Uploads must not bring back the folder just deleted, nor a save
      // the file.
      if (mine === sb && under(selected, p)) setSelected(parent(p));
      for (const o of [...open]) if (under(o, p)) open.delete(o);
      if (editor && editSb === mine && under(editing, p)) closeEditor(true);
    } catch (e) {
      showError(`could not delete ${p}: ${message(e)}`);
    }
    render();
  }

  async function newFolder() {
    if (!sb) return;
    const name = prompt(`New folder in /workspace${selected ? "/" + selected : ""}:`);
    if (!name) return;
    const path = join(selected, name);
    try {
      await post(`${base()}/fs/mkdir`, { path });
      open.add(selected);
      clearError();
    } catch (e) {
      showError(`could not make the folder ${path}: ${message(e)}`);
      render();
      newFolderBtn.focus();
      return;
    }
    render(path);
  }

  // Uploads.
  async function uploadFiles(files: { file: File; path: string }[], dir: string) {
    if (!sb) {
      toast("choose a sandbox first", "error");
      return;
    }
    // Files already there are replaced: the user says so first.
    const there = await existing(files.map((f) => join(dir, f.path)));
    if (there.length) {
      const names = there.slice(0, 10).join(", ") + (there.length > 10 ? ` and ${there.length - 10} more` : "");
      if (!confirm(`Replace ${there.length === 1 ? "the file" : there.length + " files"} already in the workspace? ${names}`)) return;
    }
    const total = files.reduce((n, f) => n + f.file.size, 0);
    const label = progress.querySelector(".progress-label")!;
    const bar = progress.querySelector("progress") as HTMLProgressElement;
    label.textContent = `Uploading ${files.length} file${files.length === 1 ? "" : "s"} (${fmtBytes(total)})…`;
    bar.value = 0;
    progress.hidden = false;
    const form = new FormData();
    for (const f of files) form.append("file", f.file, f.path);
    try {
      await upload(`${base()}/files${dir ? "?path=" + encodeURIComponent(dir) : ""}`, form, (x) => { bar.value = x; });
      open.add(dir);
      clearError();
      toast(`uploaded ${files.length} file${files.length === 1 ? "" : "s"}` + (there.length ? `, replacing ${there.length}` : ""), "ok");
    } catch (e) {
      // The API's hint names the JSON field and the CLI flag: say the form's words.
      showError("Upload failed: " + message(e).replace(/a larger disk: disk_mb, --disk/, "a larger Disk (MiB) in Sandboxes, Create a sandbox"));
    } finally {
      progress.hidden = true;
    }
    render();
  }

  // existing returns those of the paths that name files in the
  // workspace, asking for each folder's listing once.
  async function existing(paths: string[]): Promise<string[]> {
    const byDir = new Map<string, string[]>();
    for (const p of paths) {
      const d = parent(p);
      byDir.set(d, [...(byDir.get(d) ?? []), p]);
    }
    const out: string[] = [];
    await Promise.all([...byDir].map(async ([d, ps]) => {
      let names: Set<string>;
      try {
        names = new Set((await list(d)).filter((f) => !f.is_dir).map((f) => f.name));
      } catch {
        return; // no such folder (yet): nothing in it is replaced
      }
      for (const p of ps) if (names.has(p.slice(p.lastIndexOf("/") + 1))) out.push(p);
    }));
    return out.sort();
  }

  async function onDrop(e: DragEvent, dir: string) {
    e.preventDefault();
    view.classList.remove("dragging");
    const items = Array.from(e.dataTransfer?.items ?? []);
    const files: { file: File; path: string }[] = [];
    const entries = items.map((it) => (it.webkitGetAsEntry ? it.webkitGetAsEntry() : null));
    if (entries.some((x) => x)) {
      for (const en of entries) if (en) await walk(en, "", files);
    } else {
      for (const f of Array.from(e.dataTransfer?.files ?? [])) files.push({ file: f, path: f.name });
    }
    if (files.length) uploadFiles(files, dir);
  }

  // Editor pane.
  const editorBox = h("div", { class: "editor-box" });
  const editorTitle = h("span", { class: "mono" });
  const saveBtn = h("button", { type: "button", class: "primary", title: "Save (Ctrl+S)", onclick: () => save() }, "Save");
  const editorPane = h("div", { class: "pane file-editor", hidden: true },
    h("div", { class: "toolbar" }, editorTitle, h("span", { class: "grow" }),
      saveBtn, h("button", { type: "button", id: "close-file", onclick: () => closeEditor() }, "Close")),
    editorBox);
  let editor: Editor | null = null;
  let editing = ""; // the path of the file in the editor
  let editSb = ""; // the sandbox it is in
  let saved = ""; // its text as last read or saved
  const dirty = () => !!editor && editor.code !== saved;

  async function openFile(p: string, fi: FileInfo) {
    if (editor && editing === p && editSb === sb) {
      editor.focus();
      return;
    }
    if (fi.size > maxEdit) {
      toast(`${fi.name} is too large to edit here (${fmtBytes(fi.size)}): download it instead`, "error");
      return;
    }
    let text: string;
    try {
      text = await getText(`${fileURL(p)}?raw=true`);
    } catch (e) {
      toast(`could not open ${fi.name}: ${message(e)}`, "error");
      return;
    }
    if (text.includes("\u0000")) {
      toast(`${fi.name} is not a text file: download it instead`, "error");
      return;
    }
    // Asked after the file is read: the edits are kept if it cannot be.
    if (!closeEditor()) return;
    editing = p;
    editSb = sb;
    saved = text;
    editorTitle.textContent = "/workspace/" + p;
    editorPane.hidden = false;
    editor = new Editor({ parent: editorBox, doc: text, language: languageOfPath(p), label: `Contents of ${p}`, onSave: () => save() });
    editor.focus();
  }

  async function save() {
    if (!editor || !editing) return;
    const path = editing, text = editor.code;
    const url = `/v1/sandboxes/${encodeURIComponent(editSb)}/files/${encPath(path)}`;
    saveBtn.disabled = true;
    try {
      await putRaw(url, text);
      if (editing === path) saved = text;
      toast(`saved ${path}`, "ok");
      render();
    } catch (e) {
      toast(`could not save ${path}: ${message(e)}`, "error");
    } finally {
      saveBtn.disabled = false;
    }
  }

  /**
   * closeEditor closes the file in the editor; with unsaved edits it asks
   * first, unless force (the file is gone), and returns whether it closed.
   */
  function closeEditor(force = false): boolean {
    if (!editor) return true;
    if (!force && dirty() && !confirm(`Discard the unsaved edits to /workspace/${editing}${editSb !== sb ? " in sandbox " + editSb : ""}?`)) return false;
    const hadFocus = editorPane.contains(document.activeElement);
    editor.destroy();
    editor = null;
    editing = "";
    editSb = "";
    saved = "";
    editorPane.hidden = true;
    if (hadFocus) treeBox.focus();
    return true;
  }

  const newFolderBtn = h("button", { type: "button", id: "new-folder", onclick: () => newFolder() }, "New folder");
  const zipAll = h("a", { class: "button", id: "zip-all", "aria-label": "Download the workspace as zip" }, "Download all (zip)") as HTMLAnchorElement;
  const uploadBtn = h("label", { for: "upload-input", class: "button primary", id: "upload", tabindex: "0", role: "button",
    onkeydown: (e: KeyboardEvent) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); fileInput.click(); } } }, "Upload");
  const uploadFolderBtn = h("label", { for: "upload-folder-input", class: "button", id: "upload-folder", tabindex: "0", role: "button",
    onkeydown: (e: KeyboardEvent) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); folderInput.click(); } } }, "Upload folder");
  // Where uploads and new folders go; with no sandbox chosen, why the
  // buttons that need one cannot be pressed.
  const whereLine = h("div", { class: "where-line", id: "where-line" });
  // setActions enables the buttons that work in a sandbox, or disables
  // them (staying focusable, described by the reason) when none is chosen.
  function setActions() {
    const off = !sb;
    if (off) replace(whereLine, "Choose a sandbox above, or make a new one, to upload files, make folders and download them.");
    else replace(whereLine, "Uploads and new folders go to ", where, toRoot);
    fileInput.disabled = folderInput.disabled = off;
    for (const b of [uploadBtn, uploadFolderBtn, newFolderBtn, zipAll]) {
      if (off) {
        b.setAttribute("aria-disabled", "true");
        b.setAttribute("aria-describedby", whereLine.id);
      } else {
        b.removeAttribute("aria-disabled");
        b.removeAttribute("aria-describedby");
      }
    }
    if (off) {
      zipAll.removeAttribute("href");
      zipAll.removeAttribute("download");
      // A link with no address is not focusable: this one stays so, as the buttons do.
      zipAll.tabIndex = 0;
    } else {
      zipAll.href = `${base()}/files?archive=zip`;
      zipAll.download = "workspace.zip";
    }
  }
  const view = h("section", { class: "view files", "aria-label": "Files" },
    sandboxPicker("Sandbox", () => render()),
    h("div", { class: "files-main" },
      h("div", { class: "pane tree-pane" },
        h("div", { class: "toolbar" },
          uploadBtn,
          fileInput,
          uploadFolderBtn,
          folderInput,
          newFolderBtn,
          zipAll,
          h("button", { type: "button", onclick: () => render() }, "Refresh")),
        whereLine,
        progress,
        errorBox,
        treeBox,
        dropHint),
      editorPane));
  view.addEventListener("dragover", (e) => { e.preventDefault(); view.classList.add("dragging"); });
  view.addEventListener("dragleave", (e) => { if (e.target === view || !view.contains(e.relatedTarget as Node)) view.classList.remove("dragging"); });
  view.addEventListener("drop", (e) => onDrop(e as DragEvent, selected));

  const sync = () => {
    const cur = currentSandbox();
    if (cur === sb) return;
    sb = cur;
    open.clear();
    setSelected("");
    // Unsaved edits are not dropped unasked: kept, the editor saves them
    // to the sandbox they came from, while it is there.
    if (editor && !sandboxes().some((s) => s.id === editSb)) {
      if (dirty()) toast(`the editor was closed: sandbox ${editSb} is gone, and with it the unsaved edits to ${editing}`, "error");
      closeEditor(true);
    } else if (editor && editSb !== sb && !closeEditor()) {
      editorTitle.textContent = `${editSb}: /workspace/${editing}`;
    }
    setActions();
    render();
  };
  onSandboxes(sync);
  refreshSandboxes().then(sync).catch((e) => toast(message(e), "error"));
  setActions();
  sync();
  (view as HTMLElement & { onShow?: () => void }).onShow = () => render();
  return view;
}

// walk collects the files under a dropped entry with their relative paths.
async function walk(entry: FileSystemEntry, prefix: string, out: { file: File; path: string }[]) {
  if (entry.isFile) {
    const file = await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej));
    out.push({ file, path: prefix + entry.name });
  } else if (entry.isDirectory) {
    const reader = (entry as FileSystemDirectoryEntry).createReader();
    for (;;) {
      const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
      if (!batch.length) break;
      for (const e of batch) await walk(e, prefix + entry.name + "/", out);
    }
  }
}
