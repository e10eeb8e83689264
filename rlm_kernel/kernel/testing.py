"""Real RLM kernels for tests: isolated Jupyter directories, the kernelspec installed into a temp
prefix, and a small client that runs a cell and collects its outputs as a notebook would.

Used by this package's tests and by neighbours that drive the kernel (widget comm tests)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any

from jupyter_client.manager import KernelManager

from ..engine.text import strip_ansi
from .install import KERNEL_NAME, install

#: Environment variables a test kernel must never inherit: real keys, SDK profiles, RLM defaults.
SCRUBBED_PREFIXES = ("ANTHROPIC_", "OPENAI_", "RLM_")


@contextlib.contextmanager
def jupyter_sandbox(root: Path) -> Iterator[Path]:
    """Point every Jupyter/IPython directory (and HOME) under `root`, install the `rlm` kernelspec
    into `root/prefix` and put it on JUPYTER_PATH; undo it all on exit. Yields the work directory
    kernels start in."""
    root.mkdir(parents=True, exist_ok=True)
    saved = dict(os.environ)
    prefix = root / "prefix"
    work = root / "work"
    work.mkdir(exist_ok=True)
    for name in list(os.environ):
        if name.startswith(SCRUBBED_PREFIXES):
            del os.environ[name]
    os.environ.update({
        "HOME": str(root / "home"),
        "JUPYTER_CONFIG_DIR": str(root / "config"),
        "JUPYTER_DATA_DIR": str(root / "data"),
        "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
        "IPYTHONDIR": str(root / "ipython"),
        "JUPYTER_PATH": str(prefix / "share" / "jupyter"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    })
    try:
        install(prefix=str(prefix))
        yield work
    finally:
        os.environ.clear()
        os.environ.update(saved)


#: The run tree's output type (rlm_kernel.widget.view.RUN_MIME; the kernel room does not import the widget's).
RUN_MIME = "application/vnd.rlm.run+json"


@dataclass
class Cell:
    """What one execute request produced."""

    reply: dict[str, Any]
    outputs: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.reply["status"]

    @property
    def text(self) -> str:
        """Everything a person would read in the cell, as plain text."""
        parts = []
        for out in self.outputs:
            kind = out["output_type"]
            if kind == "stream":
                parts.append(out["text"])
            elif kind in ("execute_result", "display_data"):
                parts.append(str(out["data"].get("text/plain", "")) + "\n")
            elif kind == "error":
                parts.append(strip_ansi("\n".join(out["traceback"])) + "\n")
        return "".join(parts)

    @property
    def tree_text(self) -> str:
        """What the generated cells printed, as the run tree shows it: the stream outputs in the last
        copy of the run the cell's output carries (application/vnd.rlm.run+json)."""
        bundles = [m["content"]["data"][RUN_MIME] for m in self.messages
                   if m["msg_type"] in ("display_data", "update_display_data") and RUN_MIME in m["content"]["data"]]
        last = bundles[-1] if bundles else {}
        items = json.loads(last["items_json"]) if "items_json" in last else last.get("items", [])
        return "".join(o.get("text", "") for i in items if i["type"] == "cell_finished"
                       for o in i.get("outputs") or [] if o["output_type"] == "stream")

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.outputs if o["output_type"] == kind]


class KernelSession:
    """One kernel process and a blocking client, started in `cwd` with `env` additions; as a
    context manager, shut down on exit."""

    def __init__(self, cwd: Path, env: dict[str, str] | None = None, kernel_name: str = KERNEL_NAME) -> None:
        self.km = KernelManager(kernel_name=kernel_name)
        self.km.start_kernel(cwd=str(cwd), env={**os.environ, **(env or {})})
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def __enter__(self) -> KernelSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def execute(self, code: str) -> str:
        return self.kc.execute(code, allow_stdin=False)

    def collect(self, msg_id: str, timeout: float = 60) -> Cell:
        """Wait for the request's idle status; outputs are built the way nbclient builds them."""
        deadline = time.monotonic() + timeout
        cell = Cell(reply={})
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no idle status within {timeout} s; outputs so far: {cell.outputs}")
            try:
                msg = self.kc.get_iopub_msg(timeout=remaining)
            except Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            cell.messages.append(msg)
            kind = msg["msg_type"]
            content = msg["content"]
            if kind == "status" and content["execution_state"] == "idle":
                break
            if kind == "stream":
                if cell.outputs and cell.outputs[-1]["output_type"] == "stream" \
                        and cell.outputs[-1]["name"] == content["name"]:
                    cell.outputs[-1]["text"] += content["text"]
                else:
                    cell.outputs.append({"output_type": "stream", "name": content["name"], "text": content["text"]})
            elif kind in ("display_data", "execute_result"):
                out = {"output_type": kind, "data": content["data"], "metadata": content.get("metadata", {})}
                if kind == "execute_result":
                    out["execution_count"] = content["execution_count"]
                cell.outputs.append(out)
            elif kind == "error":
                cell.outputs.append({"output_type": "error", "ename": content["ename"],
                                     "evalue": content["evalue"], "traceback": content["traceback"]})
            elif kind == "clear_output":
                cell.outputs.clear()
        while True:
            reply = self.kc.get_shell_msg(timeout=max(1.0, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                cell.reply = reply["content"]
                return cell

    def run(self, code: str, timeout: float = 60) -> Cell:
        return self.collect(self.execute(code), timeout)

    def wait_for_output(self, msg_id: str, needle: str, timeout: float = 30) -> Cell:
        """Read outputs of a running request until `needle` appears in its text, or in the live output
        a run tree is sent of the generated cell running now (not waiting for idle)."""
        deadline = time.monotonic() + timeout
        cell = Cell(reply={})
        while time.monotonic() < deadline:
            try:
                msg = self.kc.get_iopub_msg(timeout=0.2)
            except Empty:
                continue
            if msg["msg_type"] == "comm_msg":  # sent from the tree's own thread: any parent
                items = (msg["content"].get("data") or {}).get("items") or []
                if any(i.get("type") == "cell_stream" and needle in i.get("text", "") for i in items):
                    return cell
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            cell.messages.append(msg)
            if msg["msg_type"] == "stream" and needle in msg["content"]["text"]:
                return cell
        raise TimeoutError(f"{needle!r} did not appear within {timeout} s")

    def interrupt(self) -> None:
        self.km.interrupt_kernel()

    def kill_hard(self) -> None:
        """SIGKILL the kernel process, as a crash or an OOM killer would."""
        pid = self.km.provisioner.process.pid  # type: ignore[union-attr]
        os.kill(pid, signal.SIGKILL)
        self.km.provisioner.process.wait()  # type: ignore[union-attr]
        self.kc.stop_channels()
        with contextlib.suppress(Exception):
            self.km.cleanup_resources()

    def shutdown(self) -> None:
        self.kc.stop_channels()
        with contextlib.suppress(Exception):
            self.km.shutdown_kernel(now=True)
