"""A running cell keeps the kernel Busy in front ends, whatever is answered beside it.

ipykernel publishes busy and then idle on IOPub around every request it handles, control-channel
requests and messages on subshells included, each with that request as parent. JupyterLab takes
the latest status message as the kernel's state whatever its parent (jupyterlab#10701). With comms
over subshells (JupyterLab's default) it asks for a subshell, a control request, when a run first
opens its comm, so for a kernel's first %%rlm run the status bar read Idle from its first step to its
end; a widget on a subshell did the same on every message.

So after such a request, while a cell is executing on the main shell, the kernel says again that it
is busy, with that cell's request as parent: true, and what the cell's own busy said. A lock orders
it before the cell's idle, which ipykernel sends once `do_execute` has returned."""

from __future__ import annotations

import threading
from typing import Any


class BusyWhileExecuting:
    """Mixin for an ipykernel Kernel (put it first among the bases)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._busy_lock = threading.Lock()
        self._busy_parent: dict[str, Any] | None = None

    def _publish_status(self, status: str, channel: str, parent: Any = None) -> None:
        """ipykernel's one place for status messages (a private hook; tests/test_kernel_busy.py pins it).
        Right after the idle of a control request or of a subshell's message, in the same call, so
        the two leave back to back."""
        super()._publish_status(status, channel, parent)  # type: ignore[misc]
        if status == "idle" and (channel == "control" or threading.current_thread() is not threading.main_thread()):
            self._still_busy()

    async def do_execute(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        main = threading.current_thread() is threading.main_thread()  # the main shell runs there
        if main:
            with self._busy_lock:
                self._busy_parent = self.get_parent("shell")  # type: ignore[attr-defined]
        try:
            return await super().do_execute(*args, **kwargs)  # type: ignore[misc]
        finally:
            if main:
                with self._busy_lock:
                    self._busy_parent = None

    def _still_busy(self) -> None:
        if getattr(self, "_shutdown_message", None) is not None:
            return  # shutting down: the next word is the kernel's last
        with self._busy_lock:
            if self._busy_parent is not None:
                super()._publish_status("busy", "shell", self._busy_parent)  # type: ignore[misc]
