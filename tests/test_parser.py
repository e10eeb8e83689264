"""Reading model replies: which blocks run, and which FINAL counts."""

from __future__ import annotations

import pytest

from rlm_kernel.engine.parser import FinalAnswer, extract_code_blocks, find_final, strip_code_blocks

F = "```"


def text(value: str) -> FinalAnswer:
    return FinalAnswer("text", value)


def var(name: str) -> FinalAnswer:
    return FinalAnswer("var", name)


# --- code blocks ---------------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["repl", "python", "py", "REPL", "Python", "PY", " repl", "python  ", "py\t"])
def test_runnable_tags_any_case_and_spacing(tag):
    assert extract_code_blocks(f"Look:\n{F}{tag}\nx = 1\n{F}\n") == ["x = 1"]


@pytest.mark.parametrize("tag", ["", "bash", "json", "text", "python3 extra", "pycon", "repl-output"])
def test_other_tags_and_untagged_fences_do_not_run(tag):
    assert extract_code_blocks(f"{F}{tag}\nrm -rf /\n{F}\n") == []


def test_blocks_are_returned_in_order_with_tilde_fences():
    reply = f"one\n{F}repl\na = 1\n{F}\nprose\n~~~python\nb = 2\nprint(a + b)\n~~~\n{F}py\nc = 3\n{F}"
    assert extract_code_blocks(reply) == ["a = 1", "b = 2\nprint(a + b)", "c = 3"]


def test_closing_fence_must_match_character_and_length():
    reply = "````repl\ns = '''\n```\n~~~\n'''\nprint(s)\n````\n"
    assert extract_code_blocks(reply) == ["s = '''\n```\n~~~\n'''\nprint(s)"]


def test_tilde_block_is_not_closed_by_backticks():
    reply = "~~~repl\nx = 1\n```\ny = 2\n~~~"
    assert extract_code_blocks(reply) == ["x = 1\n```\ny = 2"]


def test_unterminated_final_block_is_not_run():
    reply = f"{F}repl\nfirst = 1\n{F}\nNow the big one:\n{F}repl\nfor chunk in chunks:\n    llm_q"
    assert extract_code_blocks(reply) == ["first = 1"]


def test_other_language_block_hides_fences_inside_it():
    reply = f"````markdown\nExample:\n{F}repl\nprint('not me')\n{F}\n````\n{F}repl\nprint('me')\n{F}"
    assert extract_code_blocks(reply) == ["print('me')"]


def test_indented_fence_in_a_list_item_is_dedented():
    reply = f"1. Count:\n   {F}python\n   n = len(context)\n   if n:\n       print(n)\n   {F}\n"
    assert extract_code_blocks(reply) == ["n = len(context)\nif n:\n    print(n)"]


def test_crlf_line_endings():
    reply = f"Hi\r\n{F}repl\r\nx = 1\r\nprint(x)\r\n{F}\r\n"
    assert extract_code_blocks(reply) == ["x = 1\nprint(x)"]


def test_inline_triple_backticks_are_not_a_fence():
    assert extract_code_blocks("Use ```repl print(1)``` like this.") == []


def test_empty_blocks_are_skipped():
    assert extract_code_blocks(f"{F}repl\n{F}\n{F}python\n   \n{F}") == []


def test_blank_lines_inside_a_block_are_kept():
    assert extract_code_blocks(f"{F}repl\na = 1\n\n\nb = 2\n{F}") == ["a = 1\n\n\nb = 2"]


# --- FINAL ---------------------------------------------------------------------------------


def test_final_on_its_own_line():
    assert find_final("I have read everything.\nFINAL(Paris)\n") == text("Paris")


def test_no_final():
    assert find_final("Let me look at the data first.") is None
    assert find_final("") is None


def test_final_with_nested_parentheses():
    assert find_final("FINAL(f(x) = (a + (b * c)) for x > 0)") == text("f(x) = (a + (b * c)) for x > 0")


def test_final_multiline():
    reply = "Done.\nFINAL(Three themes:\n1. cost (high)\n2. speed\n3. trust\n)\nThanks"
    assert find_final(reply) == text("Three themes:\n1. cost (high)\n2. speed\n3. trust")


@pytest.mark.parametrize(
    ("reply", "answer"),
    [
        ('FINAL("The answer is 42")', "The answer is 42"),
        ("FINAL('The answer is 42')", "The answer is 42"),
        ('FINAL("""\nLine one.\nLine two (with a paren.\n""")', "Line one.\nLine two (with a paren."),
        ("FINAL('''It's done''')", "It's done"),
        ('FINAL( "spaced" )', "spaced"),
        ('FINAL("She said \\"hi\\" (twice)")', 'She said "hi" (twice)'),
        ('FINAL("an unmatched ) inside")', "an unmatched ) inside"),
        ('FINAL("a multi-line\nquoted answer")', "a multi-line\nquoted answer"),
    ],
)
def test_final_quoted_literal_loses_one_layer_of_quotes(reply, answer):
    assert find_final(reply) == text(answer)


def test_final_with_several_quoted_parts_keeps_its_quotes():
    assert find_final('FINAL("yes" and "no")') == text('"yes" and "no"')


def test_final_keeps_parentheses_inside_quoted_parts_of_prose():
    assert find_final('FINAL(The token ")" appears (twice) in "f(x")') == text(
        'The token ")" appears (twice) in "f(x"'
    )


def test_final_with_apostrophes_and_parentheses():
    reply = "FINAL(It's Bob's car (and Alice's bike))"
    assert find_final(reply) == text("It's Bob's car (and Alice's bike)")


def test_final_with_inline_code_containing_parens():
    assert find_final("FINAL(Call `f(` then close it)") == text("Call `f(` then close it")


@pytest.mark.parametrize("reply", ["FINAL_VAR(result)", 'FINAL_VAR("result")', "FINAL_VAR('result')",
                                   "FINAL_VAR( result )", "FINAL_VAR(\n  result\n)"])
def test_final_var_quoted_or_not(reply):
    assert find_final(reply) == var("result")


def test_final_var_with_an_expression_is_reported_for_the_caller_to_reject():
    answer = find_final("FINAL_VAR(answer['content'])")
    assert answer == var("answer['content']")
    assert not answer.value.isidentifier()


def test_final_inside_a_code_block_is_left_to_the_repl():
    reply = f"{F}repl\nresult = summarize(context)\nFINAL(result)\n{F}\n"
    assert find_final(reply) is None
    assert extract_code_blocks(reply) == ["result = summarize(context)\nFINAL(result)"]


def test_final_var_inside_an_untagged_fence_is_not_an_answer():
    assert find_final(f"Usage:\n{F}\nFINAL_VAR(x)\n{F}") is None


def test_final_inside_an_unterminated_block_is_not_an_answer():
    assert find_final(f"{F}repl\nx = compute()\nFINAL(x") is None


def test_final_inline_in_prose_is_not_an_answer():
    assert find_final("I will call FINAL(x) once I know the answer.") is None
    assert find_final("Plan: chunk, query, then FINAL_VAR(summary).") is None


@pytest.mark.parametrize(
    "line",
    ["  FINAL(42)", "\tFINAL(42)", "**FINAL(42)**", "> FINAL(42)", "- FINAL(42)", "* FINAL(42)",
     "1. FINAL(42)", "## FINAL(42)", "`FINAL(42)`", "> **FINAL(42)**", "FINAL (42)"],
)
def test_final_after_markdown_decoration_at_line_start(line):
    assert find_final(f"All done.\n{line}\n") == text("42")


@pytest.mark.parametrize("reply", ["FINALLY(42)", "MY_FINAL(42)", "FINAL 42", "The final (42) one"])
def test_lookalikes_are_not_answers(reply):
    assert find_final(reply) is None


@pytest.mark.parametrize("reply, kind", [("final(42)", "text"), ("Final(42)", "text"), ("Final_Var(42)", "var"),
                                         ("final_var(42)", "var")])
def test_final_in_any_case_is_an_answer(reply, kind):
    # Qwen2.5-Coder-1.5B wrote `Final(answer)` after reading the right value (eval_local_partial).
    assert find_final(reply) == (text("42") if kind == "text" else FinalAnswer("var", "42"))


def test_last_final_wins():
    reply = "FINAL(first guess)\nMore checking...\nFINAL_VAR(better)\nActually:\nFINAL(the real answer)"
    assert find_final(reply) == text("the real answer")


def test_final_inside_another_finals_text_is_part_of_it():
    reply = 'FINAL("""Report:\nFINAL(nested) is how the model answers.\n""")'
    assert find_final(reply) == text("Report:\nFINAL(nested) is how the model answers.")


def test_unclosed_final_takes_the_rest_of_the_text():
    reply = "Summary below.\nFINAL(The three causes are:\n1. drought (2019\n2. fires"
    assert find_final(reply) == text("The three causes are:\n1. drought (2019\n2. fires")


def test_unclosed_quoted_final_drops_the_opening_quote():
    assert find_final('FINAL("The answer was cut of') == text("The answer was cut of")


def test_final_next_to_a_code_block_is_reported():
    reply = f"{F}repl\nprint(1)\n{F}\nFINAL(one)"
    assert find_final(reply) == text("one")
    assert extract_code_blocks(reply) == ["print(1)"]


def test_final_text_may_contain_a_code_fence():
    reply = f"FINAL(Use this:\n{F}python\nprint(len(x))\n{F}\nand you are done.)"
    assert find_final(reply) == text(f"Use this:\n{F}python\nprint(len(x))\n{F}\nand you are done.")


def test_final_before_a_block_with_parentheses_is_not_extended():
    reply = f"FINAL(done)\n{F}repl\nprint(')')\n{F}"
    assert find_final(reply) == text("done")


def test_empty_final_is_reported_empty():
    assert find_final("FINAL()") == text("")


def test_final_answer_is_frozen():
    answer = find_final("FINAL(x)")
    with pytest.raises(AttributeError):
        answer.value = "y"  # type: ignore[misc]


# --- prose ---------------------------------------------------------------------------------


def test_strip_code_blocks_keeps_only_prose():
    reply = (f"First I count.\n\n{F}repl\nprint(len(context))\n{F}\n\nThe count is what matters.\n"
             f"~~~json\n{{\"a\": 1}}\n~~~\nEnd.\n{F}repl\nunfinished(")
    assert strip_code_blocks(reply) == "First I count.\n\nThe count is what matters.\nEnd."


def test_strip_code_blocks_without_blocks_only_trims():
    assert strip_code_blocks("  The answer is 42.  \n") == "The answer is 42."
