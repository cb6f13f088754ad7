// The code editor (CodeMirror 6): highlighting for Python, JavaScript,
// TypeScript and shell, line numbers, bracket matching, undo history, and
// Ctrl/Cmd+Enter to run. Colours come from CSS variables, so the editor
// follows the light or dark theme.

import { EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter, drawSelection, highlightSpecialChars, placeholder as cmPlaceholder } from "@codemirror/view";
import { EditorState, Compartment, Prec, type Extension } from "@codemirror/state";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { syntaxHighlighting, HighlightStyle, bracketMatching, indentOnInput, StreamLanguage, indentUnit } from "@codemirror/language";
import { closeBrackets, closeBracketsKeymap } from "@codemirror/autocomplete";
import { python } from "@codemirror/lang-python";
import { javascript } from "@codemirror/lang-javascript";
import { shell } from "@codemirror/legacy-modes/mode/shell";
import { tags as t } from "@lezer/highlight";

const highlight = HighlightStyle.define([
  { tag: [t.keyword, t.controlKeyword, t.operatorKeyword, t.definitionKeyword, t.moduleKeyword], color: "var(--hl-keyword)" },
  { tag: [t.string, t.special(t.string), t.regexp], color: "var(--hl-string)" },
  { tag: [t.number, t.bool, t.null, t.atom], color: "var(--hl-number)" },
  { tag: [t.comment, t.lineComment, t.blockComment], color: "var(--hl-comment)", fontStyle: "italic" },
  { tag: [t.function(t.variableName), t.function(t.propertyName), t.definition(t.function(t.variableName))], color: "var(--hl-function)" },
  { tag: [t.typeName, t.className, t.namespace], color: "var(--hl-type)" },
  { tag: [t.propertyName], color: "var(--hl-property)" },
  { tag: [t.definition(t.variableName)], color: "var(--hl-def)" },
  { tag: [t.operator, t.punctuation, t.bracket], color: "var(--hl-punct)" },
  { tag: [t.meta, t.processingInstruction], color: "var(--hl-meta)" },
  { tag: t.invalid, color: "var(--danger)" },
]);

const theme = EditorView.theme({
  "&": { height: "100%", fontSize: "14px", backgroundColor: "var(--code-bg)", color: "var(--fg)" },
  ".cm-scroller": { fontFamily: "var(--mono)", lineHeight: "1.5" },
  ".cm-content": { caretColor: "var(--fg)" },
  // A rule between the numbers and the code: lines scrolled sideways pass
  // under the gutter instead of running into the numbers.
  ".cm-gutters": { backgroundColor: "var(--code-bg)", color: "var(--muted)", border: "none", borderRight: "1px solid var(--border)" },
  ".cm-lineNumbers .cm-gutterElement": { padding: "0 8px 0 6px" },
  ".cm-line": { paddingLeft: "8px" },
  ".cm-activeLine": { backgroundColor: "var(--active-line)" },
  ".cm-activeLineGutter": { backgroundColor: "var(--active-line)" },
  // The focus ring is the editor box's (styles.css): drawn inside the
  // editor, the line-number gutter covered it.
  "&.cm-focused": { outline: "none" },
  "&.cm-focused .cm-matchingBracket": { backgroundColor: "var(--match)", outline: "1px solid var(--accent)" },
  ".cm-selectionBackground, &.cm-focused .cm-selectionBackground, ::selection": { backgroundColor: "var(--selection) !important" },
  ".cm-cursor": { borderLeftColor: "var(--fg)" },
});

/** languageSupport returns the highlighting of a language. */
export function languageSupport(lang: string): Extension {
  switch (lang) {
    case "python": return python();
    case "javascript": return javascript();
    case "typescript": return javascript({ typescript: true });
    case "bash": return StreamLanguage.define(shell);
    default: return [];
  }
}

/** languageOfPath guesses the language of a file by its name. */
export function languageOfPath(p: string): string {
  const ext = p.toLowerCase().split(".").pop() ?? "";
  if (ext === "py") return "python";
  if (["js", "mjs", "cjs", "json"].includes(ext)) return "javascript";
  if (["ts", "mts", "cts", "tsx"].includes(ext)) return "typescript";
  if (["sh", "bash"].includes(ext)) return "bash";
  return "";
}

export interface EditorOptions {
  parent: HTMLElement;
  doc: string;
  language: string;
  label: string;
  /** onRun is bound to Ctrl/Cmd+Enter. */
  onRun?: () => void;
  /** onShiftEnter, when given, is bound to Shift+Enter (notebook cells). */
  onShiftEnter?: () => void;
  /** onSave, when given, is bound to Ctrl/Cmd+S. */
  onSave?: () => void;
  onChange?: (doc: string) => void;
  placeholder?: string;
  minimal?: boolean;
}

/** Editor is a CodeMirror view with a switchable language. */
export class Editor {
  view: EditorView;
  private lang = new Compartment();

  constructor(o: EditorOptions) {
    const keys = [];
    if (o.onRun) keys.push({ key: "Mod-Enter", run: () => { o.onRun!(); return true; } });
    if (o.onShiftEnter) keys.push({ key: "Shift-Enter", run: () => { o.onShiftEnter!(); return true; } });
    if (o.onSave) keys.push({ key: "Mod-s", run: () => { o.onSave!(); return true; } });
    const extensions: Extension[] = [
      Prec.highest(keymap.of(keys)),
      lineNumbers(),
      highlightActiveLineGutter(),
      highlightSpecialChars(),
      history(),
      drawSelection(),
      indentOnInput(),
      bracketMatching(),
      closeBrackets(),
      highlightActiveLine(),
      syntaxHighlighting(highlight),
      indentUnit.of("    "),
      keymap.of([...closeBracketsKeymap, ...defaultKeymap, ...historyKeymap, indentWithTab]),
      this.lang.of(languageSupport(o.language)),
      theme,
      EditorView.contentAttributes.of({ "aria-label": o.label }),
      EditorView.updateListener.of((u) => { if (u.docChanged && o.onChange) o.onChange(u.state.doc.toString()); }),
    ];
    if (o.placeholder) extensions.push(cmPlaceholder(o.placeholder));
    this.view = new EditorView({ parent: o.parent, state: EditorState.create({ doc: o.doc, extensions }) });
  }

  get code(): string { return this.view.state.doc.toString(); }

  set code(doc: string) {
    this.view.dispatch({ changes: { from: 0, to: this.view.state.doc.length, insert: doc } });
  }

  setLanguage(lang: string) {
    this.view.dispatch({ effects: this.lang.reconfigure(languageSupport(lang)) });
  }

  focus() { this.view.focus(); }

  destroy() { this.view.destroy(); }
}
