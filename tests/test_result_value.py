"""`result.value` is the object the answer was read from, so the next cell can use it."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlm_kernel import rlm
from rlm_kernel.kernel.testing import KernelSession, jupyter_sandbox
from rlm_kernel.testing.fake_anthropic import FakeAnthropic

ROOT = "claude-sonnet-5-5"


def ask(srv: FakeAnthropic, tmp_path: Path, root: list[str], **kw):
    srv.route(root=root, sub="sub")
    return rlm("Count them", context="a b a c a", provider="anthropic", base_url=srv.base_url, api_key="k",
               runs_dir=str(tmp_path / "runs"), protocol="fences", **kw)


@pytest.fixture
def srv():
    with FakeAnthropic(root_model=ROOT) as s:
        yield s


@pytest.mark.parametrize("steps", [
    ["```repl\ncounts = {w: context.split().count(w) for w in set(context.split())}\n```", "FINAL_VAR(counts)"],
    ["```repl\ncounts = {w: context.split().count(w) for w in set(context.split())}\nFINAL_VAR('counts')\n```"],
    ["```repl\ncounts = {w: context.split().count(w) for w in set(context.split())}\n```", "FINAL(counts)"],
    ["```repl\nanswer['content'] = {w: context.split().count(w) for w in set(context.split())}\n"
     "answer['ready'] = True\n```"],
])
def test_final_var_gives_the_object(srv, tmp_path, steps):
    result = ask(srv, tmp_path, steps)
    assert result.status == "done"
    assert result.value == {"a": 3, "b": 1, "c": 1}
    assert isinstance(result.value, dict) and result.answer == str(result.value)


def test_text_answers_are_their_own_value(srv, tmp_path):
    result = ask(srv, tmp_path, ["FINAL(three a's)"])
    assert result.value == result.answer == "three a's"


def test_a_dataframe_reaches_the_next_cell_and_shows_its_rich_repr(tmp_path):
    pytest.importorskip("pandas")
    steps = ["```repl\nimport pandas as pd\ndf = pd.DataFrame({'word': ['a', 'b'], 'n': [3, 1]})\n```",
             "FINAL_VAR(df)"]
    with FakeAnthropic(root_model=ROOT) as srv, jupyter_sandbox(tmp_path / "j") as work:
        srv.route(root=steps, sub="sub")
        with KernelSession(work, env={"ANTHROPIC_API_KEY": "k"}) as k:
            k.run(f"%rlm config base_url={srv.base_url} provider=anthropic protocol=fences")
            k.run("context = 'a b a c a'")
            cell = k.run("%%rlm\nCount the words", timeout=120)
            after = k.run("r = _\nprint(type(r.value).__name__, int(r.value['n'].sum()))")
    assert cell.status == "ok", cell.text
    html = [o["data"]["text/html"] for o in cell.of_type("display_data") if "text/html" in o["data"]
            and "<table" in o["data"]["text/html"]]
    assert html and "word" in html[-1]  # the DataFrame's own table, not only its text
    assert "DataFrame 4" in after.text
