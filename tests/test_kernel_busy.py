"""While a cell runs, the kernel's status as a front end reads it (the latest status message on
IOPub, whatever its parent, as JupyterLab does) stays busy when a control request or a subshell's
request is answered beside it, and is idle once the cell is done. A real RLM kernel, driven by
jupyter_client; the requests are the ones JupyterLab sends when comms go over subshells."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from queue import Empty
from typing import Any

import pytest

from rlm_kernel.kernel.testing import KernelSession, jupyter_sandbox


@pytest.fixture(scope="module")
def ks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelSession]:
    root = tmp_path_factory.mktemp("busy")
    with jupyter_sandbox(root) as work, KernelSession(Path(work)) as session:
        yield session


def control(ks: KernelSession, msg_type: str, content: dict[str, Any]) -> dict[str, Any]:
    msg = ks.kc.session.msg(msg_type, content)
    ks.kc.control_channel.send(msg)
    while True:
        reply = ks.kc.control_channel.get_msg(timeout=10)
        if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
            return reply


def on_subshell(ks: KernelSession, subshell_id: str) -> str:
    """A kernel_info_request handled by the subshell's own thread; returns its msg_id."""
    msg = ks.kc.session.msg("kernel_info_request", {})
    msg["header"]["subshell_id"] = subshell_id
    ks.kc.shell_channel.send(msg)
    return msg["header"]["msg_id"]


def statuses_until_idle(ks: KernelSession, msg_id: str, timeout: float = 30) -> list[tuple[str, str | None]]:
    """Every status message (state, parent's msg_type) up to the idle of request `msg_id`."""
    seen: list[tuple[str, str | None]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = ks.kc.get_iopub_msg(timeout=0.5)
        except Empty:
            continue
        if msg["msg_type"] != "status":
            continue
        parent = msg["parent_header"]
        seen.append((msg["content"]["execution_state"], parent.get("msg_type")))
        if parent.get("msg_id") == msg_id and msg["content"]["execution_state"] == "idle":
            return seen
    raise TimeoutError(f"no idle for {msg_id} within {timeout} s; statuses: {seen}")


def drain(ks: KernelSession) -> None:
    while True:
        try:
            ks.kc.get_iopub_msg(timeout=0.3)
        except Empty:
            return


def test_requests_beside_a_running_cell_leave_the_kernel_busy(ks: KernelSession) -> None:
    subshell = control(ks, "create_subshell_request", {})["content"]["subshell_id"]
    drain(ks)
    cell = ks.execute("import time\ntime.sleep(2.5)\nprint('slept')")
    time.sleep(0.5)  # the cell is running
    created = control(ks, "create_subshell_request", {})  # what JupyterLab sends for a run's first comm
    assert created["content"]["status"] == "ok"
    time.sleep(0.2)
    answered = on_subshell(ks, subshell)  # a message on a subshell, as a widget's comm_msg would be
    seen = statuses_until_idle(ks, cell)
    # the state a front end shows after each status message: busy until the cell's own idle
    cell_busy = seen.index(("busy", "execute_request"))
    during = seen[cell_busy:-1]
    assert ("idle", "create_subshell_request") in during and ("idle", "kernel_info_request") in during, seen
    for i, (state, parent) in enumerate(during):
        if state == "idle":
            assert during[i + 1] == ("busy", "execute_request"), f"left idle after {parent}: {seen}"
    assert seen[-1] == ("idle", "execute_request")
    reply = ks.kc.get_shell_msg(timeout=10)
    while reply["parent_header"].get("msg_id") != answered:
        reply = ks.kc.get_shell_msg(timeout=10)
    drain(ks)


def test_with_no_cell_running_a_control_request_ends_idle(ks: KernelSession) -> None:
    drain(ks)
    reply = control(ks, "create_subshell_request", {})
    seen = statuses_until_idle(ks, reply["parent_header"]["msg_id"])
    time.sleep(0.5)
    try:
        late = ks.kc.get_iopub_msg(timeout=0.5)
    except Empty:
        late = None
    assert seen[-1] == ("idle", "create_subshell_request")
    assert late is None or late["msg_type"] != "status", late
