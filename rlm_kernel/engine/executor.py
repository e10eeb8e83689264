"""The headless executor: runs generated code in a plain dict namespace, outside Jupyter.

It is what `rlm()` uses in scripts and what child runs (rlm_query) always use. The kernel has its
own executor on IPython's shell; both produce nbformat-shaped output dicts."""

from __future__ import annotations

import ast
import linecache
import time
import traceback
from typing import Any

from .capture import captured
from .types import CellOutcome
from .watchdog import CellTimeout, time_limit


def mimebundle(obj: Any) -> dict[str, Any]:
    """The display data of an object the way IPython would show it, without IPython."""
    data: dict[str, Any] = {"text/plain": repr(obj)}
    for meth, mime in (("_repr_html_", "text/html"), ("_repr_markdown_", "text/markdown"),
                       ("_repr_png_", "image/png"), ("_repr_svg_", "image/svg+xml")):
        fn = getattr(obj, meth, None)
        if callable(fn) and not isinstance(obj, type):
            try:
                value = fn()
            except Exception:
                continue
            if value is not None:
                if isinstance(value, bytes):
                    import base64

                    value = base64.b64encode(value).decode("ascii")
                data[mime] = value
    return data


class HeadlessExecutor:
    """Executes code with exec() in `namespace`, capturing prints, the last expression's value,
    display() calls and tracebacks as nbformat v4 outputs."""

    def __init__(self, namespace: dict[str, Any] | None = None, name: str = "rlm") -> None:
        self.namespace: dict[str, Any] = namespace if namespace is not None else {}
        self.namespace.setdefault("__name__", "__rlm__")
        self._count = 0
        self._name = name

    async def run_cell(self, code: str, *, timeout: float | None) -> CellOutcome:
        self._count += 1
        filename = f"<{self._name}-cell-{self._count}>"
        outputs: list[dict[str, Any]] = []
        chunks: dict[int, list[str]] = {}  # stream output index -> its pieces, joined once at the end

        def sink(stream: str, text: str) -> None:
            last = len(outputs) - 1
            if last >= 0 and outputs[last].get("output_type") == "stream" and outputs[last]["name"] == stream:
                chunks[last].append(text)  # appending to a str would make many small prints quadratic
            else:
                outputs.append({"output_type": "stream", "name": stream, "text": ""})
                chunks[last + 1] = [text]

        def display(*objs: Any, **_: Any) -> None:
            for obj in objs:
                outputs.append({"output_type": "display_data", "data": mimebundle(obj), "metadata": {}})

        self.namespace["display"] = display  # bound to this cell's outputs
        outcome = CellOutcome(execution_count=self._count)
        start = time.perf_counter()
        interrupt: KeyboardInterrupt | None = None
        try:
            try:
                with captured(sink), time_limit(timeout):
                    value = self._exec(code, filename)
            finally:
                for i, pieces in chunks.items():
                    outputs[i]["text"] = "".join(pieces)
            if value is not None:
                outputs.append({"output_type": "execute_result", "execution_count": self._count,
                                "data": mimebundle(value), "metadata": {}})
        except CellTimeout as exc:
            outcome.timed_out = True
            outcome.error = _error_dict(exc, filename)
        except KeyboardInterrupt as exc:  # raised by the code or a person's interrupt: the run decides
            outcome.interrupted = True
            outcome.error = _error_dict(exc, filename)
            interrupt = exc
        except BaseException as exc:  # the model's code may raise anything, SystemExit included
            outcome.error = _error_dict(exc, filename)
        if outcome.error:
            outputs.append({"output_type": "error", **outcome.error})
        outcome.outputs = outputs
        outcome.duration = time.perf_counter() - start
        if interrupt is not None:
            interrupt.outcome = outcome  # type: ignore[attr-defined]  # what the cell did before it
            raise interrupt
        return outcome

    def _exec(self, code: str, filename: str) -> Any:
        linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
        tree = ast.parse(code, filename=filename, mode="exec")
        last = tree.body[-1] if tree.body else None
        if isinstance(last, ast.Expr):
            tree.body.pop()
            exec(compile(tree, filename, "exec"), self.namespace)
            expr = ast.Expression(last.value)
            value = eval(compile(expr, filename, "eval"), self.namespace)
            return value
        exec(compile(tree, filename, "exec"), self.namespace)
        return None


def _error_dict(exc: BaseException, filename: str) -> dict[str, Any]:
    """Traceback from the generated code's frames on: engine frames are noise to the model."""
    tb = exc.__traceback__
    while tb is not None and not tb.tb_frame.f_code.co_filename.startswith("<"):
        tb = tb.tb_next
    lines = traceback.format_exception(type(exc), exc, tb)
    return {"ename": type(exc).__name__, "evalue": str(exc), "traceback": [ln.rstrip("\n") for ln in lines]}
