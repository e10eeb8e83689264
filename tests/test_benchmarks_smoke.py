"""Smoke tests for benchmarks/: the benchmark command and the real-model evaluation both run end to
end against the loopback fake server (never the real API), and their numbers are computed from
what actually came back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # benchmarks/ is a top-level folder, not part of the installed package

from benchmarks import scenarios, tasks  # noqa: E402
from benchmarks.fake_model import FakeModel, count_categories  # noqa: E402
from rlm_kernel.engine.parser import extract_code_blocks, find_final  # noqa: E402
from rlm_kernel.testing.fake_anthropic import Request  # noqa: E402


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_", "RLM_"))}


def _run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=timeout)


def test_quick_benchmark_writes_results_for_our_engine(tmp_path: Path) -> None:
    proc = _run("benchmarks.run", "--quick", "--systems", "ours", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    trials = results["trials"]
    assert {t["section"] for t in trials} == {"overhead", "fanout", "tokens", "scale"}
    assert all(t["correct"] for t in trials), [t for t in trials if not t["correct"]]
    # Every scripted sub-call really reached the server and was answered.
    fan = [t for t in trials if t["section"] == "fanout"]
    assert all(t["sub_requests"] == results["settings"]["fanout"] for t in fan)
    assert all(t["fanout_in_repl_s"] >= results["settings"]["sub_latency"] for t in fan)
    # Wall time can never beat the simulated model latency.
    assert all(t["wall"] >= t["critical_path"] for t in trials)
    tokens = next(t for t in trials if t["section"] == "tokens")["tokens"]
    assert tokens["cache_read"] > 0, "the engine marks cache breakpoints, so later turns read the cache"
    assert tokens["billed_equivalent_input"] < tokens["input_uncached_equivalent"]
    io = results["iopub"]
    assert io["root_requests"] == io["steps"] == 8, io.get("note")
    assert io["total_bytes"] > 0 and len(io["bytes_per_step"]) == 8
    md = (tmp_path / "results.md").read_text()
    for heading in ("## 1. Orchestration overhead", "## 2. Fan-out", "## 3. Input tokens", "## 4. Context scale",
                    "## 5. Kernel IOPub bytes per step", "## Targets"):
        assert heading in md


def test_eval_real_against_fake_model_computes_accuracy(tmp_path: Path) -> None:
    proc = _run("benchmarks.eval_real", "--fake", "--niah-sizes", "30000,250000", "--oolong-records", "600",
                "--seeds", "1", "--direct-max-chars", "100000", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((tmp_path / "eval_real.json").read_text())
    rows = data["rows"]
    methods = {(r["kind"], r["size"], r["method"]) for r in rows}
    assert methods == {("niah", 30000, "rlm"), ("niah", 30000, "direct"), ("niah", 250000, "rlm"),
                       ("oolong", 600, "rlm"), ("oolong", 600, "direct")}, "no direct answer above the size limit"
    for r in rows:
        assert r["error"] is None, r
        assert r["score"] == 1.0, r
        assert r["answer"].strip() == r["gold"]
        assert r["input_tokens"] > 0
    rlm_rows = [r for r in rows if r["method"] == "rlm"]
    assert all(r["subcalls"] >= 1 and r["steps"] == 2 for r in rlm_rows)
    assert "| niah | 250,000 chars | rlm |" in (tmp_path / "eval_real.md").read_text()


def test_scoring_rewards_only_correct_answers() -> None:
    t = tasks.niah(5_000, seed=3)
    assert t.score(f"The number is {t.gold}.") == 1.0
    assert t.score(str(int(t.gold) + 1)) == 0.0
    assert tasks.score("oolong", "12", "12") == 1.0
    assert tasks.score("oolong", "about 14", "12") == pytest.approx(0.75**2)
    assert tasks.score("oolong", "I do not know", "12") == 0.0


def test_generated_tasks_have_the_answers_they_claim() -> None:
    t = tasks.niah(20_000, seed=1)
    assert t.context.count("special magic number") == 1 and t.gold in t.context
    o = tasks.oolong(500, seed=2)
    target = tasks.OOLONG_QUESTION_RE.search(o.question).group(1)
    assert count_categories(o.context)[target] == int(o.gold)
    # Each template is recognised as its own category and no other.
    for cat, templates in tasks.CATEGORIES.items():
        for template in templates:
            text = template.format(item="kettle", num=7).lower()
            assert [c for c, cues in tasks.CATEGORY_CUES.items() if any(x in text for x in cues)] == [cat]


def _request(body: dict) -> Request:
    return Request(body, path="/v1/messages", headers={}, size=0, index=0)


def test_fake_model_root_code_runs_in_our_parser() -> None:
    fm = FakeModel("root")
    question = tasks.oolong(50).question
    messages = [{"role": "user", "content": f"Question: {question}"}]
    reply = fm(_request({"model": "root", "system": "engine prompt", "messages": messages}))
    assert len(extract_code_blocks(reply)) == 1 and "llm_query_batched" in reply
    messages += [{"role": "assistant", "content": reply}, {"role": "user", "content": "output"}]
    final = find_final(fm(_request({"model": "root", "system": "engine prompt", "messages": messages})))
    assert final is not None and final.kind == "var" and final.value == "result"


@pytest.mark.parametrize("system", scenarios.SYSTEMS)
def test_scripted_turns_carry_step_markers(system: str) -> None:
    sc = scenarios.overhead()
    rendered = [sc.render(system, i) for i in range(sc.root_turns())]
    history = ""
    for i, text in enumerate(rendered):
        assert scenarios.next_step_index(history) == i
        history += text
    if system == "ours":
        assert find_final(rendered[-1]).value == "total"
        assert extract_code_blocks(rendered[1])


def test_sub_model_counts_what_it_is_given() -> None:
    text = scenarios.records(300)
    assert scenarios.solve_subcall("COUNT RED\n" + text) == str(scenarios.count_red(text))
    assert scenarios.solve_subcall("SUM\n3\n4\n5") == "12"
    assert scenarios.context_chars_in("prompt zqabc zqdef end") == len("zqabc zqdef ")
    assert len(scenarios.words(1_234_567)) == 1_234_567


def test_eval_real_runs_against_an_openai_compatible_server(tmp_path: Path) -> None:
    from benchmarks import eval_real
    from rlm_kernel.testing.fake_openai import FakeOpenAI

    with FakeOpenAI() as srv:
        srv.like("vllm").context_window = 16_384
        srv.models = {"local"}
        srv.responder = FakeModel("local")
        status = eval_real.main([
            "--provider", "openai", "--base-url", srv.base_url, "--model", "local", "--niah-sizes", "12000",
            "--oolong-records", "60", "--record-counts", "0", "--lookup-keys", "0", "--seeds", "2",
            "--systems", "ours,direct,rlms", "--peers-python", str(tmp_path / "no-such-python"),
            "--option", "max_depth=1", "--out", str(tmp_path)])
    data = json.loads((tmp_path / "eval_real.json").read_text())
    assert status == 1, "the missing peer is an error row, not a crash"
    assert data["meta"]["window"] == 16_384 and data["meta"]["rlm_options"]["max_depth"] == 1
    assert "protocol" not in data["meta"]["rlm_options"], "passthrough options only when given"
    rows = data["rows"]
    assert {(r["kind"], r["method"]) for r in rows} == {(k, m) for k in ("niah", "oolong")
                                                         for m in ("rlm", "direct", "rlms")}
    for r in rows:
        if r["method"] == "rlms":
            assert "cannot start" in r["error"] and r["score"] == 0
            continue
        assert r["error"] is None and r["score"] == 1.0, r
        assert (tmp_path / r["transcript"]).exists()
    ours = [r for r in rows if r["method"] == "rlm"]
    assert len(ours) == 4 and all(r["steps"] == 2 and r["subcalls"] >= 1 for r in ours)
    log = (tmp_path / ours[0]["transcript"]).read_text().splitlines()
    assert json.loads(log[0])["type"] == "run_started"
    assert "| niah | 12,000 chars | rlm | 2 | 1.00 | 2/2 | 2.0 |" in (tmp_path / "eval_real.md").read_text()


def test_eval_real_runs_seeds_in_parts_and_combines_their_tables(tmp_path: Path) -> None:
    """A long eval can run seed by seed (the machine is needed between parts) and still give one table
    whose transcript links work from its own folder."""
    from benchmarks import eval_real
    from rlm_kernel.testing.fake_openai import FakeOpenAI

    with FakeOpenAI() as srv:
        srv.like("vllm").context_window = 16_384
        srv.models = {"local"}
        srv.responder = FakeModel("local")
        for seed in (0, 1):
            assert eval_real.main([
                "--provider", "openai", "--base-url", srv.base_url, "--model", "local", "--niah-sizes", "12000",
                "--oolong-records", "0", "--record-counts", "0", "--lookup-keys", "0", "--seeds", "1",
                "--first-seed", str(seed), "--systems", "ours", "--out", str(tmp_path / f"s{seed}")]) == 0
    parts = [json.loads((tmp_path / f"s{seed}" / "eval_real.json").read_text()) for seed in (0, 1)]
    assert [[r["seed"] for r in part["rows"]] for part in parts] == [[0], [1]]
    assert parts[0]["rows"][0]["gold"] != parts[1]["rows"][0]["gold"], "seed 1 is another task"
    out = tmp_path / "both"
    assert eval_real.main(["--combine", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(out)]) == 0
    data = json.loads((out / "eval_real.json").read_text())
    assert sorted(r["seed"] for r in data["rows"]) == [0, 1] and data["meta"]["seeds"] == 2
    assert all((out / r["transcript"]).exists() for r in data["rows"])
    assert "| niah | 12,000 chars | rlm | 2 | 1.00 | 2/2 |" in (out / "eval_real.md").read_text()


def test_record_and_lookup_tasks_have_the_answers_they_claim() -> None:
    r = tasks.records(300, seed=1)
    region = r.question.split("region '")[1].split("'")[0]
    total = sum(int(line.rsplit("amount: ", 1)[1]) for line in r.context.splitlines() if f"region: {region} " in line)
    assert str(total) == r.gold and r.score(f"{total}") == 1.0 and r.score(f"{total + 1}") == 0.0
    lk = tasks.lookup(500, seed=2)
    key = lk.question.split("key '")[1].split("'")[0]
    assert isinstance(lk.context, dict) and len(lk.context) == 500 and lk.context[key] == lk.gold
    assert lk.score(f"The code is {lk.gold.lower()}.") == 1.0 and lk.score("Q123-4567") == 0.0
    assert lk.text.startswith("{") and tasks.make("lookup", 500, 2).gold == lk.gold
