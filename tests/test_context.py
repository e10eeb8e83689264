"""What the root model is told about `context`, and the errors people get for unusable ones."""

from __future__ import annotations

import json
import math
import types

import pytest

from rlm_kernel.engine.context import ContextError, check_context, context_summary, describe_context


def preview_len(meta: dict) -> int:
    return len(meta["preview_head"]) + len(meta["preview_tail"])


# --- duck-typed pandas look-alikes (pandas is not a dependency) ----------------------------


class FakeFrame:
    """Just enough of a pandas DataFrame: shape, columns, dtypes (a Series-like with items()),
    head/tail returning frames that print like pandas."""

    def __init__(self, rows: list[dict], columns: list[str], start: int = 0):
        self.rows, self.columns, self.start = rows, columns, start
        self.dtypes = FakeDtypes({c: "int64" if c == "n" else "object" for c in columns})

    @property
    def shape(self):
        return (len(self.rows), len(self.columns))

    def head(self, n):
        return FakeFrame(self.rows[:n], self.columns, 0)

    def tail(self, n):
        return FakeFrame(self.rows[-n:], self.columns, len(self.rows) - n)

    def __str__(self):
        lines = ["    " + "  ".join(self.columns)]
        for i, row in enumerate(self.rows):
            lines.append(f"{self.start + i:<4}" + "  ".join(str(row[c]) for c in self.columns))
        return "\n".join(lines)


class FakeDtypes:
    def __init__(self, mapping):
        self._mapping = mapping

    def items(self):
        return iter(self._mapping.items())


class FakeSeries:
    def __init__(self, values, name="score"):
        self.values, self.name, self.dtype, self.index = values, name, "float64", range(len(values))

    @property
    def shape(self):
        return (len(self.values),)

    def head(self, n):
        return FakeSeries(self.values[:n], self.name)

    def tail(self, n):
        return FakeSeries(self.values[-n:], self.name)

    def __str__(self):
        return "\n".join(f"{i}    {v}" for i, v in enumerate(self.values)) + f"\nName: {self.name}"


# --- str and bytes -------------------------------------------------------------------------


def test_small_str_is_shown_whole():
    meta = describe_context("hello\nworld")
    assert meta["type"] == "str" and meta["kind"] == "text"
    assert meta["size"] == 11 and meta["size_unit"] == "characters" and meta["lines"] == 2
    assert meta["preview_head"] == "hello\nworld" and meta["preview_tail"] == ""
    assert meta["preview_omitted"] == 0 and meta["preview_note"] == ""
    json.dumps(meta)
    summary = context_summary(meta)
    assert summary.startswith("context: str of 11 characters, 2 lines")
    assert summary.endswith("preview:\nhello\nworld")


def test_long_str_gets_head_tail_and_an_omitted_note():
    text = "BEGIN " + "." * 10_000 + " END"
    meta = describe_context(text, preview_chars=100)
    assert meta["preview_head"] == text[:50] and meta["preview_tail"] == text[-50:]
    assert meta["preview_omitted"] == len(text) - 100
    assert meta["preview_note"] == f"[... {len(text) - 100:,} characters omitted ...]"
    summary = context_summary(meta)
    assert meta["preview_note"] in summary and summary.rstrip().endswith("END")


def test_bytes_are_measured_in_bytes_and_previewed_as_text():
    data = "naïve café\n".encode() + b"\x00\x01\xff" + b"z" * 5000
    meta = describe_context(data, preview_chars=40)
    assert meta["type"] == "bytes" and meta["size"] == len(data) and meta["size_unit"] == "bytes"
    assert meta["preview_head"].startswith("naïve café\n�")
    assert "\x00" not in meta["preview_head"]
    assert meta["preview_tail"] == "z" * 20
    assert meta["preview_note"] == f"[... {len(data) - 40:,} bytes omitted ...]"
    assert preview_len(meta) <= 40
    assert context_summary(meta).startswith(f"context: bytes of {len(data):,} bytes")


def test_bytearray_is_supported():
    assert describe_context(bytearray(b"abc"))["preview_head"] == "abc"


def test_empty_str():
    meta = describe_context("")
    assert meta["size"] == 0 and meta["lines"] == 0 and meta["preview_head"] == ""


# --- sequences -----------------------------------------------------------------------------


def test_list_of_str():
    docs = [f"document {i} " + "w" * i for i in range(30)]
    meta = describe_context(docs, preview_chars=400)
    sizes = [len(d) for d in docs]
    assert meta["items"] == 30
    assert meta["item_types"] == {"str": 30}
    assert meta["size"] == sum(sizes) and meta["size_estimated"] is False and meta["sampled"] is False
    assert meta["item_sizes"] == {"min": min(sizes), "max": max(sizes), "mean": round(sum(sizes) / 30, 1)}
    assert meta["first_item_sizes"] == sizes[:10]
    assert meta["preview_head"].startswith("[0] 'document 0 '\n[1] 'document 1 w'")
    assert meta["preview_tail"].endswith("[29] 'document 29 " + "w" * 29 + "'")
    assert meta["preview_note"] == f"[... {meta['preview_omitted']} items omitted ...]"
    assert preview_len(meta) <= 400
    summary = context_summary(meta)
    assert "context: list of 30 items" in summary and "item types: all str" in summary
    assert f"min {min(sizes)}, max {max(sizes)}" in summary


def test_list_of_dict():
    records = [{"id": i, "text": "t" * i} for i in range(5)]
    meta = describe_context(records)
    assert meta["item_types"] == {"dict": 5}
    # JSON-like size of {'id': 0, 'text': ''}: braces, keys, values, ": " and ", " separators.
    assert meta["first_item_sizes"] == [15, 16, 17, 18, 19]
    assert meta["preview_head"].split("\n")[0] == "[0] {'id': 0, 'text': ''}"
    assert meta["preview_omitted"] == 0 and meta["preview_tail"] == ""


def test_tuple_of_mixed_items():
    meta = describe_context(("x", 1, None, 2.5, [1, 2]))
    assert meta["type"] == "tuple" and meta["items"] == 5
    assert meta["item_types"] == {"str": 1, "int": 1, "NoneType": 1, "float": 1, "list": 1}
    assert meta["preview_head"] == "[0] 'x'\n[1] 1\n[2] None\n[3] 2.5\n[4] [1, 2]"


def test_one_huge_item_does_not_hide_the_others():
    meta = describe_context(["x" * 10_000_000, "short"], preview_chars=500)
    assert "[1] 'short'" in meta["preview_head"] + meta["preview_tail"]
    assert preview_len(meta) <= 500
    assert meta["size"] == 10_000_005


def test_empty_list():
    meta = describe_context([])
    assert meta["items"] == 0 and meta["size"] == 0 and meta["item_sizes"] is None
    assert context_summary(meta) == "context: list of 0 items, 0 characters in total"


def test_huge_nested_item_is_extrapolated_not_walked():
    meta = describe_context([{"values": list(range(1_000_000))}])
    assert meta["size_estimated"] is True
    exact = len(json.dumps({"values": list(range(1_000_000))}))
    assert math.isclose(meta["size"], exact, rel_tol=0.5)
    assert preview_len(meta) <= 2000


def test_odd_items_do_not_break_the_description():
    class Unprintable:
        def __repr__(self):
            raise RuntimeError("no")

        __str__ = __repr__

    meta = describe_context([10**5000, Unprintable(), b"raw"])
    assert "[0] <int of 5,001 digits>" in meta["preview_head"]
    assert "unprintable" in meta["preview_head"]


# --- dicts ---------------------------------------------------------------------------------


def test_dict_keys_values_and_sizes():
    d = {f"chapter_{i}": "p" * (i * 10) for i in range(40)}
    meta = describe_context(d, preview_chars=600)
    assert meta["type"] == "dict" and meta["keys"] == 40
    assert meta["first_keys"][:3] == ["'chapter_0'", "'chapter_1'", "'chapter_2'"]
    assert len(meta["first_keys"]) == 20
    assert meta["value_types"] == {"str": 40}
    assert meta["first_value_sizes"] == [i * 10 for i in range(10)]
    assert meta["value_sizes"]["max"] == 390
    assert meta["size"] == sum(len(k) + len(v) for k, v in d.items())
    assert meta["preview_head"].startswith("'chapter_0': ''\n'chapter_1': 'pppppppppp'")
    assert meta["preview_tail"].split("\n")[-1].startswith("'chapter_39': 'ppp")
    assert preview_len(meta) <= 600
    summary = context_summary(meta)
    assert "context: dict with 40 keys" in summary and "keys: 'chapter_0', 'chapter_1'" in summary


def test_large_dict_is_sampled():
    d = {i: str(i) for i in range(200_000)}
    meta = describe_context(d)
    assert meta["sampled"] is True and meta["size_estimated"] is True
    exact = sum(len(str(k)) + len(v) for k, v in d.items())
    assert math.isclose(meta["size"], exact, rel_tol=0.05)
    assert "(from a sample of" in context_summary(meta)
    assert meta["preview_tail"].endswith("199999: '199999'")


# --- DataFrame / Series by duck typing -----------------------------------------------------


def test_duck_typed_dataframe():
    frame = FakeFrame([{"name": f"row{i}", "n": i} for i in range(1000)], ["name", "n"])
    meta = describe_context(frame)
    assert meta["type"] == "FakeFrame" and meta["kind"] == "dataframe"
    assert meta["shape"] == [1000, 2] and meta["columns"] == ["name", "n"]
    assert meta["dtypes"] == {"name": "object", "n": "int64"}
    assert meta["preview_head"].split("\n")[1].startswith("0   row0")
    assert meta["preview_tail"].split("\n")[-1].startswith("999 row999")
    assert meta["preview_omitted"] == 990 and meta["preview_note"] == "[... 990 rows omitted ...]"
    assert meta["size_estimated"] is True and meta["size"] > 1000
    summary = context_summary(meta)
    assert "context: FakeFrame with 1,000 rows × 2 columns" in summary
    assert "columns: name (object), n (int64)" in summary
    json.dumps(meta)


def test_small_duck_typed_dataframe_is_shown_whole():
    frame = FakeFrame([{"name": "a", "n": 1}], ["name", "n"])
    meta = describe_context(frame)
    assert meta["preview_head"] == str(frame) and meta["preview_tail"] == "" and meta["preview_omitted"] == 0


def test_duck_typed_series():
    meta = describe_context(FakeSeries([0.5 * i for i in range(100)]))
    assert meta["kind"] == "series" and meta["length"] == 100 and meta["dtype"] == "float64"
    assert meta["name"] == "'score'"
    assert context_summary(meta).startswith("context: FakeSeries 'score' of 100 values, dtype float64")


# --- errors --------------------------------------------------------------------------------


def test_none_tells_the_user_to_define_context():
    with pytest.raises(ContextError) as err:
        check_context(None)
    message = str(err.value)
    assert "variable named `context`" in message and "--context NAME" in message and "context=" in message


def test_generator_is_refused_before_it_is_consumed():
    gen = (line for line in ["a", "b"])
    with pytest.raises(ContextError, match=r"generator.*list\(\.\.\.\)"):
        check_context(gen)
    assert list(gen) == ["a", "b"]


def test_iterator_is_refused():
    with pytest.raises(ContextError, match=r"list_iterator.*list\(\.\.\.\)"):
        describe_context(iter([1, 2]))


def test_open_file_is_refused_with_read_advice(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text("once upon a time")
    with open(path) as fh, pytest.raises(ContextError, match="read the file into a str first"):
        check_context(fh)


def test_a_path_to_nothing_is_refused_with_advice(tmp_path):
    """A path is opened lazily from disk (tests/test_datasets.py); one that names nothing says so."""
    from rlm_kernel.engine.datasets import DataError, resolve_context

    with pytest.raises(DataError, match="matches no files: check the path"):
        resolve_context(tmp_path / "book.txt")


def test_function_is_refused_with_call_advice():
    def load():
        return "text"

    with pytest.raises(ContextError, match="function; call it"):
        check_context(load)


@pytest.mark.parametrize(
    ("obj", "advice"),
    [(types, "module"), ({1, 2}, "sorted"), (42, r"str\(\.\.\.\)"), (object(), "convert it to a str"),
     (range(3), r"list\(\.\.\.\)"), (types.MappingProxyType({}), r"dict\(\.\.\.\)")],
)
def test_other_unsupported_types_name_the_type_and_a_fix(obj, advice):
    with pytest.raises(ContextError, match=advice) as err:
        check_context(obj)
    assert type(obj).__name__ in str(err.value)
    assert "Supported: str, bytes, list, tuple, dict" in str(err.value)


def test_bad_entry_inside_a_list_or_dict_is_named():
    with pytest.raises(ContextError, match=r"context\[2\] is a generator"):
        check_context(["a", "b", (x for x in "c")])
    with pytest.raises(ContextError, match=r"context\['loader'\] is a builtin_function_or_method.*call it"):
        check_context({"text": "a", "loader": print})


def test_context_error_is_a_value_error():
    assert issubclass(ContextError, ValueError)


def test_supported_inputs_pass_the_check():
    for obj in ["", b"", bytearray(), [], (), {}, [{"a": [1, {"b": None}]}], FakeFrame([], ["a"]),
                FakeSeries([])]:
        check_context(obj)


def test_negative_preview_budget_is_refused():
    with pytest.raises(ValueError):
        describe_context("abc", preview_chars=-1)


# --- size and speed ------------------------------------------------------------------------


def test_hundred_million_character_string_stays_cheap_and_bounded():
    text = "0123456789" * 10_000_000
    meta = describe_context(text)
    assert meta["size"] == 100_000_000 and meta["lines"] == 1
    assert preview_len(meta) <= 2000
    assert len(json.dumps(meta)) < 3000
    assert len(context_summary(meta)) < 2300


def test_five_million_item_list_is_sampled_and_bounded():
    items = ["abcdefghij" * (1 + i % 3) for i in range(5_000_000)]
    meta = describe_context(items)
    assert meta["items"] == 5_000_000
    assert meta["sampled"] is True and meta["size_estimated"] is True
    assert meta["sample_size"] < 3000
    assert math.isclose(meta["size"], 100_000_000, rel_tol=0.02)
    assert meta["item_sizes"]["min"] == 10 and meta["item_sizes"]["max"] == 30
    assert preview_len(meta) <= 2000
    assert len(json.dumps(meta)) < 4000
    summary = context_summary(meta)
    assert "context: list of 5,000,000 items, about" in summary and "(from a sample of" in summary


@pytest.mark.parametrize("budget", [0, 1, 10, 37, 100, 2000])
@pytest.mark.parametrize(
    "obj",
    ["x" * 5000, b"y" * 5000, ["z" * 300] * 50, [{"k": "v" * 200, "n": [1, 2, 3]}] * 40,
     {f"key{i}": ["w" * 100] * 3 for i in range(60)}, tuple(range(500)),
     FakeFrame([{"name": "r" * 50, "n": i} for i in range(100)], ["name", "n"])],
)
def test_preview_never_exceeds_its_budget(obj, budget):
    meta = describe_context(obj, preview_chars=budget)
    assert preview_len(meta) <= budget


def test_many_nested_entries_share_one_measuring_budget():
    records = [{f"field{j}": j for j in range(50)} for _ in range(10_000)]
    meta = describe_context(records)
    assert meta["sampled"] is False  # every entry is looked at ...
    assert meta["size_estimated"] is True  # ... but only partly walked, and the metadata says so
    assert meta["first_item_sizes"][0] == sum(len(f"field{j}") + 2 + len(str(j)) for j in range(50)) + 2 + 98
