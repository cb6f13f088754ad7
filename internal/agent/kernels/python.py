# cove's Python driver: one stateful context. The protocol is documented in
# kernels.go. Everything the driver defines lives in this file's globals,
# which user code never sees: cells run in a namespace of their own.
import ast
import builtins
import io
import json
import linecache
import os
import signal
import sys
import time
import traceback
import types
import _thread

# Charts render to images; set before any user code imports matplotlib.
os.environ["MPLBACKEND"] = "Agg"

_G = globals()
_MAIN_THREAD = _thread.get_ident()
_get_ident = _thread.get_ident
_write = os.write
_dumps = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode
_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
_CO_COROUTINE = 0x80
# Messages carry at most this many characters of stream text each, so
# that one line stays well under the agent's bound on a message.
_TEXT_CHUNK = 256 << 10
# A stream sends what it buffered once a line ends or this many
# characters are waiting.
_STREAM_BUFFER = 8192


class _State:
    """The driver's mutable state."""

    running = False  # a cell runs: SIGINT interrupts it
    pending = False  # SIGINT came while the driver's own code ran
    filename = "<cell>"
    loop = None  # the event loop of top-level await, made on first use
    # hold gathers the main thread's last messages of a cell, so that
    # they and done leave in one write.
    hold = None


_st = _State()
# _lock keeps messages whole when several threads print at once.
_lock = _thread.RLock()


def _on_sigint(signum, frame):
    # KeyboardInterrupt is raised only in user code (and what it calls):
    # the driver's own frames note it and raise it at a safe point, so a
    # message is never cut in half and a cell always ends with done.
    if not _st.running:
        return
    if frame is not None and frame.f_globals is _G:
        _st.pending = True
        return
    raise KeyboardInterrupt


def _check():
    """Raises a KeyboardInterrupt noted while the driver's code ran."""
    if _st.pending and _st.running and _get_ident() == _MAIN_THREAD:
        _st.pending = False
        raise KeyboardInterrupt


def _emit(data):
    """Writes whole lines to fd 4."""
    if _st.hold is not None and _get_ident() == _MAIN_THREAD:
        _st.hold.append(data)
        return
    with _lock:
        view = memoryview(data)
        try:
            while view:
                n = _write(4, view)
                view = view[n:]
        except OSError:
            # The agent is gone: so is the context.
            os._exit(0)


def _send(msg):
    _emit((_dumps(msg) + "\n").encode("utf-8", "backslashreplace"))


class _Out(io.TextIOBase):
    """sys.stdout or sys.stderr: text sent as messages on fd 4."""

    def __init__(self, name, fd):
        self._type = name
        self._fd = fd
        self._buf = []
        self._size = 0
        self._other = None
        self.buffer = _BinaryOut(self)

    @property
    def name(self):
        return "<%s>" % self._type

    @property
    def encoding(self):
        return "utf-8"

    @property
    def errors(self):
        return "strict"

    @property
    def line_buffering(self):
        return True

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        # The real descriptor: what writes to it (subprocesses, native
        # code, faulthandler) reaches the agent through its pipe.
        return self._fd

    def close(self):
        # Closing would end the context's output for good.
        self.flush()

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        if not s:
            return 0
        with _lock:
            other = self._other
            if other._buf:
                # Keep the order in which the two streams were written.
                other._flush()
            self._buf.append(s)
            self._size += len(s)
            if self._size >= _STREAM_BUFFER or "\n" in s:
                self._flush()
        _check()
        return len(s)

    def writelines(self, lines):
        for s in lines:
            self.write(s)

    def flush(self):
        if self._buf:
            with _lock:
                self._flush()
            _check()

    def _flush(self):
        # Called with _lock held.
        if not self._buf:
            return
        text = "".join(self._buf)
        self._buf.clear()
        self._size = 0
        for i in range(0, len(text), _TEXT_CHUNK):
            _send({"type": self._type, "text": text[i : i + _TEXT_CHUNK]})


class _BinaryOut(io.RawIOBase):
    """sys.stdout.buffer: bytes decoded as UTF-8 (invalid bytes become U+FFFD)."""

    def __init__(self, text):
        import codecs

        self._text = text
        self._dec = codecs.getincrementaldecoder("utf-8")("replace")

    def writable(self):
        return True

    def fileno(self):
        return self._text._fd

    def write(self, b):
        b = bytes(b)
        self._text.write(self._dec.decode(b))
        return len(b)

    def flush(self):
        self._text.flush()

    def close(self):
        self.flush()


_stdout = _Out("stdout", 1)
_stderr = _Out("stderr", 2)
_stdout._other, _stderr._other = _stderr, _stdout


def _flush_streams():
    with _lock:
        _stdout._flush()
        _stderr._flush()


def _send_event(msg):
    """Sends a display, result or exception after the output before it."""
    with _lock:
        _stdout._flush()
        _stderr._flush()
        _send(msg)


# Representations, as IPython's display machinery finds them.
_REPR_METHODS = (
    ("_repr_html_", "text/html"),
    ("_repr_markdown_", "text/markdown"),
    ("_repr_svg_", "image/svg+xml"),
    ("_repr_png_", "image/png"),
    ("_repr_jpeg_", "image/jpeg"),
    ("_repr_latex_", "text/latex"),
    ("_repr_json_", "application/json"),
    ("_repr_javascript_", "application/javascript"),
)
_PLAIN_TYPES = frozenset((int, float, complex, bool, str, bytes, bytearray, list, tuple, dict, set, frozenset, range))


def _method(obj, name):
    try:
        f = getattr(obj, name, None)
    except Exception:
        return None
    return f if callable(f) else None


def _mime_text(v):
    if isinstance(v, str):
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        import base64

        return base64.b64encode(bytes(v)).decode("ascii")
    try:
        return json.dumps(v)
    except Exception:
        return str(v)


def _repr_failed(what, obj, e):
    try:
        name = type(obj).__name__
    except Exception:
        name = "object"
    _stderr.write("%s of %s raised %s: %s\n" % (what, name, type(e).__name__, _safe_str(e)))


def _figure_class():
    mod = sys.modules.get("matplotlib.figure")
    return getattr(mod, "Figure", None) if mod is not None else None


def _figure_bundle(fig):
    import base64

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return {"image/png": base64.b64encode(buf.getvalue()).decode("ascii"), "text/plain": repr(fig)}


def _bundle(obj):
    """The representations of obj, text/plain always among them."""
    t = type(obj)
    if t in _PLAIN_TYPES or isinstance(obj, type):
        return {"text/plain": repr(obj)}
    _check()
    fig = _figure_class()
    if fig is not None and isinstance(obj, fig):
        b = _figure_bundle(obj)
        _close_figure(obj)
        return b
    b = {}
    # An object that answers every attribute (a mock, a proxy) has no
    # rich representation.
    if _method(obj, "_cove_canary_method_should_not_exist_") is None:
        f = _method(obj, "_repr_mimebundle_")
        if f is not None:
            try:
                r = f(include=None, exclude=None)
                if isinstance(r, tuple):
                    r = r[0]
                if isinstance(r, dict):
                    for k, v in r.items():
                        b[str(k)] = _mime_text(v)
            except Exception as e:
                _repr_failed("_repr_mimebundle_()", obj, e)
        for name, mime in _REPR_METHODS:
            if mime in b:
                continue
            f = _method(obj, name)
            if f is None:
                continue
            try:
                v = f()
            except Exception as e:
                if not isinstance(e, NotImplementedError):
                    _repr_failed(name + "()", obj, e)
                continue
            if isinstance(v, tuple):
                v = v[0]
            if v is not None:
                b[mime] = _mime_text(v)
    if "text/plain" not in b:
        b["text/plain"] = repr(obj)
    return b


def display(*objs):
    """Shows each object in the cell's output, as rich as it can be shown."""
    for obj in objs:
        _send_event({"type": "display", "bundle": _bundle(obj)})
    _check()


# --- matplotlib


def _close_figure(fig):
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        try:
            plt.close(fig)
        except Exception:
            pass


def _show_figures():
    """Sends every open pyplot figure as a display and closes it."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    for num in plt.get_fignums():
        fig = plt.figure(num)
        try:
            b = _figure_bundle(fig)
        finally:
            plt.close(fig)
        _send_event({"type": "display", "bundle": b})


def _show(*args, **kwargs):
    """matplotlib.pyplot.show: displays the open figures."""
    _show_figures()
    _check()


def _patch_pyplot():
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None and getattr(plt, "show", None) is not _show:
        plt.show = _show


class _PyplotFinder:
    """Patches pyplot.show as soon as pyplot is imported, so that show()
    works in the cell that imports it. It finds nothing itself: it wraps
    the loader that the path finder returns for matplotlib.pyplot."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "matplotlib.pyplot":
            return None
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name, path, target)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            module.show = _show

        loader.exec_module = exec_and_patch
        return spec


sys.meta_path.insert(0, _PyplotFinder)


# --- cells


def _input(prompt=""):
    if prompt:
        _stdout.write(str(prompt))
    raise EOFError("input() cannot read: a context's cells have no standard input (it is /dev/null)")


def _safe_str(e):
    try:
        return str(e)
    except Exception:
        return "<str() of the exception failed>"


_main = types.ModuleType("__main__")
_ns = _main.__dict__
_ns["__builtins__"] = builtins
sys.modules["__main__"] = _main
builtins.display = display
builtins.input = _input
sys.argv = [""]


def _run_code(code):
    _check()
    if code.co_flags & _CO_COROUTINE:
        coro = eval(code, _ns)
        if _st.loop is None:
            import asyncio

            _st.loop = asyncio.new_event_loop()
        return _st.loop.run_until_complete(coro)
    return eval(code, _ns)


def _source_lines(code):
    """The cell's lines as linecache holds a file's: split where the
    compiler counts lines (not at form feeds or other characters
    str.splitlines splits at), each ending in a newline. traceback counts
    the last line's newline when it places its carets under a line."""
    lines = io.StringIO(code, newline=None).readlines()
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return lines


def _cell(code, filename):
    _patch_pyplot()
    linecache.cache[filename] = (len(code), None, _source_lines(code), filename)
    tree = compile(code, filename, "exec", ast.PyCF_ONLY_AST | _FLAGS, True)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    if tree.body:
        _run_code(compile(tree, filename, "exec", _FLAGS, True))
    if last is not None:
        value = _run_code(compile(last, filename, "eval", _FLAGS, True))
        _st.hold = []
        if value is not None:
            _ns["_"] = value
            _send_event({"type": "result", "bundle": _bundle(value)})
    _patch_pyplot()


def _run(req):
    code = req.get("code")
    filename = req.get("filename")
    if not isinstance(code, str):
        code = ""
    if not isinstance(filename, str) or not filename:
        filename = "<cell>"
    _st.filename = filename
    err = None
    _st.pending = False
    cpu = _process_time_ns()
    children = _children_cpu()
    _st.running = True
    try:
        _cell(code, filename)
    except BaseException as e:
        err = e
    if _st.hold is None:
        _st.hold = []
    try:
        _show_figures()
    except BaseException as e:
        if err is None:
            err = e
    _st.running = False
    _st.pending = False
    status = "ok"
    if err is not None:
        status = "interrupted" if isinstance(err, KeyboardInterrupt) else "error"
        _report(err, filename)
    _flush_streams()
    cpu = _process_time_ns() - cpu + round((_children_cpu() - children) * 1e9)
    held, _st.hold = _st.hold, None
    held.append((_dumps({"type": "done", "status": status, "cpu_ns": cpu}) + "\n").encode())
    _emit(b"".join(held))


_process_time_ns = time.process_time_ns


def _children_cpu():
    t = os.times()
    return t.children_user + t.children_system


def _filter_tb(tb):
    """The traceback without the driver's frames."""
    kept = []
    while tb is not None:
        if tb.tb_frame.f_globals is not _G:
            kept.append(tb)
        tb = tb.tb_next
    out = None
    for t in reversed(kept):
        out = types.TracebackType(out, t.tb_frame, t.tb_lasti, t.tb_lineno)
    return out


def _report(e, filename):
    seen = set()
    x = e
    while x is not None and id(x) not in seen:
        seen.add(id(x))
        x.__traceback__ = _filter_tb(x.__traceback__)
        x = x.__cause__ or x.__context__
    line = 0
    if isinstance(e, SyntaxError) and e.filename == filename:
        line = e.lineno or 0
    tb = e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    try:
        lines = traceback.format_exception(e)
    except Exception:
        lines = ["%s: %s\n" % (type(e).__name__, _safe_str(e))]
    sys.last_type, sys.last_value, sys.last_traceback = type(e), e, e.__traceback__
    _send_event(
        {
            "type": "exception",
            "name": type(e).__name__,
            "message": _safe_str(e),
            "traceback": lines,
            "line": line or 0,
        }
    )


def _serve():
    signal.signal(signal.SIGINT, _on_sigint)
    sys.stdout, sys.stderr = _stdout, _stderr
    requests = open(3, "rb", buffering=1 << 16)
    _send({"type": "ready"})
    while True:
        line = requests.readline()
        if not line:
            break
        try:
            req = json.loads(line)
        except ValueError:
            continue
        if isinstance(req, dict) and req.get("type") == "run":
            _run(req)
    _flush_streams()
    os._exit(0)


_serve()
