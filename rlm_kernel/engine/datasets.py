"""Contexts that stay on disk: a table of Parquet / CSV / JSON-lines files queried through DuckDB, or a
lazy collection of text files.

Inputs bigger than memory cannot be a Python string. Here `context` is a handle: nothing is read until the
model's code asks, so describing a 5 GB dataset to the root model costs a directory listing and (for
tables) DuckDB's schema and Parquet footer reads. DuckDB is made for out-of-core relational work (it
streams and spills), so tables go through it instead of through pandas; it is an optional extra
(`pip install "rlm-kernel[data]"`), imported only when a table is opened.

A run's snapshot of such a context is a *reference* (where the files were, their sizes, modification
times and a checksum of the listing), never a copy; reading it back says clearly when the data moved
or changed."""

from __future__ import annotations

import glob as globlib
import hashlib
import json
import os
import re
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: File endings read as tables (through DuckDB) rather than as text.
TABLE_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "csv",
                 ".jsonl": "json", ".ndjson": "json"}
_GLOB_CHARS = re.compile(r"[*?\[]")
#: A str context longer than this, or with a newline, is text, never a path.
_MAX_PATH_CHARS = 4096
_READ_BLOCK = 1 << 20
_SCAN_BLOCK = 8 << 20


class DataChangedWarning(UserWarning):
    """The files a recorded run used are not the ones on disk now."""


class DataError(ValueError):
    """A path context that cannot be opened; the message says what to do."""


# ---------------------------------------------------------------------------------------------
# Recognising a path context


def looks_like_path(obj: Any) -> bool:
    """A `Path`, or a short one-line str naming an existing file or directory or a glob with matches."""
    if isinstance(obj, os.PathLike):
        return True
    if not isinstance(obj, str) or not obj or len(obj) > _MAX_PATH_CHARS or "\n" in obj:
        return False
    expanded = os.path.expanduser(obj)
    if _GLOB_CHARS.search(expanded):
        return next(iter(globlib.iglob(expanded, recursive=True)), None) is not None
    return os.path.exists(expanded)


def open_dataset(source: str | os.PathLike[str], *, kind: str | None = None) -> Table | Corpus:
    """Open `source` (a file, a directory, or a glob) lazily: a `Table` when every file is Parquet, CSV or
    JSON lines, else a `Corpus` of text files. `kind` ("table" or "files") forces one."""
    spec = os.path.abspath(os.path.expanduser(os.fspath(source)))
    files = _listing(spec)
    if not files:
        raise DataError(f"{source} matches no files: check the path (a directory, a file or a glob like "
                        f"data/*.parquet)")
    formats = {TABLE_FORMATS.get(_suffix(p)) for p in files}
    if kind is None:
        kind = "table" if len(formats) == 1 and None not in formats else "files"
    if kind == "table":
        if len(formats) != 1 or None in formats:
            found = ", ".join(sorted({_suffix(p) or "(none)" for p in files}))
            raise DataError(f"{source}: a table needs files of one format (.parquet, .csv, .jsonl); found {found}")
        return Table(spec, files, formats.pop())  # type: ignore[arg-type]
    if kind == "files":
        return Corpus(spec, files)
    raise DataError(f"kind must be 'table' or 'files', not {kind!r}")


def resolve_context(obj: Any) -> Any:
    """The context a run uses: a path-like `obj` opened lazily, anything else as it is."""
    if isinstance(obj, Table | Corpus):
        return obj
    return open_dataset(obj) if looks_like_path(obj) else obj


def _suffix(p: Path) -> str:
    return p.suffix.lower()


def _listing(spec: str) -> list[Path]:
    """Files under `spec`, sorted: the file itself, every file below a directory, or a glob's matches."""
    if _GLOB_CHARS.search(spec):
        found = (Path(p) for p in globlib.iglob(spec, recursive=True))
    elif os.path.isdir(spec):
        found = (Path(root) / name for root, _, names in os.walk(spec) for name in names)
    elif os.path.exists(spec):
        found = iter([Path(spec)])
    else:
        return []
    return sorted(p for p in found if p.is_file() and not p.name.startswith("."))


# ---------------------------------------------------------------------------------------------
# The common part: a listing with sizes, and the reference a snapshot stores


class _OnDisk:
    kind = ""

    def __init__(self, spec: str, files: list[Path]) -> None:
        self.source = spec
        self.paths = files
        stats = [p.stat() for p in files]
        self.sizes = [s.st_size for s in stats]
        self._mtimes = [s.st_mtime_ns for s in stats]

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes)

    def listing_checksum(self) -> str:
        h = hashlib.sha256()
        for p, size, mtime in zip(self.paths, self.sizes, self._mtimes, strict=True):
            h.update(f"{p}\t{size}\t{mtime}\n".encode("utf-8", "surrogateescape"))
        return h.hexdigest()

    def reference(self) -> dict[str, Any]:
        """What a run's snapshot stores instead of the data."""
        return {"rlm_dataset": 1, "kind": self.kind, "source": self.source, "files": len(self.paths),
                "bytes": self.total_bytes, "latest_mtime_ns": max(self._mtimes, default=0),
                "listing_sha256": self.listing_checksum(), **self._reference_extra()}

    def _reference_extra(self) -> dict[str, Any]:
        return {}

    def _files_text(self) -> str:
        return f"{len(self.paths):,} file{'s' if len(self.paths) != 1 else ''}, {human_bytes(self.total_bytes)}"


def open_reference(ref: dict[str, Any] | str | os.PathLike[str]) -> Table | Corpus:
    """Open the data a snapshot refers to, warning (DataChangedWarning) when it is not what the run saw."""
    if not isinstance(ref, dict):
        ref = json.loads(Path(ref).read_text(encoding="utf-8"))
    source = ref["source"]
    what = f"{ref['files']:,} files, {human_bytes(ref['bytes'])}"
    try:
        data = open_dataset(source, kind=ref["kind"])
    except DataError:
        raise DataError(f"the data this run used is gone: {source} ({what}) matches nothing now. Put it back "
                        f"there, or pass the context yourself (context=... / %rlm resume --context NAME)") from None
    if data.listing_checksum() != ref["listing_sha256"]:
        now = f"{len(data.paths):,} files, {human_bytes(data.total_bytes)}"
        warnings.warn(f"the data at {source} changed since the run (then {what}; now {now}): answers and "
                      f"replayed cells may differ", DataChangedWarning, stacklevel=2)
    return data


def human_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------
# Text files


@dataclass(frozen=True)
class Hit:
    """One line found by Corpus.search."""
    file: int
    path: str
    line_no: int
    line: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line_no}: {self.line}"


class Corpus(_OnDisk, Sequence[str]):
    """A lazy collection of text files: `len()` files, `context[i]` reads file i, slices are Corpora.

    For files too big to read whole, `read(i, start, size)` reads a byte range, `chunks(size)` streams
    pieces for sub-calls, and `search(pattern)` streams a regex over every line of every file."""

    kind = "files"

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            sub = Corpus.__new__(Corpus)
            sub.source, sub.paths = self.source, self.paths[index]
            sub.sizes, sub._mtimes = self.sizes[index], self._mtimes[index]
            return sub
        return self.paths[index].read_text(encoding="utf-8", errors="replace")

    def __repr__(self) -> str:
        return f"<Corpus {self.source}: {self._files_text()}>"

    def names(self) -> list[str]:
        """Paths relative to the common folder, in order."""
        root = os.path.commonpath([str(p.parent) for p in self.paths]) if self.paths else ""
        return [os.path.relpath(p, root) for p in self.paths]

    def read(self, i: int, start: int = 0, size: int = 100_000) -> str:
        """`size` bytes of file i from byte `start`, decoded (a split character becomes U+FFFD)."""
        with open(self.paths[i], "rb") as fh:
            fh.seek(start)
            return fh.read(size).decode("utf-8", "replace")

    def lines(self, i: int) -> Iterator[str]:
        """The lines of file i, streamed, without their newlines."""
        with open(self.paths[i], encoding="utf-8", errors="replace", newline="") as fh:
            for line in fh:
                yield line.rstrip("\r\n")

    def chunks(self, size: int = 50_000) -> Iterator[str]:
        """The corpus as consecutive pieces of about `size` characters, cut at line ends where a line
        allows; small files are packed together, each piece starting with its file's name."""
        names = self.names()
        buf: list[str] = []
        room = size
        for i, name in enumerate(names):
            header = f"## {name}\n"
            buf.append(header)
            room -= len(header)
            with open(self.paths[i], encoding="utf-8", errors="replace", newline="") as fh:
                for line in fh:
                    while len(line) > size:  # one enormous line: cut it
                        yield "".join(buf) + line[:room]
                        line, buf, room = line[room:], [], size
                    if len(line) > room:
                        yield "".join(buf)
                        buf, room = [f"## {name} (continued)\n"], size
                    buf.append(line)
                    room -= len(line)
        if "".join(buf).strip():
            yield "".join(buf)

    def search(self, pattern: str, *, max_hits: int = 100, ignore_case: bool = False) -> list[Hit]:
        """Lines matching the regular expression `pattern`, streamed file by file; stops at `max_hits`."""
        hits: list[Hit] = []
        names = self.names()
        for i, line_no, line in self._matching_lines(pattern, ignore_case):
            hits.append(Hit(i, names[i], line_no, line[:2000]))
            if len(hits) >= max_hits:
                break
        return hits

    def count(self, pattern: str, *, ignore_case: bool = False) -> int:
        """How many lines in the whole corpus match `pattern` (streamed; no limit)."""
        return sum(1 for _ in self._matching_lines(pattern, ignore_case, want_text=False))

    def _matching_lines(self, pattern: str, ignore_case: bool,
                        want_text: bool = True) -> Iterator[tuple[int, int, str]]:
        """(file, line number, line) of each line with a match. The regex searches blocks of whole lines and
        jumps to the next line after a hit: Python code runs per matching line, not per line."""
        rx = re.compile(pattern, re.MULTILINE | (re.IGNORECASE if ignore_case else 0))
        for i, path in enumerate(self.paths):
            line_base, carry = 1, ""
            with open(path, encoding="utf-8", errors="replace", newline="") as fh:
                while True:
                    block = fh.read(_SCAN_BLOCK)
                    text = carry + block
                    if not text:
                        break
                    cut = len(text) if not block else text.rfind("\n") + 1
                    if cut == 0:  # one line longer than a block: read on
                        carry = text
                        continue
                    body, carry = text[:cut], text[cut:]
                    line_no, counted_to, m = line_base, 0, rx.search(body)
                    while m is not None:
                        start = body.rfind("\n", 0, m.start()) + 1
                        end = body.find("\n", m.start())
                        end = len(body) if end < 0 else end
                        line_no += body.count("\n", counted_to, start)
                        counted_to = start
                        yield i, line_no, body[start:end].rstrip("\r") if want_text else ""
                        m = rx.search(body, end + 1) if end < len(body) else None
                    line_base += body.count("\n")
                    if not block:
                        break

    def describe(self, preview_chars: int) -> dict[str, Any]:
        names = self.names()
        head = ""
        if preview_chars and self.paths:
            head = self.read(0, 0, preview_chars)
            head = head[:preview_chars]
        return {"size": self.total_bytes, "size_unit": "bytes", "size_estimated": False,
                "files": len(self.paths), "source": self.source, "first_files": names[:10],
                "file_sizes": {"min": min(self.sizes), "max": max(self.sizes),
                               "mean": round(self.total_bytes / len(self.sizes))},
                "preview_head": head, "preview_tail": "",
                "preview_omitted": max(0, self.total_bytes - len(head.encode())), "preview_unit": "bytes"}


# ---------------------------------------------------------------------------------------------
# Tables


class Table(_OnDisk):
    """Parquet, CSV or JSON-lines files as one SQL table named `context`, queried through DuckDB.

    `sql("SELECT ... FROM context")` returns a pandas DataFrame (or a list of rows without pandas);
    `relation` is the DuckDB relation for relational methods; `columns`, `schema`, `count()` and
    `head(n)` describe it. Queries stream over the files and spill to disk, so they work on data far
    larger than memory."""

    kind = "table"

    def __init__(self, spec: str, files: list[Path], fmt: str, *, memory_limit: str | None = None) -> None:
        super().__init__(spec, files)
        self.format = fmt
        self.memory_limit = memory_limit or os.environ.get("RLM_DUCKDB_MEMORY_LIMIT")
        self._con: Any = None
        self._lock = threading.RLock()
        self._rows: int | None = None

    def __repr__(self) -> str:
        return f"<Table {self.source}: {self.format}, {self._files_text()}>"

    def __len__(self) -> int:
        return self.count()

    def _reference_extra(self) -> dict[str, Any]:
        return {"format": self.format}

    # --- DuckDB ---------------------------------------------------------------------------------
    @property
    def connection(self) -> Any:
        """The DuckDB connection, with the files as the view `context`; opened on first use."""
        with self._lock:
            if self._con is None:
                try:
                    import duckdb
                except ImportError:
                    raise DataError('tables on disk need DuckDB: pip install "rlm-kernel[data]" '
                                    "(or pip install duckdb)") from None
                con = duckdb.connect(":memory:")
                if self.memory_limit:
                    con.execute(f"SET memory_limit = '{self.memory_limit}'")
                reader = {"parquet": "read_parquet", "csv": "read_csv_auto", "json": "read_json_auto"}[self.format]
                con.execute(f"CREATE VIEW context AS SELECT * FROM {reader}({self._file_list()})")
                self._con = con
            return self._con

    def _cursor(self) -> Any:
        """A cursor of its own per query: DuckDB allows one unfinished result per connection."""
        return self.connection.cursor()

    def sql(self, query: str, *params: Any) -> Any:
        """Run SQL over the table `context`; a pandas DataFrame (rows as tuples if pandas is missing)."""
        cur = self._cursor()
        try:
            cur.execute(query, list(params))
            if cur.description is None:  # a statement with no result (SET, CREATE ...)
                return None
            try:
                return cur.df()
            except ImportError:
                return cur.fetchall()
        finally:
            cur.close()

    def _scalar(self, query: str) -> Any:
        cur = self._cursor()
        try:
            return cur.execute(query).fetchall()
        finally:
            cur.close()

    @property
    def relation(self) -> Any:
        """The DuckDB relation over all the files (filter, aggregate, project, ... lazily)."""
        return self.connection.table("context")

    @property
    def schema(self) -> list[tuple[str, str]]:
        return [(str(r[0]), str(r[1])) for r in self._scalar("DESCRIBE context")]

    @property
    def columns(self) -> list[str]:
        return [name for name, _ in self.schema]

    def count(self) -> int:
        """Exact number of rows (Parquet answers from its footers; CSV and JSON lines are scanned once)."""
        if self._rows is None:
            # Parquet: the footers' row counts, summed (a count(*) over the view also plans a scan: ~5x slower).
            query = (f"SELECT sum(num_rows) FROM parquet_file_metadata({self._file_list()})"
                     if self.format == "parquet" else "SELECT count(*) FROM context")
            self._rows = int(self._scalar(query)[0][0] or 0)
        return self._rows

    def _file_list(self) -> str:
        return "[" + ", ".join(_sql_str(str(p)) for p in self.paths) + "]"

    def head(self, n: int = 5) -> Any:
        return self.sql(f"SELECT * FROM context LIMIT {int(n)}")

    def batches(self, rows: int = 10_000, query: str = "SELECT * FROM context") -> Iterator[Any]:
        """The result of `query` as DataFrames of `rows` rows each, streamed."""
        cur = self._cursor()
        try:
            cur.execute(query)
            while True:
                part = cur.fetchmany(rows)
                if not part:
                    return
                yield _frame(part, [d[0] for d in cur.description])
        finally:
            cur.close()

    def describe(self, preview_chars: int) -> dict[str, Any]:
        schema = self.schema
        rows, estimated = self._row_count_for_description()
        sample = ""
        if preview_chars:  # plain rows, no pandas: describing must stay cheap (pandas alone imports for ~1 s)
            names = [n for n, _ in schema]
            first = _sql_str(str(self.paths[0]))  # a sample needs one file: the view would open them all
            rows_ = self._scalar(f"SELECT * FROM read_parquet({first}) LIMIT 5" if self.format == "parquet"
                                 else "SELECT * FROM context LIMIT 5")
            sample = "\n".join([" | ".join(names)] + [" | ".join(_cell(v) for v in r) for r in rows_])
            sample = sample[:preview_chars]
        return {"size": self.total_bytes, "size_unit": "bytes on disk", "size_estimated": False,
                "files": len(self.paths), "format": self.format, "source": self.source,
                "rows": rows, "rows_estimated": estimated,
                "columns": [n for n, _ in schema[:50]], "columns_omitted": max(0, len(schema) - 50),
                "dtypes": dict(schema[:50]),
                "preview_head": sample, "preview_tail": "", "preview_omitted": 0, "preview_unit": "rows"}

    def _row_count_for_description(self) -> tuple[int, bool]:
        """Parquet: exact, from the footers. Text formats: estimated from the first MB, never a full scan
        before the model asks (the model's `context.count()` is exact)."""
        if self.format == "parquet":
            return self.count(), False
        with open(self.paths[0], "rb") as fh:
            block = fh.read(_READ_BLOCK)
        lines = max(1, block.count(b"\n"))
        per_line = len(block) / lines
        header = 1 if self.format == "csv" else 0
        return max(0, int(self.total_bytes / per_line) - header * len(self.paths)), True


def _cell(v: Any) -> str:
    text = str(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _frame(rows: list[tuple[Any, ...]], names: list[str]) -> Any:
    try:
        import pandas as pd
    except ImportError:
        return rows
    return pd.DataFrame.from_records(rows, columns=names)


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"
