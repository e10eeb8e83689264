"""A real JupyterLab server and Chromium settings for the browser tests (fixtures: conftest.py).

Each server runs on a free loopback port with every Jupyter directory in a temp folder (the RLM
kernelspec installed there), no token, and the news popup off. `commsOverSubshells` is a
parameter: JupyterLab ≥ 4.4 sends widget messages to kernel subshells by default, and both ways
must work. Needs Debian's chromium (`apt-get install -y chromium`, or any build named by $RLM_CHROMIUM); Playwright
drives it through `executable_path`, so no browser download is needed. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import nbformat

from rlm_kernel.kernel.testing import jupyter_sandbox

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
HOW_TO_ENABLE = "install it with `sudo apt-get install chromium` or set RLM_CHROMIUM=/path/to/chromium"


def find_chromium() -> str | None:
    """The browser to drive: $RLM_CHROMIUM when set (and then only it), else `chromium` on PATH."""
    wanted = os.environ.get("RLM_CHROMIUM")
    if wanted:
        return wanted if Path(wanted).is_file() and os.access(wanted, os.X_OK) else None
    return shutil.which("chromium")


def skip_reason() -> str | None:
    """One line saying why the browser tests cannot run here and how to enable them; None when they can."""
    if find_chromium() is None:
        where = f"RLM_CHROMIUM={os.environ['RLM_CHROMIUM']} is not an executable" if os.environ.get("RLM_CHROMIUM") \
            else "chromium not found on PATH"
        return f"browser tests skipped: {where}; {HOW_TO_ENABLE}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return 'browser tests skipped: playwright is not installed; pip install -e ".[test]"'
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lab:
    """A JupyterLab server process serving `work`."""

    def __init__(self, root: Path, comms_over_subshells: str, env: dict[str, str]) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.comms = comms_over_subshells
        self._stack = contextlib.ExitStack()
        self.work = self._stack.enter_context(jupyter_sandbox(root))
        settings = Path(os.environ["JUPYTER_CONFIG_DIR"]) / "lab" / "user-settings" / "@jupyterlab"
        self._write(settings / "apputils-extension" / "notification.jupyterlab-settings",
                    {"fetchNews": "false", "checkForUpdates": False})
        self._write(settings / "apputils-extension" / "kernels-settings.jupyterlab-settings",
                    {"commsOverSubshells": comms_over_subshells})
        link_labextension(Path(os.environ["JUPYTER_PATH"]))
        self.log = open(root / "lab.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={self.port}", "--ip=127.0.0.1",
             "--ServerApp.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
             "--ServerApp.port_retries=0", f"--ServerApp.root_dir={self.work}", "--allow-root",
             "--ServerApp.open_browser=False"],
            cwd=self.work, env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_up()

    @staticmethod
    def _write(path: Path, data: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))

    def _wait_up(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited: {(self.root / 'lab.log').read_text()[-3000:]}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{self.url}/api/status", timeout=2) as r:
                if r.status == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError("JupyterLab did not start in time")

    def notebook(self, name: str, cells: list[str]) -> str:
        """Write a notebook on the RLM kernel into the server's folder; returns its URL path."""
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
        nb.metadata["kernelspec"] = {"name": "rlm", "display_name": "RLM (Python 3)", "language": "python"}
        nbformat.write(nb, self.work / name)
        return f"{self.url}/lab/tree/{name}"

    def end_sessions(self) -> None:
        """Shut down every kernel the server runs, so the next test starts clean."""
        with urllib.request.urlopen(f"{self.url}/api/sessions", timeout=5) as r:
            sessions = json.load(r)
        for session in sessions:
            req = urllib.request.Request(f"{self.url}/api/sessions/{session['id']}", method="DELETE")
            with contextlib.suppress(OSError), urllib.request.urlopen(req, timeout=15):
                pass

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        self._stack.close()


def link_labextension(share: Path) -> None:
    """Serve the run-tree extension built in this checkout (rlm_kernel/labextension, made by
    `npm run build` in widgets/) ahead of any installed copy; an installed wheel needs nothing."""
    import rlm_kernel

    built = Path(rlm_kernel.__file__).resolve().parent / "labextension"
    if not (built / "package.json").is_file():
        if (Path(rlm_kernel.__file__).resolve().parents[1] / "widgets" / "package.json").is_file():
            raise RuntimeError(f"the run-tree extension is not built: cd widgets && npm ci && npm run build "
                               f"(or make test); looked for {built}")
        return
    target = share / "labextensions" / "rlm-kernel"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        target.symlink_to(built, target_is_directory=True)


def shot(pg: Any, name: str, element: Any = None) -> Path:
    """Save a screenshot under tests/artifacts/ (of one element when given)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    if element is not None:
        element.scroll_into_view_if_needed()
        element.screenshot(path=str(path))
    else:
        pg.screenshot(path=str(path), full_page=False)
    return path
