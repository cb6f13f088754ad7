// The REST API as the UI calls it: JSON requests with the session cookie,
// streams of events read as they arrive, uploads with progress. Every
// failure becomes an ApiError whose message is fit to show.

/** ApiError is an error answer of the server, or a failure to reach it. */
export class ApiError extends Error {
  /**
   * reason, where the server gives one, tells apart cases of one code
   * (file_exists, disk_full, sandbox_gone); "" otherwise.
   */
  constructor(message: string, public code: string, public status: number, public reason = "") {
    super(message);
  }
}

/** onUnauthorized is called when the session is missing or has ended. */
let unauthorizedHandler: (msg: string) => void = () => {};
export function onUnauthorized(f: (msg: string) => void) { unauthorizedHandler = f; }

// The error of an answer that is not ok, read from its JSON body.
async function errorOf(resp: Response): Promise<ApiError> {
  let code = "", message = "", reason = "";
  try {
    const text = await resp.text();
    try {
      const body = JSON.parse(text);
      code = body?.error?.code ?? "";
      message = body?.error?.message ?? "";
      reason = body?.error?.reason ?? "";
    } catch {
      if (text && text.length < 200 && !text.trimStart().startsWith("<")) message = text.trim();
    }
  } catch { /* no body */ }
  if (!message) message = `the server answered ${resp.status} ${resp.statusText || ""}`.trim();
  const err = new ApiError(message, code || statusCode(resp.status), resp.status, reason);
  if (resp.status === 401) unauthorizedHandler(message);
  return err;
}

function statusCode(status: number): string {
  if (status === 401) return "unauthorized";
  if (status === 404) return "not_found";
  if (status === 409) return "conflict";
  if (status === 429) return "quota_exceeded";
  if (status >= 500) return "unavailable";
  return "invalid";
}

function networkError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof DOMException && e.name === "AbortError") return new ApiError("stopped", "aborted", 0);
  return new ApiError("cannot reach the cove server: is cove serve still running?", "unavailable", 0);
}

/** request sends a JSON request and returns the decoded answer (undefined for 204). */
export async function request<T = unknown>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  let resp: Response;
  try {
    resp = await fetch(path, {
      method,
      headers: body === undefined ? { Accept: "application/json" } : { Accept: "application/json", "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      signal,
    });
  } catch (e) {
    throw networkError(e);
  }
  if (!resp.ok) throw await errorOf(resp);
  if (resp.status === 204) return undefined as T;
  const text = await resp.text();
  if (!text) return undefined as T;
  try { return JSON.parse(text) as T; } catch { return text as unknown as T; }
}

export const get = <T = unknown>(path: string, signal?: AbortSignal) => request<T>("GET", path, undefined, signal);
export const post = <T = unknown>(path: string, body?: unknown, signal?: AbortSignal) => request<T>("POST", path, body ?? {}, signal);
export const del = (path: string) => request("DELETE", path);
export const patch = <T = unknown>(path: string, body: unknown) => request<T>("PATCH", path, body);

/** An event of an execution or cell stream. */
export interface ExecEvent {
  type: string;
  data?: string;
  encoding?: string;
  result?: ExecResult;
  error?: { code: string; message: string; reason?: string };
  bundle?: Record<string, string>;
  exception?: { name: string; message: string; traceback?: string[]; line?: number };
}

/** The result of an execution. */
export interface ExecResult {
  verdict: string;
  exit_code: number;
  signal?: string;
  stdout: string;
  stderr: string;
  stdout_truncated?: boolean;
  stderr_truncated?: boolean;
  wall_ms: number;
  cpu_ms: number;
  peak_memory_bytes: number;
  message?: string;
  /** reason, on a setup_failed result, says why it could not start (disk_full). */
  reason?: string;
}

/** decodeData returns an event's text, decoding base64 output. */
export function decodeData(ev: ExecEvent): string {
  if (!ev.data) return "";
  if (ev.encoding !== "base64") return ev.data;
  try {
    const bin = atob(ev.data);
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    return new TextDecoder().decode(bytes);
  } catch { return ev.data; }
}

/** An event of a stream; a failure after the stream began is an "error" event. */
interface StreamEvent {
  type?: string;
  error?: { code: string; message: string; reason?: string };
}

/**
 * stream posts body to path and calls onEvent for each NDJSON event as it
 * arrives (executions, cells, analyses). Aborting signal cancels the
 * request, and with it what the server was doing for it. onStart, once the
 * answer has begun, gets the execution's id (Cove-Execution-Id) when it
 * has one, for stopExecution.
 */
export async function stream<E extends StreamEvent = ExecEvent>(path: string, body: unknown, onEvent: (ev: E) => void, signal?: AbortSignal, onStart?: (execId: string | null) => void): Promise<void> {
  let resp: Response;
  try {
    resp = await fetch(path, {
      method: "POST",
      headers: { Accept: "application/x-ndjson", "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
      signal,
    });
  } catch (e) {
    throw networkError(e);
  }
  if (!resp.ok) throw await errorOf(resp);
  onStart?.(resp.headers.get("Cove-Execution-Id"));
  await readLines(resp, signal, (line) => {
    let ev: E;
    try { ev = JSON.parse(line); } catch { return; }
    if (ev.type === "error") throw new ApiError(ev.error?.message || "the stream failed", ev.error?.code || "internal", 500, ev.error?.reason);
    onEvent(ev);
  });
}

/**
 * getStream reads a GET answer of NDJSON events (a background process's
 * logs) and calls onEvent for each as it arrives, as stream does for a
 * POST. Aborting signal stops reading and drops the request.
 */
export async function getStream<E extends StreamEvent = ExecEvent>(path: string, onEvent: (ev: E) => void, signal?: AbortSignal): Promise<void> {
  let resp: Response;
  try {
    resp = await fetch(path, { headers: { Accept: "application/x-ndjson" }, credentials: "same-origin", signal });
  } catch (e) {
    throw networkError(e);
  }
  if (!resp.ok) throw await errorOf(resp);
  await readLines(resp, signal, (line) => {
    let ev: E;
    try { ev = JSON.parse(line); } catch { return; }
    if (ev.type === "error") throw new ApiError(ev.error?.message || "the stream failed", ev.error?.code || "internal", 500, ev.error?.reason);
    onEvent(ev);
  });
}

// readLines calls f for each line of resp's body as it arrives.
async function readLines(resp: Response, signal: AbortSignal | undefined, f: (line: string) => void) {
  if (!resp.body) return;
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.trim()) f(line);
      }
    }
    buf += dec.decode();
    if (buf.trim()) f(buf);
  } catch (e) {
    if (signal?.aborted) throw new ApiError("stopped", "aborted", 0);
    if (e instanceof ApiError) throw e;
    throw new ApiError("the connection to the server broke off", "unavailable", 0);
  } finally {
    reader.releaseLock?.();
  }
}

/**
 * stopExecution kills a running execution by its id; its stream still
 * ends with the result, and with what the program used.
 */
export async function stopExecution(execId: string): Promise<void> {
  await request("POST", `/v1/executions/${encodeURIComponent(execId)}/stop`);
}

/** upload sends files as multipart/form-data, reporting progress (0 to 1). */
export function upload(path: string, form: FormData, onProgress: (fraction: number) => void): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.withCredentials = true;
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = async () => {
      const resp = new Response(xhr.responseText || null, { status: xhr.status, statusText: xhr.statusText });
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        try { resolve(xhr.responseText ? JSON.parse(xhr.responseText) : undefined); } catch { resolve(undefined); }
      } else {
        reject(await errorOf(resp));
      }
    };
    xhr.onerror = () => reject(new ApiError("the upload failed: cannot reach the cove server", "unavailable", 0));
    xhr.send(form);
  });
}

/** putRaw writes a file's bytes. */
export async function putRaw(path: string, body: BodyInit): Promise<unknown> {
  let resp: Response;
  try {
    resp = await fetch(path, { method: "PUT", body, credentials: "same-origin", headers: { Accept: "application/json" } });
  } catch (e) {
    throw networkError(e);
  }
  if (!resp.ok) throw await errorOf(resp);
  return resp.json().catch(() => undefined);
}

/** getText reads a file as text. */
export async function getText(path: string): Promise<string> {
  let resp: Response;
  try {
    resp = await fetch(path, { credentials: "same-origin" });
  } catch (e) {
    throw networkError(e);
  }
  if (!resp.ok) throw await errorOf(resp);
  return resp.text();
}

/** message returns an error's text for people. */
export function message(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}

/** enc escapes one path segment or a workspace path (keeping its slashes). */
export function encPath(p: string): string {
  return p.split("/").filter((s) => s !== "" && s !== ".").map(encodeURIComponent).join("/");
}
