"""The fenced protocol against replies real models wrote (issue 12), scripted through the real
anthropic SDK and the loopback fake server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rlm_kernel import rlm
from rlm_kernel.testing.fake_anthropic import FakeAnthropic

ROOT = "claude-sonnet-5-5"
SECRET = "The secret access code is 4721. Keep it safe."


@pytest.fixture
def srv():
    with FakeAnthropic(root_model=ROOT) as s:
        yield s


def ask(srv: FakeAnthropic, tmp_path: Path, root: Any, sub: Any = "sub-answer", context: Any = SECRET, **opts: Any):
    srv.route(root=root, sub=sub)
    opts.setdefault("max_retries", 0)
    return rlm("What is the secret access code?", context=context, provider="anthropic", base_url=srv.base_url,
               api_key="test-key", runs_dir=str(tmp_path / "runs"), protocol="fences", **opts)


def fed(srv: FakeAnthropic) -> list[str]:
    """What the model was told after each of its replies (the last user message of each later request)."""
    return [r.last_user_text() for r in srv.requests if r.model == ROOT and r.status == 200][1:]


# --- never answer unseen ------------------------------------------------------------------------

def test_invented_output_and_answer_next_to_code_are_set_aside(srv, tmp_path):
    # Sonnet 4.6 writes plausible fake REPL output and answers in the same reply (rlms PR #127).
    invented = ("```repl\nprint(context[:200])\n```\nOutput:\n```\nNo access code is mentioned.\n```\n"
                "FINAL(The context does not mention an access code.)")
    result = ask(srv, tmp_path, [invented, "FINAL(4721)"])
    assert result.answer == "4721" and result.steps == 2
    told = fed(srv)[0]
    assert "The secret access code is 4721" in told  # the real output
    assert "set aside" in told and "before that code's output existed" in told


def test_code_that_sets_the_answer_still_ends_the_run(srv, tmp_path):
    result = ask(srv, tmp_path, ["```repl\ncode = context.split()[5]\nFINAL(code.rstrip('.'))\n```\nFINAL(wrong)"])
    assert result.answer == "4721" and result.steps == 1


def test_final_var_after_clean_code_reads_the_real_value(srv, tmp_path):
    result = ask(srv, tmp_path, ["```repl\nfound = context.split()[5].rstrip('.')\n```\nFINAL_VAR(found)"])
    assert result.answer == "4721" and result.steps == 1


def test_final_var_after_failing_code_is_set_aside(srv, tmp_path):
    result = ask(srv, tmp_path, ["```repl\nfound = 'stale'\n1 / 0\n```\nFINAL_VAR(found)", "FINAL(4721)"])
    assert result.answer == "4721"
    assert "raised an error" in fed(srv)[0] and "ZeroDivisionError" in fed(srv)[0]


# --- code that is not in a fence -----------------------------------------------------------------

HAIKU_XML = """I'll look at the context first.

<function_calls>
<invoke name="repl">
<parameter name="code">print(context.split("is ")[1][:4])</parameter>
</invoke>
</function_calls>"""

MINIMAX = """[TOOL_CALL]
{tool => "repl", args => {
  --code "words = context.split()\\nprint(words[5])"
}}
[/TOOL_CALL]"""


@pytest.mark.parametrize("reply, form", [(HAIKU_XML, "<invoke> tool call"), (MINIMAX, "[TOOL_CALL] block"),
                                         ("```\nprint(context.split()[5])\n```", "untagged ``` block")])
def test_tool_call_shaped_text_and_bare_fences_run_as_code(srv, tmp_path, reply, form):
    result = ask(srv, tmp_path, [reply, "FINAL(4721)"])
    assert result.answer == "4721"
    told = fed(srv)[0]
    assert "4721" in told and f"Ran the code of your {form} as cell 1" in told and "```repl" in told


def test_tool_call_without_code_gets_the_exact_format(srv, tmp_path):
    reply = ('<function_calls>\n<invoke name="search">\n<parameter name="query">code</parameter>\n</invoke>\n'
             '</function_calls>')
    result = ask(srv, tmp_path, [reply, "FINAL(4721)"])
    assert result.answer == "4721"
    told = fed(srv)[0]
    assert "a tool named 'search'" in told and "```repl\nprint(len(context)" in told
    assert "FINAL(...) with the answer itself inside" in told


def test_an_untagged_block_that_is_only_a_value_does_not_run(srv, tmp_path):
    result = ask(srv, tmp_path, ["The count was:\n```\n19\n```", "FINAL(19)"])
    assert result.answer == "19"
    assert "no code that I could run" in fed(srv)[0]


def test_two_untagged_python_blocks_are_not_guessed_at(srv, tmp_path):
    result = ask(srv, tmp_path, ["```\nx = 1\n```\nthen\n```\nprint(x)\n```", "FINAL(done)"])
    assert result.answer == "done"
    assert "2 code blocks without a tag" in fed(srv)[0]


# --- FINAL(name) and FINAL(expression) -----------------------------------------------------------

def test_final_of_a_variable_name_answers_its_value(srv, tmp_path):
    # gpt-4o wrote FINAL(random_number) meaning the variable.
    result = ask(srv, tmp_path, ["```repl\nrandom_number = 4721\nprint(random_number)\n```", "FINAL(random_number)"])
    assert result.answer == "4721"


@pytest.mark.parametrize("final, expected", [
    ("FINAL(len(words))", "9"),
    ("FINAL(words[5].rstrip('.'))", "4721"),
    ("FINAL(The code is 4721)", "The code is 4721"),
    ("FINAL(Paris)", "Paris"),  # no such variable, and not a variable's kind of name: literal text
    ("FINAL(42)", "42"),
    ('FINAL("words")', "words"),  # a quoted string is text, even when a variable has that name
])
def test_final_expression_rule(srv, tmp_path, final, expected):
    result = ask(srv, tmp_path, ["```repl\nwords = context.split()\nprint(len(words))\n```", final])
    assert result.answer == expected


def test_final_calling_a_helper_on_turn_one_is_not_the_answer(srv, tmp_path):
    # Qwen2.5-Coder-1.5B, first turn: the source text of a call became the answer, status done.
    first = 'FINAL(llm_query("What is the secret access code in this text? " + context))'
    result = ask(srv, tmp_path, [first, "```repl\nr = llm_query('code? ' + context)\nprint(r)\n```", "FINAL_VAR(r)"],
                 sub="4721")
    assert result.answer == "4721" and result.steps == 3
    told = fed(srv)[0]
    assert "llm_query was never called" in told and "FINAL_VAR(result)" in told
    assert next(r for r in srv.requests if r.model != ROOT).last_user_text().startswith("code?")


def test_final_var_error_lists_the_variables_that_exist(srv, tmp_path):
    result = ask(srv, tmp_path, ["```repl\nlines = context.split('.')\ncount = len(lines)\n```", "FINAL_VAR(total)",
                                 "FINAL_VAR(count)"])
    assert result.answer == "3"
    told = fed(srv)[1]
    assert "no variable named 'total'" in told and "lines, count" in told
    assert "llm_query" not in told.split("exist:")[1]  # helpers are not listed as variables


# --- FINAL hidden in code, repeated replies -------------------------------------------------------

def test_final_in_a_comment_is_named_as_the_mistake(srv, tmp_path):
    result = ask(srv, tmp_path, ["```repl\nlines = context.split()\nprint(len(lines))\n```", "```repl\n# FINAL(9)\n```",
                                 "FINAL(9)"])
    assert result.answer == "9"
    told = fed(srv)[1]
    assert "`FINAL(9)` in cell 1 is inside a comment" in told and "on a line of its own, outside any code block" in told


def test_final_in_a_string_is_named_as_the_mistake(srv, tmp_path):
    result = ask(srv, tmp_path, ['```repl\nprint("FINAL(9)")\n```', "FINAL(9)"])
    assert result.answer == "9"
    assert "`FINAL(9)` in cell 1 is inside a string" in fed(srv)[0]


def test_the_same_useless_reply_twice_is_told_precisely_never_no_output(srv, tmp_path):
    # The local model repeated `# FINAL(0)` for seven turns, told only "(no output)" each time.
    result = ask(srv, tmp_path, ["```repl\n# FINAL(0)\n```"] * 3 + ["FINAL(0)"])
    assert result.answer == "0"
    second, third = fed(srv)[1], fed(srv)[2]
    for told in (second, third):
        assert "same reply as in your previous step" in told
        assert "`FINAL(0)` in cell 1 is inside a comment" in told
        assert "(no output)" not in told


def test_repeated_code_with_the_same_output_says_so(srv, tmp_path):
    result = ask(srv, tmp_path, ["```repl\nprint(len(context))\n```"] * 2 + ["FINAL(45)"])
    assert result.answer == "45"
    assert "printed the same output as before" in fed(srv)[1] and "45" in fed(srv)[1]


def test_repeated_silent_code_says_it_printed_nothing(srv, tmp_path):
    result = ask(srv, tmp_path, ["```repl\nx = 1\n```"] * 2 + ["FINAL(1)"])
    assert result.answer == "1"
    assert "printed nothing" in fed(srv)[1] and "(no output)" not in fed(srv)[1]


def test_forced_answer_reads_a_final_in_a_comment(srv, tmp_path):
    result = ask(srv, tmp_path, ["```repl\nn = 19\nprint(n)\n```", "```repl\n# FINAL(19)\n```"], max_iterations=1)
    assert result.status == "budget" and result.answer == "19"


def test_forced_answer_never_returns_helper_source_text(srv, tmp_path):
    result = ask(srv, tmp_path, ["```repl\nprint(1)\n```", 'FINAL(llm_query("secret?"))'], max_iterations=1)
    assert result.status == "budget" and result.answer_source == "partial"


# --- helpers models trained on the official prompt call ----------------------------------------

def test_show_vars_and_context_0(srv, tmp_path):
    result = ask(srv, tmp_path, ["```repl\nwords = context_0.split()\nSHOW_VARS()\n```", "FINAL(ok)"])
    assert result.answer == "ok"
    told = fed(srv)[0]
    assert "words (list, 9 items)" in told and "llm_query" not in told and "context" not in told.split("Variables:")[1]


def test_context_0_is_restored_like_context(srv, tmp_path):
    result = ask(srv, tmp_path, ["```repl\ncontext_0 = context_0.split()\n```", "```repl\nprint(context_0[:10])\n```",
                                 "FINAL(ok)"])
    assert result.answer == "ok"
    assert "rebound `context_0`" in fed(srv)[0] and "The secret" in fed(srv)[1]


def test_rlm_query_batched_runs_children_with_their_contexts(srv, tmp_path):
    def root(request):
        first = request["messages"][0]["content"]
        text = first if isinstance(first, str) else first[0]["text"]
        if "Question: What is the secret" in text:
            turns = sum(1 for m in request["messages"] if m["role"] == "assistant")
            return ('```repl\nres = rlm_query_batched(["first word?", "last word?"], ["alpha beta", "gamma delta"])\n'
                    'print(res)\n```') if turns == 0 else "FINAL_VAR(res)"
        return "```repl\nFINAL(context.split()[0] if 'first' in 'first word?' else '')\n```"

    result = ask(srv, tmp_path, root, max_depth=3)
    assert result.status == "done"
    assert result.answer == "['alpha', 'gamma']"
    assert result.subcalls == 2


def test_rlm_query_batched_at_the_depth_limit_asks_the_sub_model(srv, tmp_path):
    result = ask(srv, tmp_path, ['```repl\nres = rlm_query_batched(["a?", "b?"], ["x", "y"])\nprint(res)\n```',
                                 "FINAL_VAR(res)"], sub=lambda r: "sub:" + r.last_user_text()[:2], max_depth=1)
    assert result.answer == "['sub:a?', 'sub:b?']"


def test_rlm_query_batched_with_mismatched_contexts_is_a_clear_error(srv, tmp_path):
    ask(srv, tmp_path, ['```repl\nrlm_query_batched(["a", "b"], ["x"])\n```', "FINAL(ok)"])
    assert "2 prompts but 1 contexts" in fed(srv)[0]


def test_compat_helpers_export_and_replay_without_a_model(srv, tmp_path):
    """An exported run that used context_0, SHOW_VARS and rlm_query_batched replays from its record."""
    import nbformat

    from rlm_kernel.export import export_run, install_replay

    code = 'res = rlm_query_batched(["a?", "b?"], [context_0[:3], "y"])\nprint(SHOW_VARS(), res)'
    result = ask(srv, tmp_path, [f"```repl\n{code}\n```", "FINAL_VAR(res)"],
                 sub=lambda r: "sub:" + r.last_user_text()[:2], max_depth=1)
    assert result.answer == "['sub:a?', 'sub:b?']"
    nb = nbformat.read(export_run(result.log_path, tmp_path / "out.ipynb"), as_version=4)
    context_cell = next(c.source for c in nb.cells if c.metadata.get("rlm", {}).get("role") == "context")
    assert "context_0 = context" in context_cell
    ns: dict = {}
    install_replay(ns, result.log_path)
    exec(context_cell, ns)
    exec(code.replace("print(", "shown = ("), ns)
    assert ns["res"] == ["sub:a?", "sub:b?"] and "res (list, 2 items)" in ns["shown"][0]
    assert ns["context_0"] is ns["context"]


def test_rlm_query_batched_respects_the_subcall_budget(srv, tmp_path):
    code = 'res = rlm_query_batched(["a?", "b?", "c?"], ["x", "y", "z"])\nprint(res)'
    result = ask(srv, tmp_path, [f"```repl\n{code}\n```", "FINAL_VAR(res)"], sub="fine", max_depth=1,
                 max_subcalls=2)
    assert result.status == "budget" and "subcalls budget exhausted" in (result.reason or "")
    sent = [r for r in srv.requests if r.model != ROOT]
    assert len(sent) == 2


def test_export_lists_tool_call_code_the_run_never_reached(srv, tmp_path):
    import nbformat

    from rlm_kernel.export import export_run

    two = ('<invoke name="repl"><parameter name="code">llm_query("a"); llm_query("b")</parameter></invoke>\n'
           '<invoke name="repl"><parameter name="code">print("second")</parameter></invoke>')
    result = ask(srv, tmp_path, [two], max_subcalls=1)  # the second sub-call is over budget
    assert result.status == "budget"
    nb = nbformat.read(export_run(result.log_path, tmp_path / "out.ipynb"), as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert 'llm_query("a"); llm_query("b")' in code
    unrun = [c.source for c in nb.cells if c.metadata.get("rlm", {}).get("role") == "not-run"]
    assert len(unrun) == 1 and 'print("second")' in unrun[0]


# --- what Qwen2.5-Coder-1.5B wrote (benchmarks/results/eval_local_partial) -----------------------

CODES = {"weary-garden-96": "R111-9973", "quiet-letter-57": "E715-5882", "silver-harbor-48": "C748-4864"}
QWEN_LOOKUP = ("```repl\naccess_code = context.get('quiet-letter-57', None)\nprint(access_code)\n```\n"
               "Assistant:\n`G335-6832`")


def test_an_invented_next_turn_is_dropped(srv, tmp_path):
    # The model's code ran, then it wrote "Assistant:" and an invented code as if it had seen output.
    result = ask(srv, tmp_path, [QWEN_LOOKUP, "FINAL_VAR(access_code)"], context=CODES)
    assert result.answer == "E715-5882" and result.steps == 2
    told = fed(srv)[0]
    assert "E715-5882" in told and "G335-6832" not in told
    # Nothing but prose was dropped: no note (told "you wrote the next turn", Qwen apologised it could not)
    assert "Note" not in told


def test_final_var_of_a_variable_called_in_code_answers_with_it(srv, tmp_path):
    # Qwen wrote ```\nFINAL_VAR(access_code)\n``` (an untagged block): in code that passes the value.
    first = "```repl\naccess_code = context['quiet-letter-57']\nprint(access_code)\n```"
    result = ask(srv, tmp_path, [first, "```\nFINAL_VAR(access_code)\n```"], context=CODES)
    assert result.answer == "E715-5882" and result.steps == 2 and result.answer_source == "code"


def test_an_invented_output_then_final_var_reads_the_real_value(srv, tmp_path):
    # Qwen: code, then "User: Output of cell 1:\n563\nAssistant:\nFINAL_VAR(...)". The variable is real.
    reply = ("```repl\nwords = context.split()\nspecial = words[5].rstrip('.')\nprint(special)\n```\n"
             "User: Output of cell 1:\n563\nAssistant:\nFINAL_VAR(special)")
    result = ask(srv, tmp_path, [reply])
    assert result.answer == "4721" and result.steps == 1


def test_an_invented_output_hides_later_code(srv, tmp_path):
    reply = ("```repl\nprint(len(context))\n```\nOutput of cell 1:\n9000\n```repl\nprint(context[8000:8100])\n```")
    result = ask(srv, tmp_path, [reply, "FINAL(4721)"])
    assert result.answer == "4721"
    told = fed(srv)[0]
    assert "Output of cell 1:\n45" in told and "cell 2" not in told
    assert "the code block after `Output of cell 1:` in your reply did not run" in told


@pytest.mark.parametrize("placeholder", ["Final(answer)", "Final(your answer)", "FINAL(your answer)",
                                         "FINAL(<the answer itself>)", "FINAL(...)"])
def test_a_placeholder_final_is_refused_with_the_last_output_and_a_way_to_answer(srv, tmp_path, placeholder):
    result = ask(srv, tmp_path, ["```repl\naccess_code = context.get('quiet-letter-57')\nprint(access_code)\n```",
                                 placeholder, "FINAL_VAR(access_code)"], context=CODES)
    assert result.answer == "E715-5882" and result.steps == 3
    told = fed(srv)[1]
    assert "is a placeholder, not an answer" in told
    assert "Your last cell (cell 1) showed: E715-5882" in told and "FINAL_VAR(access_code)" in told


def test_a_reply_with_no_code_after_a_cell_quotes_its_output(srv, tmp_path):
    result = ask(srv, tmp_path, ["```repl\nfound = context.split()[5]\nprint(found)\n```",
                                 "I have found the code.", "FINAL_VAR(found)"])
    assert result.answer == "4721."
    told = fed(srv)[1]
    assert "no code that I could run" in told and "Your last cell (cell 1) showed: 4721." in told
    assert "FINAL_VAR(found)" in told


def test_a_reply_that_is_only_python_runs(srv, tmp_path):
    # Qwen in tools mode replied with nothing but `llm_query_batched([...])`, no fence and no tool call.
    result = ask(srv, tmp_path, ["words = context.split()\nprint(words[5])", "FINAL(4721)"])
    assert result.answer == "4721"
    assert "Ran the code of your reply (Python with no block around it) as cell 1" in fed(srv)[0]
    assert "4721" in fed(srv)[0]


@pytest.mark.parametrize("prose", ["The answer is in the context.", "Paris", "I will now inspect the context."])
def test_prose_is_never_run_as_python(srv, tmp_path, prose):
    result = ask(srv, tmp_path, [prose, "FINAL(4721)"])
    assert result.answer == "4721"
    assert "no code that I could run" in fed(srv)[0]


def test_a_preview_retyped_into_context_is_skipped_and_the_cell_runs_on_the_real_one(srv, tmp_path):
    # Qwen's first NIAH cell: the preview typed back in (omission marker and all), then a search of that copy.
    reply = ('```repl\nimport re\n\ncontext = """\nThe secret\n[... 30 characters omitted ...]\nKeep it safe.\n"""\n'
             'm = re.search(r"code is (\\d+)", context)\nprint(m.group(1))\n```')
    result = ask(srv, tmp_path, [reply, "FINAL_VAR(m.group(1))"])
    assert result.answer == "4721" and result.steps == 2  # FINAL_VAR(expression) reads like FINAL(expression)
    told = fed(srv)[0]
    assert "Output of cell 1:\n4721" in told
    assert "lines 3-7 of your cell assigned `context` something that is not the input, and did not run" in told
    assert "rebound" not in told
    [cell] = [e for e in result.run.events if e["type"] == "cell_started"]
    assert 'context = """' not in cell["code"] and "re.search" in cell["code"]  # the record shows what ran


def test_final_var_of_an_expression_in_code_answers_with_its_value(srv, tmp_path):
    reply = '```repl\nimport re\nm = re.search(r"code is (\\d+)", context)\nFINAL_VAR(m.group(1))\n```'
    assert ask(srv, tmp_path, [reply]).answer == "4721"


def test_final_var_of_a_misspelt_name_in_code_still_lists_the_variables(srv, tmp_path):
    result = ask(srv, tmp_path, ["```repl\nfound = 4721\nFINAL_VAR('fuond')\n```", "FINAL_VAR(found)"])
    assert result.answer == "4721" and "no variable named 'fuond'" in fed(srv)[0]


@pytest.mark.parametrize("marker", ["Output of cell 1:", "User: Output of cell 1:", "Assistant:", "**Output:**",
                                    "(then you are shown: Output of cell 1: 5)", "Next reply, all of it:",
                                    "Once its output (say 120 7) has come back, the next reply, all of it:"])
def test_every_way_small_models_start_the_next_turn_cuts_the_reply(marker):
    from rlm_kernel.engine.protocol.recognize import read_reply

    reading = read_reply(f"```repl\nprint(1)\n```\n{marker}\n```repl\nprint(2)\n```\nFINAL(3)")
    assert [c.source for c in reading.codes] == ["print(1)"] and reading.dropped_code == 1
    assert reading.final is not None and reading.final.value == "3"  # judged as an answer written next to code


QWEN_REPEAT = ("```repl\nprint(context['quiet-letter-57'])\n```\n\nThe output will be the access code stored under the "
               "key 'quiet-letter-57', which is:\n\nFinal_var('E715-5882')")


def test_a_quoted_final_var_is_a_value_and_counts_once_that_output_was_seen(srv, tmp_path):
    # Qwen's lookup: the same reply eight times, code plus Final_var('<the code>'). The first is written before
    # any output (set aside); the second repeats what the first cell printed, so it rests on seen output.
    result = ask(srv, tmp_path, [QWEN_REPEAT, QWEN_REPEAT, "FINAL(unused)"], context=CODES)
    assert result.answer == "E715-5882" and result.steps == 2
    told = fed(srv)[0]
    assert "set aside" in told and "no variable named" not in told


def test_a_short_or_unseen_answer_next_to_code_is_still_set_aside(srv, tmp_path):
    reply = "```repl\nprint(len(context))\n```\nFINAL(45)"  # "45" was never shown before this reply
    result = ask(srv, tmp_path, [reply, reply, "FINAL(done)"])
    assert result.answer == "done"  # "45" is two characters: seeing it once proves nothing
    assert all("set aside" in t for t in fed(srv)[:2])


def test_a_finished_reply_whose_last_block_was_never_closed_runs_it(srv, tmp_path):
    # Qwen's records reply ended with FINAL(total_amount) and no closing fence (stop_reason "stop", not the limit).
    reply = ("Let's write the code.\n\n```repl\nimport re\ntotal = sum(int(n) for n in re.findall(r'\\d+', context))\n"
             "FINAL(total)")
    result = ask(srv, tmp_path, [reply])
    assert result.answer == "4721" and result.answer_source == "code"


def test_a_block_cut_off_at_the_token_limit_still_does_not_run(srv, tmp_path):
    from rlm_kernel.testing import Reply

    cut = Reply("```repl\nimport re\ntotal = sum(int(n) for n in re.findall(r'\\d+', context))\nFINAL(tot",
                stop_reason="max_tokens")
    result = ask(srv, tmp_path, [cut, "FINAL(4721)"])
    assert result.answer == "4721" and result.steps == 2
    assert not [e for e in result.run.events if e["type"] == "cell_started"]


def test_the_context_description_retyped_as_code_is_skipped_and_the_rest_runs(srv, tmp_path):
    # Qwen's NIAH cell on the local model: the prompt's description of `context` typed in as an assignment,
    # which does not parse; before this, the whole cell failed and the next turns searched `str(12009)`.
    reply = ('```repl\nimport re\n\ncontext = str of 12,009 characters, 1 lines\n'
             'm = re.search(r"code is (\\d+)", context)\nprint(m.group(1))\n```')
    result = ask(srv, tmp_path, [reply, "FINAL(4721)"])
    told = fed(srv)[0]
    assert "Output of cell 1:\n4721" in told and "SyntaxError" not in told
    assert "line 3 of your cell assigned `context` something that is not the input" in told
    assert result.answer == "4721"


def test_the_same_failing_reply_again_is_named_although_each_traceback_names_a_new_cell(srv, tmp_path):
    # Qwen at temperature 0 sent this reply eight times; each traceback said <rlm-cell-N> with a new N, so
    # the repeat went unnoticed and the forced last answer came back as the text "FINAL_VAR(special_magic_number)".
    reply = ("```repl\nimport re\nmatch = re.search(r'golden-mirror', context)\nif match:\n"
             "    special_magic_number = int(match.group())\n    print(special_magic_number)\n```\n"
             "Once its output has come back, the next reply:\nFINAL_VAR(special_magic_number)")
    result = ask(srv, tmp_path, [reply] * 3 + ["FINAL_VAR(special_magic_number)"], max_iterations=3,
                 context="the golden-mirror number is 4721")
    second = fed(srv)[1]
    assert "same reply as in your previous step" in second and "raised the same error as before" in second
    assert "ValueError" in second and "printed the same output" not in second
    assert result.status == "budget" and result.answer == ""  # not the directive's text


# --- what Qwen2.5-Coder-1.5B wrote with the example turns (benchmarks/results/eval_local/fences-v5) ----

def test_a_variable_like_final_that_names_nothing_is_refused_with_the_printed_value(srv, tmp_path):
    # Lookup seed 0: it printed the right code, answered FINAL_VAR(access_code) (no such variable), was
    # told so, then wrote FINAL(access_code) and the run answered the text "access_code", status done.
    replies = ["```repl\nprint(context['quiet-letter-57'])\n```", "FINAL_VAR(access_code)", "FINAL(access_code)",
               "FINAL(E715-5882)"]
    result = ask(srv, tmp_path, replies, context=CODES)
    assert (result.status, result.answer, result.steps) == ("done", "E715-5882", 4)
    told = fed(srv)
    assert "no variable named 'access_code'" in told[1]
    assert "If that is the answer, write FINAL(E715-5882) on a line of its own" in told[1]
    assert "`access_code` reads like a variable's name" in told[2] and 'FINAL("access_code")' in told[2]
    assert "there is no variable named 'access_code'" in told[2] and "FINAL(E715-5882)" in told[2]


def test_a_quoted_variable_like_final_is_its_text(srv, tmp_path):
    result = ask(srv, tmp_path, ["```repl\nprint(len(context))\n```", 'FINAL("access_code")'])
    assert result.answer == "access_code"


def test_a_variable_like_final_at_the_step_limit_is_still_an_answer(srv, tmp_path):
    """The forced last answer never refuses: the literal text is better than none."""
    result = ask(srv, tmp_path, ["```repl\nprint(len(context))\n```", "FINAL(access_code)", "FINAL(access_code)"],
                 max_iterations=2)
    assert result.status == "budget" and result.answer == "access_code"


NEEDLE_TEXT = " ".join(["The quiet harbor waits for the tide."] * 150 + ["The special magic number for quiet-engine is "
                        "1028866."] + ["The vivid tower crosses the bridge."] * 150)


def test_an_answer_before_any_code_ran_is_set_aside_when_the_preview_was_partial(srv, tmp_path):
    # Niah seed 0 (eval_local/fences-turns/second-run): no code at all, then an expression that evaluated to
    # the input's length, which the run took as the answer ("12009"), status done.
    replies = ["FINAL_VAR(special_magic_number)", "The special magic number for quiet-engine is 23.",
               "FINAL_VAR(len(context))",
               "```repl\ni = context.find('quiet-engine')\nprint(context[i - 50:i + 60])\n```", "FINAL(1028866)"]
    result = ask(srv, tmp_path, replies, context=NEEDLE_TEXT)
    assert (result.status, result.answer, result.steps) == ("done", "1028866", 5)
    told = fed(srv)
    assert "FINAL_VAR(special_magic_number) was set aside: no code has run yet" in told[0]
    assert "FINAL_VAR(len(context)) was set aside: no code has run yet" in told[2]
    assert "the preview showed only part of `context`" in told[2]


def test_a_guess_on_step_one_is_set_aside_but_not_when_the_preview_showed_everything(srv, tmp_path):
    # A recorded Sonnet 4.5 run answered "not mentioned" on step 1 while the context held the fact.
    long = NEEDLE_TEXT.replace("quiet-engine is 1028866", "access code is 4721")
    result = ask(srv, tmp_path, ["FINAL(The access code is not mentioned.)",
                                 "```repl\nprint(context[context.find('access code'):][:30])\n```", "FINAL(4721)"],
                 context=long)
    assert result.answer == "4721" and result.steps == 3 and "rests on nothing you have seen" in fed(srv)[0]
    srv.reset()
    whole = ask(srv, tmp_path, ["FINAL(4721)"])  # the short SECRET: its preview is the whole input
    assert (whole.answer, whole.steps) == ("4721", 1)


def test_at_the_step_limit_an_unseen_answer_is_still_taken(srv, tmp_path):
    result = ask(srv, tmp_path, ["FINAL(a guess)", "FINAL(a guess)"], context=NEEDLE_TEXT, max_iterations=1)
    assert (result.status, result.answer) == ("budget", "a guess")
    srv.reset()  # an expression is still evaluated there, not answered as its source text
    value = ask(srv, tmp_path, ["FINAL(len(context))", "FINAL(len(context))"], context=NEEDLE_TEXT,
                max_iterations=1)
    assert (value.status, value.answer) == ("budget", str(len(NEEDLE_TEXT)))


# --- the compact prompt holds an answer next to code until its output was seen (fences-v7) ----------

QWEN_COUNT = ("```repl\nlines = context.splitlines()\ncount = sum(\"quiet-engine\" in line.lower() for line in lines)\n"
              "print(count)\n```\nOnce its output (say 0) has come back, the next reply, all of it:\nFINAL_VAR(count)")


def test_with_the_compact_prompt_a_final_var_next_to_its_code_waits_for_the_output(srv, tmp_path):
    # Niah, both seeds: the counting example copied with its FINAL_VAR(count); the run answered "1".
    replies = [QWEN_COUNT, "```repl\ni = context.find('quiet-engine')\nprint(context[i - 50:i + 60])\n```",
               "FINAL(1028866)"]
    result = ask(srv, tmp_path, replies, context=NEEDLE_TEXT, prompt="compact")
    assert (result.status, result.answer, result.steps) == ("done", "1028866", 3)
    told = fed(srv)[0]
    assert told.startswith("Output of cell 1:\n1")
    assert "FINAL_VAR(count) was set aside: it came in the same reply as the code" in told
    assert "It would answer '1'" in told and "(What is the secret access code?)" in told


def test_with_the_compact_prompt_the_held_answer_counts_in_a_reply_of_its_own(srv, tmp_path):
    result = ask(srv, tmp_path, [QWEN_COUNT, "FINAL_VAR(count)"], context=NEEDLE_TEXT, prompt="compact")
    assert (result.answer, result.steps) == ("1", 2)
    srv.reset()
    evaluated = ask(srv, tmp_path, ["```repl\nwords = context.split()\n```\nFINAL(len(words))", "FINAL(len(words))"],
                    prompt="compact")
    assert (evaluated.answer, evaluated.steps) == ("9", 2) and "set aside" in fed(srv)[0]


def test_with_the_full_prompt_a_final_var_next_to_clean_code_still_ends_the_run(srv, tmp_path):
    result = ask(srv, tmp_path, [QWEN_COUNT], context=NEEDLE_TEXT, prompt="full")
    assert (result.answer, result.steps) == ("1", 1)


def test_a_held_answer_whose_value_was_already_shown_is_taken(srv, tmp_path):
    replies = ["```repl\nprint(context.split()[5])\n```", "```repl\nfound = context.split()[5].rstrip('.')\n```\n"
               "FINAL_VAR(found)"]
    result = ask(srv, tmp_path, replies, prompt="compact")
    assert (result.answer, result.steps) == ("4721", 2)


def test_printed_prose_is_never_offered_as_the_answer(srv, tmp_path):
    # Niah seed 0 (fences-v8, before this rule): it printed context[:100], was offered FINAL(<that prose>) after
    # a FINAL_VAR of a variable it never made, and answered with it.
    replies = ["```repl\nprint(context[:100])\n```\nFINAL_VAR(preview)", "FINAL(1028866)"]
    result = ask(srv, tmp_path, replies, context=NEEDLE_TEXT)
    told = fed(srv)[0]
    assert "no variable named 'preview'" in told and "Your last cell (cell 1) showed: The quiet harbor" in told
    assert "If that is the answer" not in told and result.answer == "1028866"
