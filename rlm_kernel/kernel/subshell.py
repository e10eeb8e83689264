"""The run tree's clicks (Pause, Stop, Note, show all) on a kernel subshell of their own.

A generated cell that waits in a sync helper (`llm_query_batched(..., batch=True)` can wait for
minutes) holds the main shell, and ipykernel 7 sends a comm's messages to the shell that last
published on it, which for a run view is the main one: a Stop click would wait until the batch
ended. So the kernel starts one subshell (ipykernel ≥ 7, kernel subshells) and, while a generated
cell runs, routes the run views' incoming messages there, whatever the front end's
`commsOverSubshells` setting. The view's handlers are thread safe (they call Steering). Between
cells the main shell is free (the loop awaits the model), and messages stay there: handling a
pause on the subshell then left a raw-client test's run waiting (not understood yet).

This leans on two ipykernel 7.4 internals: the shell channel thread's SubshellManager and the comm's
`_reply_subshell_for` routing hook. Without them (an older ipykernel) nothing changes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

_log = logging.getLogger(__name__)
#: Seconds to wait for the shell channel thread to start the subshell.
START_TIMEOUT = 5.0


def _start_subshell(kernel: Any) -> str | None:
    """A subshell started on the kernel's shell channel thread (where ipykernel makes them), or None."""
    channel = getattr(kernel, "shell_channel_thread", None)
    manager = getattr(channel, "manager", None) if channel is not None else None
    if manager is None or not hasattr(manager, "_create_subshell") or not getattr(
            kernel, "_supports_kernel_subshells", False):
        return None
    made: dict[str, Any] = {}
    done = threading.Event()

    def create() -> None:
        try:
            made["id"] = manager._create_subshell()
        except Exception as exc:  # an ipykernel that changed: keep the main shell
            made["error"] = exc
        finally:
            done.set()

    channel.io_loop.add_callback(create)
    if not done.wait(START_TIMEOUT) or "id" not in made:
        _log.warning("rlm: no subshell for the run tree (%s); its clicks wait for a running cell",
                     made.get("error", "timed out"))
        return None
    return str(made["id"])


def route_to_subshell(comm: Any, kernel: Any, blocked: Callable[[], bool]) -> bool:
    """While `blocked()` says the main shell is held (a generated cell runs), have the browser's
    messages on `comm` handled on the kernel's run-tree subshell (started on first use); otherwise
    they go where ipykernel sends them. False when this ipykernel has no subshells to route to."""
    route = getattr(comm, "_reply_subshell_for", None)
    if kernel is None or route is None:
        return False
    subshell = getattr(kernel, "_rlm_subshell", None)
    if subshell is None:
        subshell = _start_subshell(kernel)
        if subshell is None:
            return False
        kernel._rlm_subshell = subshell
    comm._reply_subshell_for = lambda data, default: subshell if blocked() else route(data, default)
    return True
