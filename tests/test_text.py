"""What the model reads of a cell's outputs."""

from __future__ import annotations

import base64

import pytest

from rlm_kernel.engine.text import html_to_text, omitted_note, outputs_to_text, strip_ansi, truncate

# --- truncate ------------------------------------------------------------------------------


def test_truncate_within_limit_is_unchanged():
    assert truncate("abc", 3) == "abc"
    assert truncate("", 0) == ""
    assert truncate("x" * 100, 1000) == "x" * 100


def test_truncate_one_over_the_limit():
    out = truncate("abcdefghijk", 10)
    assert out == "abcd\n[... 3 characters omitted ...]\nhijk"
    assert len(out) <= 10 + len("[... 3 characters omitted ...]")


def test_truncate_keeps_head_and_tail_around_a_note():
    text = "HEAD" + "x" * 123_456 + "TAIL"
    out = truncate(text, 100)
    head, note, tail = out.split("\n")
    assert head.startswith("HEAD") and tail.endswith("TAIL")
    assert len(head) + len(tail) == 98
    assert note == "[... 123,366 characters omitted ...]"
    assert len(out) == 100 + len(note)


@pytest.mark.parametrize("limit", [0, 1, 2, 3, 7, 50, 99])
def test_truncate_length_bound(limit):
    text = "".join(chr(97 + i % 26) for i in range(100))
    out = truncate(text, limit)
    kept = max(0, limit - 2)
    note = omitted_note(100 - kept)
    assert note in out
    assert len(out) <= limit + len(note)
    rest = out.replace(note, "").strip("\n").split("\n") if kept else []
    assert "".join(rest) == text[: (kept + 1) // 2] + text[100 - kept // 2 :]


def test_truncate_note_is_singular_for_one():
    assert omitted_note(1) == "[... 1 character omitted ...]"
    assert omitted_note(2, "items") == "[... 2 items omitted ...]"


def test_truncate_rejects_negative_limit():
    with pytest.raises(ValueError):
        truncate("abc", -1)


# --- ANSI ----------------------------------------------------------------------------------


def test_strip_ansi_removes_colours_cursor_moves_and_links():
    s = "\x1b[0;31mValueError\x1b[0m: bad \x1b[1;32mvalue\x1b[39;49m\x1b[2K\x1b]8;;http://x\x07link\x1b]8;;\x07"
    assert strip_ansi(s) == "ValueError: bad valuelink"


def test_strip_ansi_leaves_plain_text_alone():
    assert strip_ansi("plain [brackets] and 100%") == "plain [brackets] and 100%"


# --- outputs -------------------------------------------------------------------------------


def stream(text, name="stdout"):
    return {"output_type": "stream", "name": name, "text": text}


def test_stream_text_and_line_lists():
    outputs = [stream("hello\n"), stream(["a\n", "b\n"])]
    assert outputs_to_text(outputs) == "hello\na\nb\n"


def test_consecutive_chunks_of_one_stream_join_without_newlines():
    assert outputs_to_text([stream("12"), stream("34\n")]) == "1234\n"


def test_different_streams_start_on_new_lines():
    assert outputs_to_text([stream("out"), stream("warn", "stderr"), stream("more")]) == "out\nwarn\nmore"


def test_progress_bar_redraws_show_only_the_final_state():
    outputs = [stream("  0%|\r 50%|\r", "stderr"), stream("100%|done\n", "stderr"), stream("ok\r\n")]
    assert outputs_to_text(outputs) == "100%|done\nok\n"


def test_execute_result_prefers_text_plain():
    out = {"output_type": "execute_result", "execution_count": 3,
           "data": {"text/plain": "42", "text/html": "<b>42</b>"}, "metadata": {}}
    assert outputs_to_text([out]) == "42"


def test_display_data_html_is_reduced_to_text():
    html = ("<style>td {color: red}</style><table><tr><th>name</th><th>n</th></tr>"
            "<tr><td>a &amp; b</td><td>1</td></tr></table><script>alert(1)</script>")
    out = {"output_type": "display_data", "data": {"text/html": html}, "metadata": {}}
    assert outputs_to_text([out]) == "name n\na & b 1"


def test_html_to_text_breaks_blocks_into_lines():
    assert html_to_text("<h1>Title</h1><p>One   two</p><ul><li>x</li><li>y</li></ul>") == "Title\nOne two\nx\ny"


def test_image_becomes_a_placeholder_with_its_size():
    png = base64.b64encode(b"\x89PNG" + b"\0" * (12 * 1024 - 4)).decode()
    out = {"output_type": "display_data", "data": {"image/png": png}, "metadata": {}}
    assert outputs_to_text([out]) == "<image/png 12 KB>"


def test_small_unknown_mime_placeholder_in_bytes():
    out = {"output_type": "display_data",
           "data": {"application/vnd.custom+json": {"a": 1}}, "metadata": {}}
    assert outputs_to_text([out]) == "<application/vnd.custom+json 8 bytes>"


def test_markdown_and_json_bundles():
    md = {"output_type": "display_data", "data": {"text/markdown": "# Hi"}, "metadata": {}}
    js = {"output_type": "display_data", "data": {"application/json": {"k": [1, 2]}}, "metadata": {}}
    assert outputs_to_text([md, js]) == '# Hi\n{"k": [1, 2]}'


def test_error_traceback_without_ansi():
    err = {"output_type": "error", "ename": "ZeroDivisionError", "evalue": "division by zero",
           "traceback": ["\x1b[0;31m---------\x1b[0m",
                         "Cell \x1b[0;32mIn[1], line 1\x1b[0m\n----> 1 \x1b[38;5;241m1\x1b[39m/\x1b[38;5;241m0\x1b[39m",
                         "\x1b[0;31mZeroDivisionError\x1b[0m: division by zero"]}
    text = outputs_to_text([stream("before\n"), err])
    assert text == ("before\n---------\nCell In[1], line 1\n----> 1 1/0\n"
                    "ZeroDivisionError: division by zero\n")
    assert "\x1b" not in text


def test_error_without_traceback_uses_name_and_value():
    err = {"output_type": "error", "ename": "KeyError", "evalue": "'x'", "traceback": []}
    assert outputs_to_text([err]) == "KeyError: 'x'\n"


def test_mixed_outputs_each_start_on_their_own_line():
    outputs = [stream("counting"),
               {"output_type": "execute_result", "data": {"text/plain": "7"}, "metadata": {}},
               {"output_type": "display_data", "data": {"text/plain": "\x1b[1mbold\x1b[0m"}, "metadata": {}}]
    assert outputs_to_text(outputs) == "counting\n7\nbold"


def test_empty_and_unknown_outputs_are_skipped():
    assert outputs_to_text([]) == ""
    assert outputs_to_text([{"output_type": "clear_output"}, stream(""),
                            {"output_type": "display_data", "data": {}, "metadata": {}}]) == ""
