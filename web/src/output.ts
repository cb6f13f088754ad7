// Output streamed into a <pre> as it comes (the playground's, a
// background process's). A run can print 100,000 lines in a tenth of a
// second, in thousands of events: drawn one event at a time, each asking
// where the end of a growing <pre> is (a layout of all of it), the page
// froze for seconds. Here the events only queue their text; it is drawn
// once a frame, adjacent chunks of one stream as one piece of text, with
// one look at whether the reader is at the end, and no more in a frame
// than lays out in a few milliseconds.

import { h } from "./dom";

/**
 * Text goes into blocks of about this many characters, cut at the end of
 * a line: what comes lays out only the last block, not all the output.
 */
const blockChars = 32 << 10;

/**
 * A frame draws at most this much, so that a page shown 100,000 short
 * lines at once (laying out each takes a few microseconds) still answers
 * between frames; the rest waits for the next frame.
 */
const frameChars = 128 << 10;
const frameLines = 4000;

/** In a tab out of sight (no frames), what is queued is drawn after this. */
const hiddenMs = 250;

interface Block { el: HTMLElement; chars: number }

export class LiveOutput {
  /** The characters of output in the page. */
  kept = 0;
  private pending: { kind: string; text: string }[] = [];
  private frame = 0;
  private timer = 0;
  private lastDraw = -Infinity;
  private waiters: (() => void)[] = [];
  private blocks: Block[] = [];
  private span: HTMLElement | null = null;
  private spanKind = "";
  private text: Text | null = null;
  private atLineStart = true;

  /**
   * out is the <pre>; at most maxKept characters stay in it, the oldest
   * blocks going first, each counted to onDrop.
   */
  constructor(readonly out: HTMLElement, private maxKept = Infinity, private onDrop?: (chars: number) => void) {}

  /** write queues text of a stream (its class: stdout or stderr). */
  write(kind: string, text: string) {
    if (!text) return;
    const last = this.pending[this.pending.length - 1];
    if (last && last.kind === kind) last.text += text;
    else this.pending.push({ kind, text });
    // The first output after a quiet moment shows at once (the time to
    // the first line is the playground's figure); what follows it
    // closely waits for the next frame.
    if (!this.frame && performance.now() - this.lastDraw > 50) this.draw(true);
    else this.schedule();
  }

  /** empty says whether no output has come since the last clear. */
  get empty(): boolean { return this.kept === 0 && this.pending.length === 0; }

  /** drained resolves once all that was written is drawn (a frame at a time). */
  drained(): Promise<void> {
    if (!this.pending.length) return Promise.resolve();
    this.schedule();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** flush draws all that is queued at once. */
  flush() { this.draw(false); }

  /** clear empties the output and drops what is queued. */
  clear() {
    this.unschedule();
    this.pending = [];
    this.blocks = [];
    this.span = this.text = null;
    this.spanKind = "";
    this.atLineStart = true;
    this.kept = 0;
    this.lastDraw = -Infinity;
    this.out.textContent = "";
    this.release();
  }

  private schedule() {
    if (this.frame || this.timer) return;
    this.frame = requestAnimationFrame(() => this.draw(true));
    this.timer = window.setTimeout(() => this.draw(!document.hidden), hiddenMs);
  }

  private unschedule() {
    cancelAnimationFrame(this.frame);
    clearTimeout(this.timer);
    this.frame = this.timer = 0;
  }

  private release() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  // draw appends what is queued (a frame's worth if budgeted); the output
  // follows it if it was read at its end.
  private draw(budgeted: boolean) {
    this.unschedule();
    if (!this.pending.length) {
      this.release();
      return;
    }
    const out = this.out;
    // Followed while read at its end; left where it is when scrolled up
    // to read something earlier.
    const atEnd = out.scrollHeight - out.scrollTop - out.clientHeight < 24;
    let chars = budgeted ? frameChars : Infinity, lines = budgeted ? frameLines : Infinity;
    while (this.pending.length && chars > 0 && lines > 0) {
      const p = this.pending[0];
      let n = Math.min(p.text.length, chars);
      for (let i = p.text.indexOf("\n"); i >= 0 && i < n; i = p.text.indexOf("\n", i + 1)) {
        if (--lines === 0) n = i + 1;
      }
      this.append(p.kind, n === p.text.length ? p.text : p.text.slice(0, n));
      chars -= n;
      if (n === p.text.length) this.pending.shift();
      else p.text = p.text.slice(n);
    }
    this.trim();
    if (atEnd) out.scrollTop = out.scrollHeight;
    this.lastDraw = performance.now();
    if (this.pending.length) this.schedule();
    else this.release();
  }

  private append(kind: string, text: string) {
    while (text) {
      let block = this.blocks[this.blocks.length - 1];
      if (!block || !block.el.isConnected || (block.chars >= blockChars && this.atLineStart)) {
        block = { el: h("span", { class: "out-block" }), chars: 0 };
        this.blocks.push(block);
        this.out.appendChild(block.el);
        this.span = this.text = null;
      }
      // Up to the end of the line that fills the block.
      let piece = text;
      const room = blockChars - block.chars;
      if (text.length > room) {
        const nl = text.indexOf("\n", Math.max(0, room - 1));
        if (nl >= 0) piece = text.slice(0, nl + 1);
      }
      if (this.text && this.spanKind === kind) {
        this.text.appendData(piece);
      } else {
        this.text = document.createTextNode(piece);
        this.span = h("span", { class: kind }, this.text);
        this.spanKind = kind;
        block.el.appendChild(this.span);
      }
      block.chars += piece.length;
      this.kept += piece.length;
      this.atLineStart = piece.endsWith("\n");
      text = text.slice(piece.length);
    }
  }

  // trim drops the oldest blocks while the output is over its bound.
  private trim() {
    while (this.kept > this.maxKept && this.blocks.length > 1) {
      const b = this.blocks.shift()!;
      b.el.remove();
      this.kept -= b.chars;
      this.onDrop?.(b.chars);
    }
  }
}
