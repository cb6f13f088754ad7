// The Node.js driver of cove's stateful code contexts (JavaScript, and
// TypeScript that the host transpiled). The protocol is described in
// kernels.go: requests on fd 3, messages on fd 4, one JSON object a line.
//
// Cells run as scripts in the main realm, as in Node's REPL: top-level
// declarations stay from one cell to the next. A cell that awaits goes
// through the default evaluator of a REPLServer on private streams, which
// rewrites top-level await; other cells are compiled directly (faster).
// The driver adds what the REPL lacks: static import statements, output
// and errors as protocol messages, source-mapped tracebacks for
// TypeScript, and interruption (vm's SIGINT watchdog for the synchronous
// part of a cell, a SIGINT listener for a cell that awaits).
'use strict';
(() => {
  const fs = require('fs');
  const util = require('util');
  const repl = require('repl');
  const net = require('net');
  const { SourceMap } = require('module');
  const { PassThrough, Writable } = require('stream');
  const { StringDecoder } = require('string_decoder');
  const vm = require('vm');

  // Kept before any cell runs, so that a cell that replaces them cannot
  // break the driver.
  const stringify = JSON.stringify;
  const parseJSON = JSON.parse;
  const writeSync = fs.writeSync;
  const inspect = util.inspect;
  const isNativeError = util.types.isNativeError;
  const isUint8Array = util.types.isUint8Array;
  const exit = process.exit.bind(process);

  // The command line's "-" (the driver comes on stdin) and its label
  // (kernels.go) are not the cells' business: process.argv holds node
  // alone, as under node -e.
  process.argv.splice(1);

  const REQ_FD = 3;
  const MSG_FD = 4;
  const INTERRUPTED = 'the cell was interrupted';

  // ---- messages -----------------------------------------------------------

  const sleepCell = new Int32Array(new SharedArrayBuffer(4));

  // send writes one message synchronously, so that messages stay in order
  // with each other and with process.exit. JSON.stringify escapes lone
  // surrogates, so every line is valid JSON and valid UTF-8.
  function send(msg) {
    const buf = Buffer.from(stringify(msg) + '\n', 'utf8');
    let off = 0;
    while (off < buf.length) {
      try {
        off += writeSync(MSG_FD, buf, off, buf.length - off);
      } catch (e) {
        if (e && e.code === 'EAGAIN') {
          Atomics.wait(sleepCell, 0, 0, 1);
          continue;
        }
        // The agent is gone: nobody is left to run cells for.
        exit(0);
      }
    }
  }

  // ---- output streams -----------------------------------------------------

  const decoders = [];

  // streamWriter replaces process.stdout.write and process.stderr.write:
  // what they are given travels as a message of type on fd 4 (console.log
  // and the other console methods write through them).
  function streamWriter(type) {
    const dec = new StringDecoder('utf8');
    decoders.push([type, dec]);
    return function write(chunk, encoding, cb) {
      if (typeof encoding === 'function') {
        cb = encoding;
        encoding = undefined;
      }
      let text;
      if (typeof chunk === 'string') {
        if (encoding && encoding !== 'utf8' && encoding !== 'utf-8' && Buffer.isEncoding(encoding)) {
          text = dec.write(Buffer.from(chunk, encoding));
        } else {
          text = dec.end() + chunk;
        }
      } else if (isUint8Array(chunk)) {
        text = dec.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      } else {
        const err = new TypeError('The "chunk" argument must be of type string or an instance of Buffer or Uint8Array. Received ' + inspect(chunk));
        err.code = 'ERR_INVALID_ARG_TYPE';
        throw err;
      }
      if (text) send({ type, text });
      if (typeof cb === 'function') process.nextTick(cb);
      return true;
    };
  }
  process.stdout.write = streamWriter('stdout');
  process.stderr.write = streamWriter('stderr');

  function flushDecoders() {
    for (const [type, dec] of decoders) {
      const text = dec.end();
      if (text) send({ type, text });
    }
  }
  // process.exit in a cell ends the driver (the agent restarts the
  // context); what the streams still hold goes out first.
  process.on('exit', flushDecoders);

  // ---- display ------------------------------------------------------------

  const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

  function startsWith(bytes, sig) {
    if (bytes.length < sig.length) return false;
    for (let i = 0; i < sig.length; i++) if (bytes[i] !== sig[i]) return false;
    return true;
  }

  function bundleOf(value, opts) {
    if (opts && opts.raw) {
      if (value === null || typeof value !== 'object') {
        throw new TypeError('display(bundle, {raw: true}) needs an object of MIME type to data');
      }
      const bundle = {};
      for (const key of Object.keys(value)) {
        const v = value[key];
        if (v === undefined) continue;
        bundle[key] = typeof v === 'string' ? v :
          isUint8Array(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') :
            stringify(v);
      }
      return bundle;
    }
    if (isUint8Array(value)) {
      const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      if (startsWith(bytes, PNG)) {
        let text = `<PNG image, ${bytes.length} bytes>`;
        if (bytes.length >= 24) {
          text = `<PNG image ${bytes.readUInt32BE(16)}x${bytes.readUInt32BE(20)}, ${bytes.length} bytes>`;
        }
        return { 'image/png': bytes.toString('base64'), 'text/plain': text };
      }
      if (startsWith(bytes, [0xff, 0xd8, 0xff])) {
        return { 'image/jpeg': bytes.toString('base64'), 'text/plain': `<JPEG image, ${bytes.length} bytes>` };
      }
    }
    return { 'text/plain': inspect(value, { colors: false, showProxy: true }) };
  }

  // display(value) shows a value as an output of the cell: images
  // (PNG and JPEG bytes) as images, anything else as the REPL prints it.
  // display(bundle, {raw: true}) sends a MIME bundle as it is.
  function display(value, opts) {
    send({ type: 'display', bundle: bundleOf(value, opts) });
  }
  Object.defineProperty(globalThis, 'display', {
    value: display, writable: true, configurable: true, enumerable: false,
  });

  // ---- static imports -----------------------------------------------------

  // importBindings (the global __coveImport) gives the values that the
  // bindings of a static import statement, rewritten by
  // rewriteModuleSyntax, take from the module's
  // namespace: "*" the namespace itself, "default" its default export (for
  // a module without one, the namespace), and a name its export of that
  // name, or the property of a CommonJS module's exports that Node did not
  // detect as a named export.
  function importBindings(ns, names, specifier) {
    const def = ns.default;
    const values = [];
    for (const name of names) {
      if (name === '*') {
        values.push(ns);
      } else if (name === 'default') {
        values.push('default' in ns ? def : ns);
      } else if (name in ns) {
        values.push(ns[name]);
      } else if (def !== null && (typeof def === 'object' || typeof def === 'function') && name in def) {
        values.push(def[name]);
      } else {
        throw new SyntaxError(`The requested module '${specifier}' does not provide an export named '${name}'`);
      }
    }
    return values;
  }
  Object.defineProperty(globalThis, '__coveImport', {
    value: importBindings, writable: false, configurable: false, enumerable: false,
  });

  // A module that fails to load gives an error without a frame of the
  // cell; importLines keeps the line of the import statement for it.
  const importLines = new WeakMap();
  function importAt(promise, line) {
    return promise.catch((err) => {
      if (err !== null && (typeof err === 'object' || typeof err === 'function')) importLines.set(err, line);
      throw err;
    });
  }
  Object.defineProperty(globalThis, '__coveImportAt', {
    value: importAt, writable: false, configurable: false, enumerable: false,
  });

  const KEYWORDS_BEFORE_EXPR = new Set([
    'return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void',
    'throw', 'case', 'do', 'else', 'yield', 'await', 'extends',
  ]);

  // tokenize splits JavaScript source into the tokens that matter to find
  // top-level import and export statements: names, strings, punctuation,
  // with the bracket depth of each and whether a line break precedes it.
  // Comments, template literals, regular expressions and numbers are
  // skipped over as opaque tokens.
  function tokenize(src) {
    const toks = [];
    const stack = []; // open brackets; '`' marks a template's ${
    let i = 0;
    let nl = false;
    const n = src.length;
    let prev = null;
    function push(type, value, start, end) {
      const t = { type, value, start, end, depth: stack.length, nl };
      toks.push(t);
      prev = t;
      nl = false;
      return t;
    }
    function regexAllowed() {
      if (prev === null) return true;
      if (prev.type === 'name') return KEYWORDS_BEFORE_EXPR.has(prev.value);
      if (prev.type === 'punct') return prev.value !== ')' && prev.value !== ']';
      return false;
    }
    // template scans a template literal's text from i up to its end or
    // to a ${, and returns true when it stopped at ${.
    function template() {
      while (i < n) {
        const c = src[i];
        if (c === '\\') { i += 2; continue; }
        if (c === '`') { i++; return false; }
        if (c === '$' && src[i + 1] === '{') { i += 2; return true; }
        i++;
      }
      return false;
    }
    if (src.startsWith('#!')) {
      while (i < n && src[i] !== '\n') i++;
    }
    while (i < n) {
      const c = src[i];
      const start = i;
      if (c === '\n' || c === '\r' || c === '\u2028' || c === '\u2029') { nl = true; i++; continue; }
      if (c === ' ' || c === '\t' || c === '\v' || c === '\f' || c === '\ufeff' || c === '\u00a0') { i++; continue; }
      if (c === '/' && src[i + 1] === '/') {
        while (i < n && src[i] !== '\n') i++;
        continue;
      }
      if (c === '/' && src[i + 1] === '*') {
        const end = src.indexOf('*/', i + 2);
        const stop = end < 0 ? n : end + 2;
        if (src.slice(i, stop).includes('\n')) nl = true;
        i = stop;
        continue;
      }
      if (c === '"' || c === "'") {
        i++;
        while (i < n && src[i] !== c && src[i] !== '\n') i += src[i] === '\\' ? 2 : 1;
        i++;
        push('string', src.slice(start, Math.min(i, n)), start, i);
        continue;
      }
      if (c === '`') {
        i++;
        if (template()) stack.push('`');
        push('template', '`', start, i);
        continue;
      }
      if (/[A-Za-z_$\u0080-\uffff\\]/.test(c)) {
        i++;
        while (i < n && /[\w$\u0080-\uffff\\]/.test(src[i])) i++;
        push('name', src.slice(start, i), start, i);
        continue;
      }
      if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(src[i + 1] || ''))) {
        i++;
        while (i < n && /[\w.]/.test(src[i])) i++;
        push('number', src.slice(start, i), start, i);
        continue;
      }
      if (c === '/' && regexAllowed()) {
        i++;
        let cls = false;
        while (i < n && src[i] !== '\n') {
          const d = src[i];
          if (d === '\\') { i += 2; continue; }
          if (d === '[') cls = true;
          else if (d === ']') cls = false;
          else if (d === '/' && !cls) break;
          i++;
        }
        i++;
        while (i < n && /[\w$]/.test(src[i])) i++;
        push('regex', src.slice(start, i), start, i);
        continue;
      }
      if (c === '{' || c === '(' || c === '[') {
        push('punct', c, start, i + 1);
        stack.push(c);
        i++;
        continue;
      }
      if (c === '}' || c === ')' || c === ']') {
        const top = stack.pop();
        i++;
        if (c === '}' && top === '`') {
          // The end of a template's ${...}: the template goes on.
          if (template()) stack.push('`');
          push('template', '`', start, i);
          continue;
        }
        push('punct', c, start, i);
        continue;
      }
      if (c === '?' && src[i + 1] === '.' && !/[0-9]/.test(src[i + 2] || '')) {
        i += 2;
        push('punct', '?.', start, i);
        continue;
      }
      i++;
      push('punct', c, start, i);
    }
    return toks;
  }

  function lineAt(src, pos) {
    let line = 1;
    for (let i = src.indexOf('\n'); i >= 0 && i < pos; i = src.indexOf('\n', i + 1)) line++;
    return line;
  }

  // cellSyntaxError makes a SyntaxError that reads like the ones V8 gives
  // for a cell: its stack starts with "file:line", the line and a caret.
  function cellSyntaxError(message, src, pos, filename) {
    const line = lineAt(src, pos);
    const lineStart = src.lastIndexOf('\n', pos - 1) + 1;
    let lineEnd = src.indexOf('\n', pos);
    if (lineEnd < 0) lineEnd = src.length;
    const err = new SyntaxError(message);
    err.stack = `${filename}:${line}\n${src.slice(lineStart, lineEnd)}\n` +
      `${' '.repeat(pos - lineStart)}^\n\nSyntaxError: ${message}`;
    return err;
  }

  // parseImport parses the import declaration whose "import" keyword is
  // toks[k]. It returns the index of its last token and its replacement,
  // or null when it is no import declaration this rewriter knows.
  function parseImport(src, toks, k) {
    let j = k + 1;
    const tok = () => toks[j];
    const isName = (v) => tok() && tok().type === 'name' && (v === undefined || tok().value === v);
    const isPunct = (v) => tok() && tok().type === 'punct' && tok().value === v;
    const locals = [];
    const names = [];
    if (tok() && tok().type !== 'string') {
      if (isName()) {
        if (tok().value === 'type' || tok().value === 'typeof') return null;
        locals.push(tok().value);
        names.push('"default"');
        j++;
        if (isPunct(',')) j++;
        else if (!isName('from')) return null;
      }
      if (isPunct('*')) {
        j++;
        if (!isName('as')) return null;
        j++;
        if (!isName()) return null;
        locals.push(tok().value);
        names.push('"*"');
        j++;
      } else if (isPunct('{')) {
        j++;
        while (!isPunct('}')) {
          const t = tok();
          if (!t || (t.type !== 'name' && t.type !== 'string')) return null;
          if (t.type === 'name' && t.value === 'type' && toks[j + 1] && toks[j + 1].type === 'name' &&
            toks[j + 1].value !== 'as') {
            return null;
          }
          j++;
          let local = t.type === 'name' ? t.value : null;
          if (isName('as')) {
            j++;
            if (!isName()) return null;
            local = tok().value;
            j++;
          }
          if (local === null) return null;
          locals.push(local);
          names.push(t.type === 'name' ? stringify(t.value) : t.value);
          if (isPunct(',')) j++;
          else if (!isPunct('}')) return null;
        }
        j++;
      }
      if (!isName('from')) return null;
      j++;
    }
    const spec = tok();
    if (!spec || spec.type !== 'string') return null;
    j++;
    let attrs = '';
    if ((isName('with') || isName('assert')) && toks[j + 1] && toks[j + 1].type === 'punct' && toks[j + 1].value === '{') {
      const kw = tok().value;
      const open = toks[j + 1];
      let m = j + 2;
      while (toks[m] && !(toks[m].type === 'punct' && toks[m].value === '}' && toks[m].depth === open.depth)) m++;
      if (!toks[m]) return null;
      attrs = `, { ${kw}: ${src.slice(open.start, toks[m].end).replace(/[\r\n\u2028\u2029]/g, ' ')} }`;
      j = m + 1;
    }
    if (isPunct(';')) j++;
    const last = j - 1;
    const load = `await __coveImportAt(import(${spec.value}${attrs}), ${lineAt(src, toks[k].start)})`;
    let text;
    if (locals.length === 0) {
      text = `${load};`;
    } else {
      // var, so that running an import cell again works, as in Python.
      text = `var [${locals.join(', ')}] = __coveImport(${load}, [${names.join(', ')}], ${spec.value});`;
    }
    return { last, text };
  }

  // rewriteModuleSyntax turns the top-level static import statements of a
  // cell into declarations that load the module with await import(), on
  // the same lines, and rejects export statements, which a cell cannot
  // have.
  function rewriteModuleSyntax(src, filename) {
    if (!/\b(import|export)\b/.test(src)) return src;
    const toks = tokenize(src);
    let out = '';
    let at = 0;
    for (let k = 0; k < toks.length; k++) {
      const t = toks[k];
      if (t.type !== 'name' || t.depth !== 0) continue;
      if (t.value !== 'import' && t.value !== 'export') continue;
      const before = toks[k - 1];
      if (before && before.type === 'punct' && (before.value === '.' || before.value === '?.')) continue;
      if (t.value === 'export') {
        throw cellSyntaxError('a cell cannot export: drop "export", its top-level declarations ' +
          'stay visible to later cells', src, t.start, filename);
      }
      const next = toks[k + 1];
      if (!next || (next.type === 'punct' && (next.value === '(' || next.value === '.'))) continue;
      const imp = parseImport(src, toks, k);
      if (imp === null) continue;
      const end = toks[imp.last].end;
      const newlines = src.slice(t.start, end).match(/\r\n|[\n\r\u2028\u2029]/g);
      out += src.slice(at, t.start) + imp.text + (newlines ? newlines.join('') : '');
      at = end;
      k = imp.last;
    }
    return out + src.slice(at);
  }

  // ---- source maps and tracebacks -------------------------------------------

  // Source maps of the TypeScript cells, by file name, decoded when first
  // needed. Functions of an earlier cell can throw in a later one, so the
  // maps of earlier cells stay, up to a bound.
  const sourceMaps = new Map();
  const MAX_SOURCE_MAPS = 2000;

  function sourceMapOf(file) {
    const entry = sourceMaps.get(file);
    if (entry === undefined) return null;
    if (entry.map === undefined) {
      try {
        entry.map = new SourceMap(parseJSON(entry.raw));
      } catch {
        entry.map = null;
      }
    }
    return entry.map;
  }

  // mapPosition maps a 1-based line and column of file to the source's,
  // or returns null when file has no source map or the map lacks it.
  function mapPosition(file, line, col) {
    const map = sourceMapOf(file);
    if (map === null) return null;
    let e = map.findEntry(line - 1, Math.max(col - 1, 0));
    if (!e || e.generatedLine !== line - 1) {
      // Before the line's first mapping: take the line's last one.
      e = map.findEntry(line - 1, 1 << 30);
      if (!e || e.generatedLine !== line - 1) return null;
    }
    if (typeof e.originalLine !== 'number') return null;
    return { line: e.originalLine + 1, col: e.originalColumn + 1 };
  }

  function mapFrame(frame) {
    if (sourceMaps.size === 0) return frame;
    return frame.replace(/([^\s()]+):(\d+):(\d+)/g, (all, file, line, col) => {
      const p = sourceMaps.has(file) ? mapPosition(file, +line, +col) : null;
      return p === null ? all : `${file}:${p.line}:${p.col}`;
    });
  }

  const FRAME = /^\s+at\s/;

  // internalFrame tells the frames of the driver ("[stdin]", since node
  // reads it on its standard input; "[eval]", its guard script) and of
  // Node itself ("node:") from the user's.
  function internalFrame(frame) {
    return /[( ]node:|[( ]\[(eval|stdin)\]/.test(frame);
  }

  // cellLine finds, in frames, the innermost frame of file and returns its
  // line (and column), or null.
  function cellPosition(frames, file) {
    const needle = file + ':';
    for (const frame of frames) {
      let at = frame.indexOf(needle);
      while (at >= 0) {
        const ch = frame[at - 1];
        if (ch === ' ' || ch === '(') {
          const m = /^(\d+):(\d+)/.exec(frame.slice(at + needle.length));
          if (m) return { line: +m[1], col: +m[2] };
        }
        at = frame.indexOf(needle, at + 1);
      }
    }
    return null;
  }

  function errorName(err) {
    try {
      const name = err.name;
      return typeof name === 'string' && name ? name : 'Error';
    } catch {
      return 'Error';
    }
  }

  // describe turns what a cell threw into the fields of an exception
  // message. file is the cell's file name and code the code that ran,
  // to locate errors that carry no line.
  function describe(err, file, code) {
    if (!(isNativeError(err) || err instanceof Error)) {
      const text = inspect(err, { colors: false });
      return { name: 'Error', message: text, traceback: [`Uncaught ${text}`], line: 0 };
    }
    const name = errorName(err);
    let message = '';
    let stack = '';
    try {
      message = String(err.message === undefined ? '' : err.message);
    } catch {
      // A throwing getter.
    }
    try {
      stack = typeof err.stack === 'string' ? err.stack : '';
    } catch {
      // A throwing getter.
    }
    if (!stack) stack = message ? `${name}: ${message}` : name;
    const lines = stack.split('\n');
    const head = [];
    const frames = [];
    for (const line of lines) {
      if (FRAME.test(line)) {
        if (!internalFrame(line)) frames.push(line);
      } else if (frames.length === 0) {
        head.push(line);
      }
    }
    let line = 0;
    // A syntax error of a cell starts "file:line", then the code and a
    // caret (V8's decoration).
    if (head.length >= 3 && head[0].startsWith(file + ':') && /^\d+$/.test(head[0].slice(file.length + 1))) {
      line = +head[0].slice(file.length + 1);
      const caret = head[2].indexOf('^');
      const p = mapPosition(file, line, caret < 0 ? 1 : caret + 1);
      if (p !== null) {
        line = p.line;
        head[0] = `${file}:${line}`;
      }
    } else {
      const pos = cellPosition(frames, file);
      if (pos !== null) {
        const p = mapPosition(file, pos.line, pos.col);
        line = p === null ? pos.line : p.line;
      } else if (importLines.has(err)) {
        line = importLines.get(err);
        const p = mapPosition(file, line, 1);
        if (p !== null) line = p.line;
      } else if (name === 'SyntaxError') {
        const m = /^Identifier '(.+)' has already been declared$/.exec(message);
        if (m) line = declarationLine(code, m[1], file);
      }
    }
    return { name, message, traceback: head.concat(frames.map(mapFrame)), line };
  }

  // declarationLine finds the line of code that declares name, for a
  // redeclaration, which V8 reports without a position.
  function declarationLine(code, name, file) {
    const esc = name.replace(/[$\\]/g, '\\$&');
    const re = new RegExp(`\\b(?:let|const|class|var|function)\\b[^\\n]*?(?<![\\w$])${esc}(?![\\w$])`);
    const m = re.exec(code);
    if (!m) return 0;
    const line = lineAt(code, m.index);
    const p = mapPosition(file, line, 1);
    return p === null ? line : p.line;
  }

  // ---- the evaluator ------------------------------------------------------

  // The REPL's default evaluator sends errors to its domain when one is
  // active; this stand-in keeps domains out, so errors reach the callback.
  const noDomain = {
    bind(fn) { return fn; },
    on() { return this; },
    emit() { return false; },
  };
  // breakEvalOnSigint stays off: the driver runs the whole evaluation
  // under a SIGINT watchdog of its own (guarded).
  const server = new repl.REPLServer({
    input: new PassThrough(),
    output: new Writable({ write(chunk, enc, cb) { cb(); } }),
    prompt: '',
    terminal: false,
    useGlobal: true,
    domain: noDomain,
  });
  // The REPL's own reaction to SIGINT (clear the line, close on a second
  // one) has no place here.
  server.removeAllListeners('SIGINT');
  if (server._domain && server._domain !== noDomain && typeof server._domain.on === 'function') {
    // A Node whose REPL brings its own domain anyway: route its errors.
    server._domain.removeAllListeners('error');
    server._domain.on('error', (err) => {
      if (current !== null) settle(current, true, err);
      else uncaught('Uncaught', err);
    });
  }

  // guarded(fn) calls fn under vm's SIGINT watchdog: a SIGINT stops what
  // fn runs, however deep, and guarded throws ERR_SCRIPT_EXECUTION_INTERRUPTED.
  // The watchdog covers only a vm script's run, so a tiny script calls fn.
  let guardedFn = null;
  Object.defineProperty(globalThis, '__coveGuarded', {
    value: () => guardedFn(), writable: false, configurable: false, enumerable: false,
  });
  const guardScript = new vm.Script('__coveGuarded()', { filename: '[eval]' });
  const guardOptions = { breakOnSigint: true, displayErrors: false };
  const runOptions = { displayErrors: false };
  // Dynamic import() from code compiled by the driver resolves as from
  // the main context.
  const MAIN_LOADER = vm.constants ? vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER : undefined;
  function guarded(fn) {
    guardedFn = fn;
    try {
      return guardScript.runInThisContext(guardOptions);
    } finally {
      guardedFn = null;
    }
  }

  function isInterruption(err) {
    return err !== null && typeof err === 'object' && err.code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED';
  }

  let current = null; // the running cell
  const queue = [];
  let ended = false;
  let cells = 0;

  function uncaught(prefix, err) {
    let text;
    try {
      const d = describe(err, current ? current.filename : '\0', '');
      text = d.traceback.join('\n');
      if (!(isNativeError(err) || err instanceof Error)) text = text.replace(/^Uncaught /, '');
    } catch {
      text = String(err);
    }
    send({ type: 'stderr', text: `${prefix} ${text}\n` });
  }

  // Errors that escape a cell later (a timer's callback, a promise that
  // nobody awaits) must not end the context: they are reported on stderr.
  process.on('uncaughtException', (err) => uncaught('Uncaught', err));
  process.on('unhandledRejection', (reason) => uncaught('Uncaught (in promise)', reason));

  function show(value) {
    return inspect(value, { colors: false, showProxy: true });
  }

  // settle reports how cell ended (failed: it threw err; else value is
  // the value of its last expression) and goes on with the next one. text
  // is the value as the REPL shows it, when the caller has it already.
  function settle(cell, failed, err, value, text) {
    if (cell.finished) return;
    cell.finished = true;
    current = null;
    try {
      flushDecoders();
      if (!failed && value !== undefined && text === undefined) {
        try {
          // An object's custom inspect method is user code: it may loop.
          text = value !== null && (typeof value === 'object' || typeof value === 'function') ?
            guarded(() => show(value)) : show(value);
        } catch (e) {
          failed = true;
          err = e;
        }
      }
      if (!failed) {
        if (text !== undefined) {
          if (!server.underscoreAssigned) server.last = value;
          send({ type: 'result', bundle: { 'text/plain': text } });
        }
        send({ type: 'done', status: 'ok' });
      } else if (cell.interrupted || isInterruption(err)) {
        send({ type: 'exception', name: 'Interrupted', message: INTERRUPTED, traceback: [`Interrupted: ${INTERRUPTED}`] });
        send({ type: 'done', status: 'interrupted' });
      } else {
        if (err instanceof repl.Recoverable && err.err) err = err.err;
        if (err && err.name === 'SyntaxError') err = clarifySyntaxError(err, cell);
        if (!server.underscoreErrAssigned) server.lastError = err;
        const d = describe(err, cell.filename, cell.code);
        send({ type: 'exception', name: d.name, message: d.message, traceback: d.traceback, line: d.line });
        send({ type: 'done', status: 'error' });
      }
    } catch (e) {
      send({ type: 'stderr', text: `cove: the driver failed to report a cell: ${e && e.stack}\n` });
      send({ type: 'done', status: 'error' });
    }
    pump();
  }

  // clarifySyntaxError replaces a syntax error that the REPL's top-level
  // await parser reported without a position by V8's own, which has one.
  function clarifySyntaxError(err, cell) {
    const stack = typeof err.stack === 'string' ? err.stack : '';
    if (stack.startsWith(cell.filename + ':') || !/\bawait\b/.test(cell.src)) return err;
    try {
      new vm.Script(`(async () => { ${cell.src}\n})`, { filename: cell.filename });
    } catch (e) {
      if (e && e.name === 'SyntaxError' && typeof e.stack === 'string' && e.stack.startsWith(cell.filename + ':')) {
        return e;
      }
    }
    return err;
  }

  // SIGINT: guarded stops the synchronous part of a cell; a cell that
  // awaits ends here, its promise left behind. Between cells SIGINT is
  // ignored.
  process.on('SIGINT', () => {
    const cell = current;
    if (cell !== null && cell.awaiting) {
      cell.interrupted = true;
      settle(cell, true, new Error(INTERRUPTED));
    }
  });

  function run(req) {
    cells++;
    const filename = typeof req.filename === 'string' && req.filename ? req.filename : `<cell ${cells}>`;
    let code = typeof req.code === 'string' ? req.code : '';
    // The REPL wraps a cell that awaits in a function: a last line that
    // is a comment must not swallow the wrapper's end.
    if (!code.endsWith('\n')) code += '\n';
    if (typeof req.source_map === 'string' && req.source_map) {
      sourceMaps.delete(filename);
      sourceMaps.set(filename, { raw: req.source_map, map: undefined });
      if (sourceMaps.size > MAX_SOURCE_MAPS) sourceMaps.delete(sourceMaps.keys().next().value);
    } else {
      sourceMaps.delete(filename);
    }
    const cell = { filename, code, src: code, finished: false, awaiting: false, interrupted: false };
    current = cell;
    try {
      cell.src = rewriteModuleSyntax(code, filename);
    } catch (err) {
      settle(cell, true, err);
      return;
    }
    if (MAIN_LOADER !== undefined && !/await|import|^\s*\{/.test(cell.src)) {
      runDirectly(cell);
      return;
    }
    // The REPL's evaluator calls back at once for a cell that does not
    // await: its outcome is reported once the watchdog is off, so that a
    // late SIGINT cannot cut a report in half.
    let sync = true;
    let outcome = null;
    const done = (err, value) => {
      // (The REPL passes no error for a thrown undefined or null.)
      const failed = err !== undefined && err !== null;
      if (sync) outcome = [failed, err, value];
      else settle(cell, failed, err, value);
    };
    try {
      guarded(() => server.eval(cell.src, server.context, cell.filename, done));
    } catch (err) {
      if (outcome === null) outcome = [true, err];
    }
    sync = false;
    if (outcome !== null) settle(cell, outcome[0], outcome[1], outcome[2]);
    else cell.awaiting = true;
  }

  // runDirectly runs a cell that neither awaits nor imports, the common
  // case, as the REPL's evaluator would (a script in the main context),
  // but faster: the REPL gives each script its own dynamic import
  // callback, which defeats V8's compilation cache and costs more with
  // every cell run before. Its result is shown under the same watchdog.
  function runDirectly(cell) {
    let script;
    try {
      script = new vm.Script(cell.src, { filename: cell.filename, importModuleDynamically: MAIN_LOADER });
    } catch (err) {
      settle(cell, true, err);
      return;
    }
    let value;
    let text;
    try {
      guarded(() => {
        value = script.runInThisContext(runOptions);
        if (value !== undefined) text = show(value);
      });
    } catch (err) {
      settle(cell, true, err);
      return;
    }
    settle(cell, false, undefined, value, text);
  }

  // pump runs the queued cells one after another. A cell that finishes
  // synchronously calls it again from inside run: the outer loop goes on.
  let pumping = false;
  function pump() {
    if (pumping) return;
    pumping = true;
    try {
      while (current === null && queue.length > 0) {
        const req = queue.shift();
        if (req.type === 'run') run(req);
      }
    } finally {
      pumping = false;
    }
    if (current === null && queue.length === 0 && ended) exit(0);
  }

  // ---- requests -----------------------------------------------------------

  let pending = '';
  const reqDecoder = new StringDecoder('utf8');

  function onData(chunk) {
    pending += reqDecoder.write(chunk);
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (!line.trim()) continue;
      let req;
      try {
        req = parseJSON(line);
      } catch (e) {
        send({ type: 'stderr', text: `cove: a malformed request was ignored: ${e.message}\n` });
        continue;
      }
      if (req && typeof req === 'object') queue.push(req);
    }
    pump();
  }

  function onEnd() {
    ended = true;
    pump();
  }

  let input;
  try {
    input = new net.Socket({ fd: REQ_FD, readable: true, writable: false });
  } catch {
    input = fs.createReadStream(null, { fd: REQ_FD });
  }
  input.on('data', onData);
  input.on('end', onEnd);
  input.on('error', onEnd);

  send({ type: 'ready' });
})();
