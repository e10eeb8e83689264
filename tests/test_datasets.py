"""Contexts on disk: tables through DuckDB and lazy text corpora, opened without reading the data."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest

from rlm_kernel import rlm
from rlm_kernel.engine.context import check_context, context_summary, describe_context
from rlm_kernel.engine.datasets import (
    Corpus,
    DataChangedWarning,
    DataError,
    Table,
    looks_like_path,
    open_dataset,
    open_reference,
    resolve_context,
)
from rlm_kernel.engine.record import RunLog
from rlm_kernel.engine.snapshot import context_snapshot_path, load_context
from rlm_kernel.testing.fake_anthropic import FakeAnthropic

duckdb = pytest.importorskip("duckdb")
pd = pytest.importorskip("pandas")

ROOT = "claude-sonnet-5-5"


@pytest.fixture
def parquet_dir(tmp_path: Path) -> Path:
    d = tmp_path / "sales"
    d.mkdir()
    con = duckdb.connect()
    for part in range(3):
        con.execute(f"""COPY (SELECT i AS id, CASE WHEN i % 7 = 0 THEN 'refund' ELSE 'sale' END AS kind,
                        (i * 13) % 1000 AS amount FROM range({part * 1000}, {(part + 1) * 1000}) t(i))
                        TO '{d}/part-{part}.parquet' (FORMAT parquet)""")
    return d


@pytest.fixture
def text_dir(tmp_path: Path) -> Path:
    d = tmp_path / "logs"
    (d / "sub").mkdir(parents=True)
    for i in range(5):
        lines = [f"day {i} line {n}: {'ERROR disk full' if n % 10 == 3 else 'ok'}" for n in range(100)]
        (d / ("sub" if i > 2 else ".") / f"log{i}.txt").write_text("\n".join(lines) + "\n")
    return d


def test_a_directory_of_parquet_is_a_table_and_nothing_is_read_until_asked(parquet_dir: Path) -> None:
    table = open_dataset(parquet_dir)
    assert isinstance(table, Table) and table.format == "parquet" and len(table.paths) == 3
    assert table._con is None  # opening lists files; DuckDB starts at the first question
    assert table.count() == 3000
    refunds = table.sql("SELECT count(*) AS n FROM context WHERE kind = 'refund'")
    assert int(refunds["n"][0]) == sum(1 for i in range(3000) if i % 7 == 0)
    assert table.columns == ["id", "kind", "amount"]
    chunks = list(table.batches(1000, "SELECT id FROM context ORDER BY id"))
    assert sum(len(c) for c in chunks) == 3000 and len(chunks) > 1


def test_csv_and_jsonl_globs_are_tables(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("name,n\nx,1\ny,2\n")
    (tmp_path / "b.csv").write_text("name,n\nz,3\n")
    (tmp_path / "r.jsonl").write_text("".join(json.dumps({"k": i}) + "\n" for i in range(10)))
    csv = open_dataset(str(tmp_path / "*.csv"))
    assert isinstance(csv, Table) and csv.count() == 3
    assert int(csv.sql("SELECT sum(n) AS s FROM context")["s"][0]) == 6
    meta = describe_context(csv)
    assert meta["rows_estimated"] is True  # a CSV is not scanned to describe it
    jl = open_dataset(tmp_path / "r.jsonl")
    assert isinstance(jl, Table) and jl.format == "json" and jl.count() == 10


def test_text_files_are_a_lazy_corpus_with_streaming_search(text_dir: Path) -> None:
    corpus = open_dataset(text_dir)
    assert isinstance(corpus, Corpus) and len(corpus) == 5
    assert corpus.names()[0] == "log0.txt" and corpus.names()[-1] == os.path.join("sub", "log4.txt")
    assert corpus[1].startswith("day 1 line 0")
    assert isinstance(corpus[1:3], Corpus) and len(corpus[1:3]) == 2
    hits = corpus.search(r"ERROR", max_hits=7)
    assert len(hits) == 7 and hits[0].line_no == 4 and "disk full" in str(hits[0])
    assert corpus.count("error disk", ignore_case=True) == 50 and corpus.count("error disk") == 0
    assert corpus.read(0, 0, 12) == "day 0 line 0"
    pieces = list(corpus.chunks(1000))
    assert all(len(p) <= 1100 for p in pieces)
    joined = "".join(pieces)
    assert joined.count("ERROR disk full") == 50  # every line arrives, once


def test_the_root_model_sees_metadata_and_how_to_query(parquet_dir: Path, text_dir: Path) -> None:
    summary = context_summary(describe_context(open_dataset(parquet_dir), preview_chars=500))
    assert "3,000 rows" in summary and "3 parquet file(s)" in summary
    assert "amount (BIGINT)" in summary and "context.sql(" in summary
    summary = context_summary(describe_context(open_dataset(text_dir), preview_chars=100))
    assert "5 text file(s)" in summary and "context.search(" in summary
    assert "day 0 line 0" in summary  # a small sample of the first file


def test_paths_are_recognised_and_text_is_not(text_dir: Path) -> None:
    assert looks_like_path(text_dir) and looks_like_path(str(text_dir))
    assert looks_like_path(str(text_dir / "*.txt"))
    assert not looks_like_path("What is the capital of France?")
    assert not looks_like_path(str(text_dir / "*.nothing"))
    assert resolve_context("plain text") == "plain text"
    with pytest.raises(DataError, match="matches no files"):
        open_dataset(text_dir / "missing")
    with pytest.raises(DataError, match="one format"):
        open_dataset(text_dir, kind="table")
    check_context(open_dataset(text_dir))


def test_reference_says_when_data_changed_or_moved(text_dir: Path, tmp_path: Path) -> None:
    ref = open_dataset(text_dir).reference()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        open_reference(ref)  # unchanged: no warning
    (text_dir / "log0.txt").write_text("changed\n")
    with pytest.warns(DataChangedWarning, match="changed since the run"):
        open_reference(ref)
    text_dir.rename(tmp_path / "elsewhere")
    with pytest.raises(DataError, match="is gone"):
        open_reference(ref)


TABLE_POLICY = [
    "```repl\nprint(context.count())\nprint(context.schema)\n```",
    "```repl\nn = int(context.sql(\"SELECT count(*) AS n FROM context WHERE kind = 'refund'\")['n'][0])\n"
    "print(n)\n```",
    "FINAL_VAR(n)",
]


def test_a_run_on_a_parquet_path_answers_an_exact_count_and_stores_a_reference(parquet_dir: Path,
                                                                                tmp_path: Path) -> None:
    with FakeAnthropic(root_model=ROOT) as srv:
        srv.route(root=TABLE_POLICY, sub="unused")
        result = rlm("How many refunds?", context=str(parquet_dir), provider="anthropic",
                     base_url=srv.base_url, api_key="k", runs_dir=str(tmp_path / "runs"))
        first = srv.requests[0]
    assert result.status == "done" and result.answer == str(sum(1 for i in range(3000) if i % 7 == 0))
    sent = json.dumps(first)
    assert "3,000 rows" in sent and "refund" in sent  # the sample rows, not the data
    snap = context_snapshot_path(result.log_path)
    assert snap is not None and snap.suffix == ".ref"
    assert snap.stat().st_size < 2000  # a reference, not a copy
    again = load_context(result.log_path)
    assert isinstance(again, Table) and again.count() == 3000
    assert RunLog.read(result.log_path).started()["context"]["kind"] == "table"


def test_demo_model_handles_a_corpus_on_disk(text_dir: Path, tmp_path: Path) -> None:
    result = rlm("Which days had a disk full error?", context=text_dir, model="demo",
                 runs_dir=str(tmp_path / "runs"))
    assert result.status == "done"
    assert "disk full" in result.answer.lower()


def test_export_refers_to_the_data_instead_of_copying_it(text_dir: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat

    result = rlm("Which days had a disk full error?", context=text_dir, model="demo", runs_dir=str(tmp_path / "r"))
    out = result.export(tmp_path / "nb" / "run.ipynb")
    nb = nbformat.read(out, as_version=4)
    load = next(c for c in nb.cells if c.cell_type == "code" and "run.context.ref" in c.source)
    sidecars = sorted(p.name for p in out.parent.iterdir() if p.name != "run.ipynb")
    assert sidecars == ["run.context.ref", "run.rlm.jsonl"]  # the reference and the recording, no data
    ns: dict = {}
    monkeypatch.chdir(out.parent)
    exec(load.source, ns)
    assert isinstance(ns["context"], Corpus) and len(ns["context"]) == 5
    assert any("data on disk" in c.source for c in nb.cells if c.cell_type == "markdown")
