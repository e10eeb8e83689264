"""RLMKernel: the standard IPython kernel plus `%%rlm`.

Every ordinary cell runs exactly as in ipykernel (completion, inspection, history, rich display);
the kernel adds the RLM magics, `rlm` in the namespace and the `c.RLMKernel.*` defaults."""

from __future__ import annotations

import threading
from typing import Any

from ipykernel.ipkernel import IPythonKernel
from traitlets import Type

from .. import __version__
from . import magics, transform
from .busy import BusyWhileExecuting
from .compiler import RLMCompiler
from .config import RLMSettings


class RLMKernel(BusyWhileExecuting, IPythonKernel, RLMSettings):
    implementation = "rlm_kernel"
    implementation_version = __version__
    compiler_class = Type(RLMCompiler)  # tracebacks of generated cells say rlm[N], as the tree does

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rlm_magics = magics.register(self.shell, settings=self)
        self._warm_gate = threading.Event()
        self.rlm_warmup = self._start_warmup()

    def _start_warmup(self) -> Any:
        """Import the SDK and build the configured model client on a daemon thread, so the first
        %%rlm does not pay for them (seconds in a fresh kernel). It waits for the first kernel_info
        reply (see warmup's `after`) and never raises into start-up."""
        try:
            from ..engine.warmup import warmup

            return warmup(self.rlm_magics.defaults.options(), after=self._warm_gate)
        except Exception:  # a bad default is reported by the first %%rlm, not here
            return None

    @property
    def kernel_info(self) -> dict[str, Any]:  # type: ignore[override]
        """ipykernel's, without the "debugger" feature: a front end then hides its debugger UI,
        which has not been tested with RLM runs."""
        info = dict(super().kernel_info)
        info["supported_features"] = [f for f in info.get("supported_features", []) if f != "debugger"]
        return info

    async def kernel_info_request(self, stream: Any, ident: Any, parent: Any) -> None:
        await super().kernel_info_request(stream, ident, parent)
        self._warm_gate.set()  # the client has seen the kernel start: the warm-up may take the GIL now

    @property
    def banner(self) -> str:  # type: ignore[override]
        return (super().banner + f"\nRLM kernel {__version__}: ask questions about big inputs with %%rlm "
                "(help: %%rlm --help, %rlm help).\n")

    async def do_execute(self, code: str, silent: bool, store_history: bool = True,
                         user_expressions: dict[str, Any] | None = None, allow_stdin: bool = False, *,
                         cell_meta: dict[str, Any] | None = None, cell_id: str | None = None) -> dict[str, Any]:
        """Run the cell as ipykernel does. An RLM cell must take ipykernel's coroutine path, where
        comm messages are served while the model is awaited, so it gets autoawait even if a
        person turned it off for ordinary cells."""
        shell = self.shell
        # ipykernel resets these in shell.run_cell only; coroutine cells (every %%rlm cell) skip it, so
        # a UsageError there read a stale or missing traceback and, in a fresh kernel, got no reply.
        shell._last_traceback = None
        shell._last_traceback_during_displayhook = False
        forced = not shell.autoawait and transform.is_rlm_cell(code)
        if forced:
            shell.autoawait = True
        try:
            return await super().do_execute(code, silent, store_history, user_expressions, allow_stdin,
                                            cell_meta=cell_meta, cell_id=cell_id)
        finally:
            if forced:
                shell.autoawait = False
