"""Helpers that models trained on the RLM authors' prompt expect to find in the REPL, and the
listing of a REPL's own variables that SHOW_VARS and the FINAL_VAR errors share.

`SHOW_VARS()` lists the variables the code made, with their types; `context_0` is `context`
under the name the official prompt uses for the first input; `rlm_query_batched(prompts,
contexts=None)` runs one child RLM per prompt, several at once, inside the run's budgets."""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

#: Names a REPL holds that nobody made on purpose (executors, IPython).
_PLUMBING = frozenset({"display", "In", "Out", "get_ipython", "exit", "quit", "open"})


def user_variables(namespace: dict[str, Any], helpers: Iterable[str]) -> list[str]:
    """The variables made by code in this REPL: no helpers, modules, functions' plumbing or _names."""
    skip = set(helpers) | _PLUMBING
    return [name for name, value in namespace.items()
            if not name.startswith("_") and name not in skip and not isinstance(value, types.ModuleType)]


def describe(value: Any) -> str:
    """`list, 19 items` / `str, 1,234 chars` / `int`: a type with its size where it has one."""
    kind = type(value).__name__
    if isinstance(value, str | bytes):
        return f"{kind}, {len(value):,} chars"
    try:
        return f"{kind}, {len(value):,} items"
    except TypeError:
        return kind


class VarList(str):
    """A listing that reads the same printed or shown as a cell's last value."""

    def __repr__(self) -> str:
        return str(self)


def show_vars(namespace: dict[str, Any], helpers: Iterable[str]) -> VarList:
    names = user_variables(namespace, helpers)
    if not names:
        return VarList("No variables yet (besides `context` and the helpers).")
    return VarList("Variables: " + "; ".join(f"{n} ({describe(namespace[n])})" for n in names))


def existing_variables(namespace: dict[str, Any], helpers: Iterable[str]) -> str:
    """A sentence naming the variables the model made (for messages about a name that is not one)."""
    names = user_variables(namespace, helpers)
    return f"The variables that exist: {', '.join(names)}." if names else "No variables have been made yet."


def missing_variable(name: str, namespace: dict[str, Any], helpers: Iterable[str]) -> str:
    return (f"FINAL_VAR({name!r}): there is no variable named {name!r}. {existing_variables(namespace, helpers)} "
            "Assign the answer to a variable in code first, then answer with it.")


def run_children(ask: Callable[[str, Any], str], prompts: Sequence[Any], contexts: Sequence[Any] | None,
                 workers: int) -> list[str]:
    """`ask(prompt, context)` for each pair on up to `workers` threads, answers in input order; a
    child that fails gives "Error: ..." in its slot, as a failed llm_query_batched prompt does."""
    prompts = [str(p) for p in prompts]
    if contexts is not None and len(contexts) != len(prompts):
        raise ValueError(f"rlm_query_batched: {len(prompts)} prompts but {len(contexts)} contexts; "
                         "pass one context per prompt (or none)")
    pairs = list(zip(prompts, contexts if contexts is not None else [None] * len(prompts), strict=True))

    def one(pair: tuple[str, Any]) -> str:
        try:
            return ask(*pair)
        except Exception as exc:  # the budget's own exception too: the slot says why
            return f"Error: {exc}"

    if not pairs:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(pairs))), thread_name_prefix="rlm-batch") as pool:
        return list(pool.map(one, pairs))
