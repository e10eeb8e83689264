"""The export's parts on their own: output cleaning (with its second redaction pass) and the context cell."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import nbformat
import pytest

from rlm_kernel.engine.contextfile import UntrustedPickle
from rlm_kernel.engine.redaction import MARK, Redactor
from rlm_kernel.export.outputs import OutputCleaner
from rlm_kernel.export.sidecar import ContextPickleWarning, context_cell

ANT = "sk-" + "ant-api03-" + "abcDEF123_-" * 4
OPENAI = "sk-" + "proj-" + "x" * 30


# --- outputs --------------------------------------------------------------------------------------

def test_outputs_are_normalised_redacted_and_cut():
    cleaner = OutputCleaner(Redactor(env={}), max_chars=1_000)
    png = "iVBORw0KGgo" * 200  # 2,200 base64 characters: over the limit, dropped with a note
    raw: list[dict[str, Any]] = [
        {"output_type": "stream", "name": "stdout", "text": ["line 1\n", f"{ANT}\n"]},
        {"output_type": "display_data", "data": {"image/png": png, "text/plain": "<Figure>"}},
        {"output_type": "execute_result", "data": {"text/plain": "y" * 5_000}},
        {"output_type": "error", "ename": "ValueError", "evalue": ANT, "traceback": ["tb"] * 3},
        {"output_type": "clear_output"},
    ]
    outs = cleaner.outputs(raw, execution_count=7)
    cell = nbformat.v4.new_code_cell("x", outputs=outs, execution_count=7)
    nbformat.validate(nbformat.v4.new_notebook(cells=[cell]))
    assert outs[0].text == f"line 1\n{MARK}\n"
    assert "image/png" not in outs[1].data and "image/png output of about 1,650 bytes left out" in outs[1].data[
        "text/plain"] and outs[1].data["text/plain"].startswith("<Figure>")
    assert outs[2].execution_count == 7 and "4,000 characters cut" in outs[2].data["text/plain"]
    assert outs[3].evalue == MARK
    assert len(outs) == 4 and cleaner.cut_count == 2


def test_image_bytes_logged_as_their_repr_become_base64_again():
    png = bytes.fromhex("89504e470d0a1a0a")
    outs = OutputCleaner(Redactor(env={}), 1_000).outputs(
        [{"output_type": "display_data", "data": {"image/png": repr(png), "text/plain": "<img>"}}], None)
    assert outs[0].data["image/png"] == "iVBORw0KGgo="


# --- the context cell -----------------------------------------------------------------------------

def run(source: str, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(cwd)
    ns: dict[str, Any] = {}
    exec(source, ns)
    return ns["context"]


@pytest.mark.parametrize("value, suffix", [
    ("short text", None),
    ({"a": [1, 2.5, None, True], "b": (1, 2)}, None),
    ("x\r\ny\u2028z" * 10_000, ".txt"),
    (b"\x00\xff" * 20_000, ".bin"),
    ([{"id": i, "text": "é" * 10} for i in range(2_000)], ".json"),
])
def test_context_round_trips_inline_or_through_a_plain_sidecar(tmp_path, monkeypatch, value, suffix):
    cell = context_cell(value, out_path=tmp_path / "nb.ipynb", inline_chars=20_000)
    assert (cell.sidecar.suffix if cell.sidecar else None) == suffix
    assert run(cell.source, tmp_path, monkeypatch) == value
    assert cell.note is None


def test_a_context_json_cannot_keep_becomes_a_python_literal(tmp_path, monkeypatch):
    value = {i: ("row", i) for i in range(3_000)}  # int keys and tuples: JSON would change them
    cell = context_cell(value, out_path=tmp_path / "nb.ipynb", inline_chars=1_000, alias="rows")
    assert cell.sidecar == tmp_path / "nb.context.literal" and cell.note is None
    assert run(cell.source, tmp_path, monkeypatch) == value
    assert cell.source.endswith("rows = context  # the variable the run was started with")


def test_a_context_with_no_plain_format_is_pickled_and_loads_only_with_trust(tmp_path, monkeypatch):
    value = Counter({f"word{i}": i for i in range(3_000)})  # a dict subclass: JSON and literals lose the type
    with pytest.warns(ContextPickleWarning, match="pickle"):
        cell = context_cell(value, out_path=tmp_path / "nb.ipynb", inline_chars=1_000)
    assert cell.sidecar == tmp_path / "nb.context.pkl"
    assert "trust=True" in (cell.note or "") and "trust=False" in cell.source
    moved = tmp_path / "elsewhere"  # as another process would find it: copied, not written here
    moved.mkdir()
    shutil.copy(cell.sidecar, moved / cell.sidecar.name)
    with pytest.raises(UntrustedPickle, match="set trust=True in this cell"):
        run(cell.source, moved, monkeypatch)
    assert run(cell.source.replace("trust=False", "trust=True"), moved, monkeypatch) == value


def test_the_export_room_loads_nothing_from_the_kernel_or_widget_rooms():
    code = ("import sys, rlm_kernel.export.notebook, rlm_kernel.export.replay\n"
            "print([m for m in sys.modules if m.startswith(('rlm_kernel.kernel', 'rlm_kernel.widget', "
            "'ipykernel', 'ipywidgets', 'IPython'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
