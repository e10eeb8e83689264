"""ShellExecutor in a real kernel: generated code runs like a typed cell, its outputs reach the
notebook and are also kept as nbformat dicts, and it leaves the person's `_`/Out alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from rlm_kernel.kernel.testing import Cell, KernelSession, jupyter_sandbox


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelSession]:
    with jupyter_sandbox(tmp_path_factory.mktemp("executor")) as work, KernelSession(work) as session:
        session.run("from rlm_kernel.kernel.executor import ShellExecutor\nimport json")
        yield session


def generated(kernel: KernelSession, code: str, *, timeout: float | None = 10, quiet: bool = False
              ) -> tuple[dict[str, Any], Cell]:
    """Run `code` through a ShellExecutor inside the kernel; return (outcome, the person's cell)."""
    cell = kernel.run(f"_o = await ShellExecutor(get_ipython(), quiet={quiet}).run_cell({code!r}, "
                      f"timeout={timeout})")
    assert cell.status == "ok", cell.text
    dump = kernel.run("print(json.dumps(vars(_o)))")
    return json.loads(dump.outputs[0]["text"]), cell


def test_outputs_are_kept_and_still_shown(kernel: KernelSession) -> None:
    code = ("print('hello')\nimport sys; print('careful', file=sys.stderr)\n"
            "from IPython.display import HTML, display\ndisplay(HTML('<b>bold</b>'))\n40 + 2")
    outcome, cell = generated(kernel, code)
    kinds = [(o["output_type"], o.get("name")) for o in outcome["outputs"]]
    assert kinds == [("stream", "stdout"), ("stream", "stderr"), ("display_data", None), ("execute_result", None)]
    assert outcome["outputs"][0]["text"] == "hello\n"
    assert outcome["outputs"][2]["data"]["text/html"] == "<b>bold</b>"
    assert outcome["outputs"][3]["data"]["text/plain"] == "42"
    assert outcome["outputs"][3]["execution_count"] == outcome["execution_count"] == 1
    assert outcome["error"] is None and not outcome["timed_out"] and not outcome["interrupted"]
    # The person sees the same things in their cell, as in any cell.
    assert "hello" in cell.text and "careful" in cell.text and "42" in cell.text
    assert any("text/html" in o.get("data", {}) for o in cell.outputs)


def test_namespace_is_the_users_and_out_history_is_untouched(kernel: KernelSession) -> None:
    kernel.run("'marker'")
    generated(kernel, "made_by_model = 7\nmade_by_model * 6")
    check = kernel.run("(made_by_model, _, 42 in Out.values())")
    assert check.outputs[0]["data"]["text/plain"] == "(7, 'marker', False)"


def test_errors_are_outputs_and_plain_text_for_the_model(kernel: KernelSession) -> None:
    outcome, cell = generated(kernel, "x = 1\n1 / 0")
    err = outcome["error"]
    assert err["ename"] == "ZeroDivisionError"
    assert "\x1b[" not in "".join(err["traceback"])  # the model reads no colour codes
    assert any("1 / 0" in line for line in err["traceback"])
    assert outcome["outputs"][-1]["output_type"] == "error"
    assert cell.status == "ok"  # the model's error does not fail the person's cell
    assert "ZeroDivisionError" in cell.text

    outcome, _ = generated(kernel, "def broken(:\n    pass")
    assert outcome["error"]["ename"] == "SyntaxError"


def test_magics_work_in_generated_code(kernel: KernelSession) -> None:
    outcome, _ = generated(kernel, "%timeit -n1 -r1 sum(range(10))")
    assert "per loop" in outcome["outputs"][0]["text"]


def test_clear_and_update_display_apply_to_the_record_not_the_cell(kernel: KernelSession) -> None:
    code = ("from IPython.display import clear_output, display\nprint('old')\nclear_output()\nprint('new')\n"
            "h = display('v1', display_id=True)\nh.update('v2')")
    outcome, cell = generated(kernel, code)
    texts = [o.get("text") or o.get("data", {}).get("text/plain") for o in outcome["outputs"]]
    assert texts == ["new\n", "'v2'"]
    # clear_output never reaches the notebook: it would wipe the run's own view in that cell.
    assert not [m for m in cell.messages if m["msg_type"] == "clear_output"]


@pytest.mark.parametrize("code", ["import time\ntime.sleep(5)", "import asyncio\nawait asyncio.sleep(5)"],
                         ids=["blocking", "async"])
def test_cell_timeout(kernel: KernelSession, code: str) -> None:
    outcome, _ = generated(kernel, code, timeout=0.3)
    assert outcome["timed_out"]
    assert outcome["duration"] < 3
    assert outcome["error"] is not None


SWALLOWING = ("import time\nwhile True:\n    try:\n        time.sleep(0.05)\n    except BaseException:\n        pass\n"
              "    try:\n        n = sum(range(50))\n    except:\n        pass")


def test_cell_timeout_cannot_be_swallowed_and_the_users_alarm_survives(kernel: KernelSession) -> None:
    """In the kernel too (SIGALRM on the main thread), a cell that catches everything still stops
    about when its limit says, and a timer and handler the person had are there afterwards."""
    kernel.run("import signal, time\nrang = []\nsignal.signal(signal.SIGALRM, lambda s, f: rang.append(1))\n"
               "signal.setitimer(signal.ITIMER_REAL, 4.0)\n_t0 = time.monotonic()")
    outcome, _ = generated(kernel, SWALLOWING, timeout=0.5)
    assert outcome["timed_out"] and outcome["error"]["ename"] == "CellTimeout"
    assert outcome["duration"] < 1.5, outcome["duration"]
    check = kernel.run("left = signal.getitimer(signal.ITIMER_REAL)[0]\n"
                       "print(signal.getsignal(signal.SIGALRM).__name__,\n"
                       "      0 < left <= 4.0 - (time.monotonic() - _t0) + 0.05, rang)")
    assert check.text.strip() == "<lambda> True []", check.text
    assert kernel.run("signal.setitimer(signal.ITIMER_REAL, 0); 6 * 7").outputs[0]["data"]["text/plain"] == "42"


def test_quiet_mode_records_without_showing(kernel: KernelSession) -> None:
    outcome, cell = generated(kernel, "print('rebuilt quietly')\nraise KeyError('k')", quiet=True)
    assert outcome["outputs"][0]["text"] == "rebuilt quietly\n"
    assert outcome["error"]["ename"] == "KeyError"
    assert cell.outputs == []



def test_binary_outputs_are_recorded_as_the_notebook_gets_them(kernel: KernelSession) -> None:
    code = ("class Dot:\n    def _repr_png_(self):\n        return b'\\x89PNG-bytes'\n"
            "from IPython.display import display\ndisplay(Dot())\nDot()")
    outcome, cell = generated(kernel, code)
    recorded = [o["data"]["image/png"] for o in outcome["outputs"]]
    shown = [o["data"]["image/png"] for o in cell.outputs if "image/png" in o.get("data", {})]
    assert recorded == shown == ["iVBORy1ieXRlcw=="] * 2  # base64, as on the wire and in .ipynb files


def test_a_traceback_names_the_generated_cell_as_the_tree_does(kernel: KernelSession) -> None:
    """The tree shows a generated cell as `Cell 1 [n]`; its traceback says `Cell rlm[n]`, not the
    `%%rlm` cell's own `In[k]`, and an ordinary cell's traceback is IPython's as ever."""
    kernel.run("_ex = ShellExecutor(get_ipython())")
    kernel.run("_o = await _ex.run_cell('x = 1', timeout=10)")
    kernel.run("_o = await _ex.run_cell('def f():\\n    return 1 / 0\\nf()', timeout=10)")
    tb = "\n".join(json.loads(kernel.run("print(json.dumps(_o.error['traceback']))").outputs[0]["text"]))
    assert "Cell rlm[2], line 3" in tb and "Cell rlm[2], line 2, in f" in tb and "In[" not in tb
    plain = kernel.run("def g():\n    return 1 / 0\ng()")
    assert "Cell In[" in plain.text and "rlm[" not in plain.text
