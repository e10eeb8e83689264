"""`%%rlm` cells and `%rlm resume` lines become coroutine cells (top-level await), so ipykernel
runs them on its event loop; everything else is left to IPython."""

from __future__ import annotations

import ast
from types import SimpleNamespace

import pytest
from IPython.core.inputtransformer2 import TransformerManager

from rlm_kernel.kernel import transform


@pytest.fixture
def manager() -> TransformerManager:
    tm = TransformerManager()
    shell = SimpleNamespace(autoawait=True, input_transformer_manager=tm)
    transform.install(shell)
    transform.install(shell)  # idempotent
    assert sum(getattr(t, "rlm_transform", False) for t in tm.line_transforms) == 1
    return tm


def is_coroutine_cell(code: str) -> bool:
    """Compiles only as top-level-await code, the test ipykernel applies to pick the async path."""
    try:
        compile(code, "<cell>", "exec")
    except SyntaxError:
        compile(code, "<cell>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        return True
    return False


def test_cell_magic_becomes_an_awaited_magic(manager: TransformerManager) -> None:
    out = manager.transform_cell("%%rlm --model demo --max-iterations 3\nHow many words?\nBe brief.\n")
    assert out == ("await get_ipython().run_cell_magic('rlm', '--model demo --max-iterations 3', "
                   "'How many words?\\nBe brief.\\n')\n")
    assert is_coroutine_cell(out)


def test_resume_lines_are_awaited_anywhere(manager: TransformerManager) -> None:
    out = manager.transform_cell("x = 1\nres = %rlm resume abc --max-iterations 5\nres.answer\n")
    assert "res = await get_ipython().run_line_magic('rlm', 'resume abc --max-iterations 5')" in out
    assert is_coroutine_cell(out)


@pytest.mark.parametrize("code", ["%%rlm?\n", "%%rlmx\nq\n", "%rlm runs\n", "%%time\nx = 1\n", "rlm = 3\n"])
def test_other_cells_are_left_alone(manager: TransformerManager, code: str) -> None:
    assert "await" not in manager.transform_cell(code)
    assert not transform.is_rlm_cell(code)


def test_without_autoawait_nothing_is_rewritten() -> None:
    tm = TransformerManager()
    transform.install(SimpleNamespace(autoawait=False, input_transformer_manager=tm))
    assert tm.transform_cell("%%rlm\nq\n").startswith("get_ipython().run_cell_magic('rlm'")


def test_is_rlm_cell() -> None:
    assert transform.is_rlm_cell("\n%%rlm\nquestion")
    assert transform.is_rlm_cell("%rlm resume")
    assert not transform.is_rlm_cell("print('%%rlm')")
