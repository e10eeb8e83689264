"""Where a `%%rlm` cell's defaults come from, in increasing priority:

1. traitlets config, `c.RLMKernel.<option>` in the usual config files (ipython_kernel_config.py,
   rlm_kernel_config.py in the IPython profile or a Jupyter config directory);
2. environment variables `RLM_<OPTION>` (RLM_MODEL, RLM_MAX_ITERATIONS, ...);
3. `%rlm config option=value` for the rest of the kernel session;

and then the options written on the `%%rlm` line itself. API keys are never configured here: the
engine reads them from the environment, so no key sits in a config file, a notebook or a record."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

from traitlets import Bool, Dict, Float, Int, TraitType, Unicode
from traitlets.config import Configurable

from ..engine.options import OptionError, RLMOptions, check_option, range_text

SECRET_OPTIONS = frozenset({"api_key"})


def _value_type(annotation: Any) -> type:
    """The type a setting holds: `int | None` -> int, `dict[str, ...] | None` -> dict."""
    if get_origin(annotation) in (Union, UnionType):
        (annotation,) = [a for a in get_args(annotation) if a is not type(None)]
    return get_origin(annotation) or annotation


_HINTS = get_type_hints(RLMOptions)
#: Options that can be set as defaults, with their value type: every RLMOptions field but the key.
OPTION_TYPES: dict[str, type] = {f.name: _value_type(_HINTS[f.name]) for f in fields(RLMOptions)
                                 if f.name not in SECRET_OPTIONS}


class ConfigValueError(ValueError):
    """A default could not be read (bad env var or `%rlm config` value); the message names it."""


def env_name(option: str) -> str:
    return "RLM_" + option.upper()


def parse_value(option: str, text: str) -> Any:
    """Turn the text of an env var or `%rlm config` value into the option's type, within its range."""
    value = _convert(option, text)
    _check(option, value)
    return value


def _check(option: str, value: Any, where: str = "") -> None:
    try:
        check_option(option, value)
    except OptionError as exc:
        raise ConfigValueError(f"{where}{exc}") from None


def _convert(option: str, text: str) -> Any:
    kind = OPTION_TYPES.get(option)
    if kind is None:
        known = ", ".join(OPTION_TYPES)
        raise ConfigValueError(f"unknown RLM option {option!r}; known: {known}")
    text = text.strip()
    try:
        if kind is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if kind is int:
            return int(text.replace("_", "").replace(",", ""))
        if kind is float:
            return float(text.replace("_", ""))
        if kind is dict:
            value = json.loads(text)
            if not isinstance(value, dict):
                raise ValueError(text)
            return value
        return text
    except ValueError:
        article = {bool: "true/false", int: "an integer", float: "a number", dict: "a JSON object"}[kind]
        raise ConfigValueError(f"{option} must be {article}, got {text!r}") from None


#: The help text of each option, written once on RLMOptions' fields.
def _help(name: str, text: str) -> str:
    """The field's help, and its allowed values when it is a number (unset meaning no limit here)."""
    allowed = range_text(name)
    return f"{text} Allowed: {allowed.replace('(or None for no limit)', '(unset: no limit)')}." if allowed else text


OPTION_HELP: dict[str, str] = {f.name: _help(f.name, f.metadata.get("help", "")) for f in fields(RLMOptions)
                               if f.name in OPTION_TYPES}

_TRAIT_TYPES: dict[type, type[TraitType[Any, Any]]] = {str: Unicode, int: Int, float: Float, bool: Bool, dict: Dict}


def _option_traits() -> dict[str, TraitType[Any, Any]]:
    """One configurable trait per option, None meaning "not set here"."""
    return {name: _TRAIT_TYPES[kind](None, allow_none=True, help=OPTION_HELP.get(name, "")).tag(config=True)
            for name, kind in OPTION_TYPES.items()}


class RLMSettings(Configurable):
    """RLM defaults as traitlets config. Mixed into RLMKernel, so they are set as `c.RLMKernel.model`.

    None means "not set here": the next layer (or the engine's own default) decides."""

    vars().update(_option_traits())  # the class namespace: traitlets picks the traits up from it

    def configured_options(self) -> dict[str, Any]:
        """The options set through traitlets config (not None)."""
        return {name: getattr(self, name) for name in OPTION_TYPES if getattr(self, name) is not None}


@dataclass
class Defaults:
    """The layered defaults of one kernel session; `%rlm config` edits `session`."""

    settings: RLMSettings | None = None
    session: dict[str, Any] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)

    def layers(self) -> list[tuple[str, Callable[[], dict[str, Any]]]]:
        return [("config", self._from_config), ("env", self._from_env), ("session", lambda: dict(self.session))]

    def resolve(self) -> dict[str, tuple[Any, str]]:
        """{option: (value, where it came from)} for every option some layer sets."""
        out: dict[str, tuple[Any, str]] = {}
        for source, read in self.layers():
            for name, value in read().items():
                out[name] = (value, source)
        return out

    def options(self, **cell_overrides: Any) -> RLMOptions:
        values = {name: value for name, (value, _) in self.resolve().items()}
        values.update({k: v for k, v in cell_overrides.items() if v is not None})
        return RLMOptions().merged(**values)

    def set(self, option: str, text: str) -> None:
        """`%rlm config option=value`; an empty value drops the session setting."""
        option = option.strip().replace("-", "_")
        if option in SECRET_OPTIONS:
            raise ConfigValueError(f"{option} is not set here: export ANTHROPIC_API_KEY in the environment "
                                   "the kernel starts from, so the key never lands in a notebook")
        if not text.strip():
            if option not in OPTION_TYPES:
                parse_value(option, "")  # raises the unknown-option message
            self.session.pop(option, None)
            return
        self.session[option] = parse_value(option, text)

    def _from_config(self) -> dict[str, Any]:
        values = self.settings.configured_options() if self.settings is not None else {}
        for name, value in values.items():
            _check(name, value, where=f"c.RLMKernel.{name} = {value!r} in the config file: ")
        return values

    def _from_env(self) -> dict[str, Any]:
        out = {}
        for name in OPTION_TYPES:
            raw = self.environ.get(env_name(name))
            if raw is not None and raw.strip():
                try:
                    out[name] = parse_value(name, raw)
                except ConfigValueError as exc:
                    raise ConfigValueError(f"environment variable {env_name(name)}={raw}: {exc}") from None
        return out


def describe(defaults: Defaults) -> str:
    """The text `%rlm config` prints: every option, its effective value and where it came from."""
    resolved = defaults.resolve()
    base = RLMOptions()
    rows = []
    for name in OPTION_TYPES:
        if name in resolved:
            value, source = resolved[name]
        else:
            value, source = getattr(base, name), "default"
        rows.append((name, "-" if value is None else _show(value), source))
    width = max(len(r[0]) for r in rows)
    vwidth = min(40, max(len(r[1]) for r in rows))
    lines = [f"{name:<{width}}  {value:<{vwidth}}  {source}" for name, value, source in rows]
    lines.append("")
    lines.append(f"API key: {_key_status(defaults.environ)}")
    lines.append("Set for this session: %rlm config option=value (empty value to unset). "
                 "Sources: config (c.RLMKernel.*) < env (RLM_*) < session < %%rlm options.")
    return "\n".join(lines)


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, dict) else str(value)


def _key_status(environ: Mapping[str, str]) -> str:
    """Whether a key is available, without ever showing it."""
    for var in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "RLM_OPENAI_API_KEY", "OPENAI_API_KEY"):
        if environ.get(var):
            return f"{var} is set"
    return "none set (export ANTHROPIC_API_KEY, or use --model demo)"
