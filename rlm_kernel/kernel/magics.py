"""`%%rlm` (ask a question) and `%rlm config|runs|show|resume|export|replay`.

`%%rlm` and `%rlm resume` return coroutines; transform.py rewrites those cells to await them, so
the run is a coroutine on the kernel's event loop and widget messages get handled while it waits
for the model. Everything a person can get wrong before a run starts (no key, no context, a bad
option) ends the cell with one line and no traceback."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shlex
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.display import Markdown, display

from ..engine import events as ev
from ..engine.api import ConfigError, aresume, arun, rlm
from ..engine.context import NO_CONTEXT, ContextError
from ..engine.options import OptionError, RLMOptions
from ..engine.outcome import RLMResult
from ..engine.record import RunLog, list_runs
from ..engine.steering import Steering
from . import transform
from .config import OPTION_HELP, OPTION_TYPES, ConfigValueError, Defaults, RLMSettings, describe, parse_value
from .executor import ShellExecutor
from .interrupt import InterruptRouter
from .runs import RESUMABLE, RunNotFound, find_run, run_markdown, runs_table
from .subshell import route_to_subshell

LINE_USAGE = """\
%rlm config [option=value ...] [--reset]   show or set this session's defaults
%rlm runs                                  list recorded runs with their status
%rlm show [RUN]                            display a run again from its log
%rlm ask [--option value ...] QUESTION     ask in one line; {expr} and $name expand (papermill parameters)
%rlm resume [RUN] [--option value ...]     continue a stopped, interrupted or crashed run
%rlm export PATH [RUN]                     write a run as a replayable notebook
  (--trust on resume/export: load a context that another process saved as a pickle; it can run code)
%rlm replay LOG [--live]                   answer sub-calls from a recorded run (exported notebooks)
RUN is a run id, a unique prefix of one, or a log path; without it, the latest run."""


class RunInterrupted(Exception):
    """The run's task ended by an interrupt; an ordinary exception so it can leave an asyncio task."""


class RunFailed(Exception):
    """The run ended with status "failed" (model unreachable, bad key, ...). The cell fails, so Run All,
    nbclient and papermill stop there; a budget or user stop is a result instead. `.result` holds it."""

    def __init__(self, result: RLMResult) -> None:
        self.result = result
        reason = " ".join(str(result.reason or "no reason recorded").split())
        reason = reason if len(reason) <= 300 else reason[:299] + "…"
        super().__init__(f"Run {result.run_id} failed: {reason} (`%rlm show` for the run; `%rlm resume` "
                         "retries it from its last finished step)")


def one_line(exc: BaseException, text: str) -> BaseException:
    """Make IPython show `exc` as just `text` (its `_render_traceback_` protocol): the cell still
    fails, so "run all" stops there, but nobody has to read a traceback to learn what to do."""
    exc._render_traceback_ = lambda: [text]  # type: ignore[attr-defined]
    return exc


class _ArgParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise _HelpShown()


class _HelpShown(Exception):
    pass


def _split(line: str, prog: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:  # an unclosed quote
        raise UsageError(f"{prog}: {exc}") from None


def _typed(option: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return parse_value(option, text)
        except ConfigValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _add_option_flags(p: argparse.ArgumentParser) -> None:
    for name, kind in OPTION_TYPES.items():
        if kind is dict:
            continue
        flag = "--" + name.replace("_", "-")
        if kind is bool:
            p.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None,
                           help=OPTION_HELP[name])
        else:
            p.add_argument(flag, dest=name, type=_typed(name), default=None, metavar=kind.__name__.upper(),
                           help=OPTION_HELP[name])


def cell_parser() -> _ArgParser:
    p = _ArgParser(prog="%%rlm", description="Ask the question in the cell body about a variable.")
    p.add_argument("--context", default="context", metavar="NAME",
                   help="the variable holding the input (default: context)")
    p.add_argument("--continue", dest="continue_", action="store_true",
                   help="a follow-up to this session's last run: the model is told its question, answer and "
                        "code, and its variables are still here")
    _add_option_flags(p)
    return p


TRUST_HELP = "load the run's context even if another process saved it as a pickle (loading a pickle runs its code)"


def resume_parser() -> _ArgParser:
    p = _ArgParser(prog="%rlm resume", description="Continue a stopped or crashed run.")
    p.add_argument("run", nargs="?", default=None)
    p.add_argument("--trust", action="store_true", help=TRUST_HELP)
    _add_option_flags(p)
    return p


def split_ask_line(rest: str) -> tuple[str, str]:
    """Split `%rlm ask` arguments into the option flags and the question, which is everything after the
    last flag (and its value) or after `--`; the question is kept as typed (no shell quoting rules, so
    "What's new?" works)."""
    flags = {a for action in cell_parser()._actions for a in action.option_strings}
    takes_value = {a for action in cell_parser()._actions if action.nargs != 0 and action.option_strings
                   for a in action.option_strings}
    pos, text = 0, rest
    while True:
        m = re.match(r"\s*(\S+)", text[pos:])
        if m is None:
            return text[:pos].strip(), ""
        token = m.group(1)
        name = token.split("=", 1)[0]
        if token == "--":
            return text[:pos].strip(), text[pos + m.end():].strip()
        if name not in flags:
            return text[:pos].strip(), text[pos:].strip()
        pos += m.end()
        if name in takes_value and "=" not in token:
            v = re.match(r"\s*(\S+)", text[pos:])
            pos += v.end() if v else 0


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name) for name in OPTION_TYPES
            if getattr(args, name, None) is not None}


class _Tracker:
    """Subscriber that remembers which run is going and how far it got, for the one-line messages."""

    def __init__(self) -> None:
        self.run_id: str | None = None
        self.step = 0

    def __call__(self, event: ev.Event) -> None:
        root_event = event["type"] in (ev.RUN_STARTED, ev.RUN_RESUMED) and not event.get("parent_run_id")
        if self.run_id is None and root_event:
            self.run_id = event["run_id"]
        if event["run_id"] == self.run_id and isinstance(event.get("step"), int):
            self.step = max(self.step, event["step"])


class _LazyView:
    """Creates and shows the run's widget at the run's first event, so a run that never starts
    (no key, bad context) leaves no empty view behind. Without the widget room, shows nothing."""

    def __init__(self, shell: Any, steering: Steering, question: str, options: RLMOptions,
                 preload: Sequence[ev.Event] = ()) -> None:
        self.shell, self.steering, self.question, self.options = shell, steering, question, options
        self.preload = preload
        self.view: Any = None
        self._tried = False

    def __call__(self, event: ev.Event) -> None:
        if not self._tried:
            self._tried = True  # the first event comes from the kernel thread: safe to display here
            view_class = _view_class(self.shell)
            if view_class is not None:
                self.view = view_class(self.steering, self.question, self.options)
                # its clicks must reach the run while a generated cell holds the main shell
                view = self.view
                route_to_subshell(view.comm, getattr(self.shell, "kernel", None),
                                  blocked=lambda: view.cell_running)
                self.view.load(self.preload)
                display(self.view)
        if self.view is not None:
            self.view.on_event(event)

    def finish(self, result: Any) -> None:
        if self.view is not None:
            self.view.finish(result)

    def stream(self, name: str, text: str) -> None:
        """A running generated cell printed: the tree shows it live."""
        if self.view is not None:
            self.view.stream(name, text)


def _view_class(shell: Any) -> Any:
    """RunView when this is a kernel with comms and the widget room is importable, else None."""
    if getattr(shell, "kernel", None) is None:
        return None
    try:
        from ..widget.view import RunView
    except ImportError:  # a broken install
        return None
    return RunView


@magics_class
class RLMMagics(Magics):
    def __init__(self, shell: Any, defaults: Defaults) -> None:
        super().__init__(shell)
        self.defaults = defaults
        #: This session's latest run log; the default for show/resume/export.
        self.last_log: Path | None = None
        #: This session's latest finished run, what `%%rlm --continue` follows up.
        self.last_result: RLMResult | None = None
        #: The run view of `last_result`, told when a follow-up continues it.
        self.last_view: Any = None
        #: Runs started in this process: resuming them needs no namespace rebuild.
        self.session_runs: set[str] = set()

    # --- %%rlm ---------------------------------------------------------------------------------
    @cell_magic("rlm")
    def rlm_cell(self, line: str, cell: str) -> Awaitable[RLMResult | None]:
        """Ask the question in the cell body about `context` (or --context NAME) with an RLM.

        The generated code runs here, in this namespace; the cell's value is the result
        (`_.answer`). Options: %%rlm --help. Defaults: %rlm config."""
        self._need_autoawait("%%rlm")
        return self.ask(line, cell)

    async def ask(self, line: str, question: str) -> RLMResult | None:
        try:
            args = cell_parser().parse_args(_split(line, "%%rlm"))
        except _HelpShown:
            return None
        options = self._options(_overrides(args))
        name = args.context
        if name not in self.shell.user_ns:
            message = NO_CONTEXT if name == "context" else (
                f"There is no variable named {name!r} to use as the context: define it first, "
                f"or name another one with --context NAME.")
            raise one_line(ContextError(message), message)
        context = self.shell.user_ns[name]
        previous, earlier_view = None, None
        if args.continue_:
            earlier_view = self.last_view
            previous = self.last_result
            if previous is None:
                raise UsageError("%%rlm --continue: there is no earlier run in this session to follow up; "
                                 "ask with %%rlm first")
        steering = Steering(approve=options.approve)
        view = _LazyView(self.shell, steering, question.strip(), options)
        # with the run tree on screen, generated outputs show there, once, not flattened below it
        executor = ShellExecutor(self.shell, quiet=_view_class(self.shell) is not None)
        executor.on_stream = view.stream

        def continued(event: ev.Event) -> None:  # the earlier run's tree notes the follow-up
            if event["type"] == ev.RUN_STARTED and event.get("continues") and not event.get("parent_run_id"):
                earlier_view.mark_continued(event)

        def start(subscribers: list[Any]) -> Awaitable[RLMResult]:
            extra = [continued] if earlier_view is not None else []
            return arun(question, context, options=options, executor=executor, steering=steering,
                        subscribers=[*subscribers, *extra], continue_from=previous)

        return await self._drive(start, executor, steering, view, options.resolved_runs_dir())

    # --- %rlm -------------------------------------------------------------------------------------
    @line_magic("rlm")
    def rlm_line(self, line: str) -> Any:
        """%rlm config | runs | show | resume | export | replay (%rlm help for details)."""
        sub, _, rest = line.strip().partition(" ")
        handlers: dict[str, Callable[[str], Any]] = {
            "config": self.do_config, "runs": self.do_runs, "show": self.do_show, "resume": self.do_resume,
            "ask": self.do_ask,
            "export": self.do_export, "replay": self.do_replay,
        }
        if sub in ("", "help", "-h", "--help"):
            print(LINE_USAGE)
            return None
        if sub not in handlers:
            raise UsageError(f"%rlm: unknown command {sub!r}\n{LINE_USAGE}")
        return handlers[sub](rest)

    def do_config(self, rest: str) -> None:
        tokens = _split(rest, "%rlm config")
        for token in tokens:
            if token == "--reset":
                self.defaults.session.clear()
                continue
            key, eq, value = token.partition("=")
            if not eq:
                raise UsageError(f"%rlm config: expected option=value, got {token!r}")
            try:
                self.defaults.set(key, value)
            except ConfigValueError as exc:
                raise UsageError(f"%rlm config: {exc}") from None
        try:
            print(describe(self.defaults))
        except ConfigValueError as exc:
            raise UsageError(str(exc)) from None

    def do_runs(self, rest: str) -> None:
        runs_dir = self._runs_dir()
        print(runs_table(list_runs(runs_dir), runs_dir))

    def do_show(self, rest: str) -> None:
        log = self._find(rest.strip() or None)
        view_class = _view_class(self.shell)
        display(Markdown(run_markdown(log)) if view_class is None else view_class.from_log(log))

    def do_ask(self, rest: str) -> Awaitable[RLMResult | None]:
        """`%rlm ask [options] QUESTION`: the line form of %%rlm. IPython expands `{expr}` and `$name` in a
        line magic (not in a cell magic's body), so a papermill parameter can carry the question."""
        self._need_autoawait("%rlm ask")
        options, question = split_ask_line(rest)
        if not question.strip():
            raise UsageError("%rlm ask: no question: %rlm ask [--option value ...] QUESTION "
                             "(for example %rlm ask {question} with a question variable)")
        return self.ask(options, question)

    def do_resume(self, rest: str) -> Awaitable[RLMResult | None]:
        self._need_autoawait("%rlm resume")
        return self.resume(rest)

    async def resume(self, rest: str) -> RLMResult | None:
        try:
            args = resume_parser().parse_args(_split(rest, "%rlm resume"))
        except _HelpShown:
            return None
        overrides = _overrides(args)
        log = self._find(args.run, want=lambda g: g.status in RESUMABLE, what="stopped or crashed run to resume")
        if log.status not in RESUMABLE:
            raise UsageError(f"run {log.root_run_id} is {log.status}: only stopped, crashed, failed or "
                             f"over-budget runs can be resumed")
        started = log.started() or {}
        rebuild = log.root_run_id not in self.session_runs
        # A rebuild re-runs the finished cells silently; outputs show again from the first new step
        # (in the tree when there is one, else in the cell's output).
        tree = _view_class(self.shell) is not None
        executor = ShellExecutor(self.shell, quiet=rebuild or tree)
        options = RLMOptions.from_recorded(started.get("options")).merged(**overrides)
        steering = Steering(approve=options.approve)
        view = _LazyView(self.shell, steering, str(started.get("question", "")), options, preload=log.events)
        executor.on_stream = view.stream

        def unquiet(event: ev.Event) -> None:
            if event["type"] == ev.RUN_RESUMED:
                executor.quiet = tree

        def start(subscribers: list[Any]) -> Awaitable[RLMResult]:
            return aresume(log, executor=executor, steering=steering, subscribers=[unquiet, *subscribers],
                           rebuild_namespace=rebuild, trust=args.trust, **overrides)

        return await self._drive(start, executor, steering, view, log.path.parent)

    def do_export(self, rest: str) -> Path:
        parts = _split(rest, "%rlm export")
        trust = "--trust" in parts
        parts = [p for p in parts if p != "--trust"]
        if not parts or len(parts) > 2:
            raise UsageError("usage: %rlm export PATH [RUN] [--trust]")
        log = self._find(parts[1] if len(parts) > 1 else None)
        from ..export.notebook import export_run

        target = Path(parts[0]).expanduser()
        try:
            if parts[0].endswith(("/", os.sep)):
                target.mkdir(parents=True, exist_ok=True)  # "dir/" means a folder, even a new one
            written = Path(export_run(log, target, trust=trust))
        except OSError as exc:
            raise one_line(exc, f"could not write the notebook: {exc}") from None
        import nbformat

        meta = nbformat.read(written, as_version=4).metadata.get("rlm", {})
        files = meta.get("files", [])
        print(f"Exported run {log.root_run_id} ({log.status}) to {written}; to share it, copy "
              f"{' and '.join(files)} along with it.")
        for missing in meta.get("missing_logs", []):
            print(f"Warning: {missing}.")
        return written

    def do_replay(self, rest: str) -> Any:
        p = _ArgParser(prog="%rlm replay", description="Answer sub-calls from a recorded run.")
        p.add_argument("log")
        p.add_argument("--live", action="store_true", help="call live models instead of the recording")
        try:
            args = p.parse_args(_split(rest, "%rlm replay"))
        except _HelpShown:
            return None
        from ..export.replay import install_replay

        try:
            print(install_replay(self.shell, Path(args.log).expanduser(), live=args.live))
        except (FileNotFoundError, ValueError) as exc:  # ConfigError (live, no key) is a ValueError
            raise one_line(exc, str(exc)) from None
        return None

    # --- running ------------------------------------------------------------------------------
    async def _drive(self, start: Callable[[list[Any]], Awaitable[RLMResult]], executor: ShellExecutor,
                     steering: Steering, view: _LazyView, runs_dir: Path) -> RLMResult:
        """Run one start()/resume as its own task with interrupts routed to it, and turn every way
        it can end into either a result or one line. `runs_dir` is where the run logs."""
        tracker = _Tracker()
        task = asyncio.ensure_future(_contained(start([tracker, view])))
        router = InterruptRouter(task, executor)
        try:
            with router.installed():
                result = await task
        except BaseException as exc:
            steering.stop()  # child runs on their own threads end at their next check
            view.finish(None)
            self._remember(tracker.run_id, runs_dir)
            raise self._explain(exc, tracker) from None
        view.finish(result)
        result.answer_shown = view.view is not None
        self._remember(result.run_id, runs_dir, result.log_path)
        self.last_result = result
        self.last_view = view.view
        if result.status == "failed":
            failed = RunFailed(result)
            raise one_line(failed, f"RunFailed: {failed}")
        if result.value is not result.answer:  # FINAL_VAR(df): the object itself, shown as it shows anywhere
            display(result.value)
        return result

    @staticmethod
    def _explain(exc: BaseException, tracker: _Tracker) -> BaseException:
        """The exception to end the cell with: one line for interrupts and set-up problems."""
        if isinstance(exc, RunInterrupted):
            where = f" at step {tracker.step}" if tracker.step else ""
            text = (f"Run {tracker.run_id} stopped (interrupted){where}. `%rlm resume` continues it."
                    if tracker.run_id else "Run interrupted before it started.")
            return one_line(KeyboardInterrupt(), text)
        if isinstance(exc, ConfigError | ContextError | ConfigValueError | OptionError):
            return one_line(exc, str(exc))
        if isinstance(exc, ValueError | FileNotFoundError) and tracker.run_id is None:
            return one_line(exc, str(exc))  # e.g. an empty question, a missing context snapshot
        return exc  # a real failure during the run deserves its traceback

    def _remember(self, run_id: str | None, runs_dir: Path, log_path: Path | None = None) -> None:
        if run_id is None:
            return
        self.session_runs.add(run_id)
        self.last_log = Path(log_path) if log_path else runs_dir / f"{run_id}.jsonl"

    def _options(self, overrides: dict[str, Any]) -> RLMOptions:
        try:
            return self.defaults.options(**overrides)
        except (ConfigValueError, OptionError) as exc:
            raise one_line(exc, str(exc)) from None

    def _runs_dir(self) -> Path:
        return self._options({}).resolved_runs_dir()

    def _find(self, ref: str | None, **kwargs: Any) -> RunLog:
        try:
            return find_run(ref, self._runs_dir(), latest=self.last_log, **kwargs)
        except RunNotFound as exc:
            raise UsageError(str(exc)) from None

    def _need_autoawait(self, what: str) -> None:
        if not getattr(self.shell, "autoawait", False):
            raise UsageError(f"{what} runs as a coroutine on the event loop: turn `%autoawait on` first")


async def _contained(run: Awaitable[RLMResult]) -> RLMResult:
    """KeyboardInterrupt must not leave an asyncio task (the loop would re-raise it and stop the
    kernel), and a cancelled run is a result for the cell, not a cancelled cell."""
    try:
        return await run
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise RunInterrupted() from None


def register(shell: Any, settings: RLMSettings | None = None) -> RLMMagics:
    """Give a shell `%%rlm`/`%rlm`, the coroutine-cell transform and `rlm` in its namespace."""
    magics = RLMMagics(shell, Defaults(settings=settings))
    shell.register_magics(magics)
    transform.install(shell)
    shell.push({"rlm": rlm}, interactive=False)
    return magics
