"""Where `%%rlm` defaults come from: c.RLMKernel.* config < RLM_* environment < `%rlm config` <
options on the %%rlm line. Keys are never configurable here and never shown."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from traitlets.config import Config

from rlm_kernel.engine.options import RLMOptions
from rlm_kernel.engine.record import list_runs
from rlm_kernel.kernel.config import OPTION_TYPES, ConfigValueError, Defaults, RLMSettings, describe, parse_value
from rlm_kernel.kernel.testing import KernelSession, jupyter_sandbox


def test_every_option_but_the_key_is_configurable() -> None:
    assert set(OPTION_TYPES) == {f.name for f in dataclasses.fields(RLMOptions)} - {"api_key"}
    assert set(OPTION_TYPES) <= set(RLMSettings.class_trait_names(config=True))
    # The value types are read from RLMOptions' annotations, None and type parameters left out.
    assert [OPTION_TYPES[n] for n in ("model", "max_subcalls", "max_cost", "memoize", "prices")] == \
        [str, int, float, bool, dict]
    # Each option set in a config file reaches the run's options, and its trait says what it is.
    sample = {str: "x", int: 3, float: 2.5, bool: True, dict: {"m": {"input": 1.0}}}
    values = {name: sample[kind] for name, kind in OPTION_TYPES.items()}
    settings = RLMSettings(config=Config({"RLMSettings": values}))
    assert Defaults(settings=settings, environ={}).options().public_dict() == values
    traits = RLMSettings.class_traits(config=True)
    assert [name for name in OPTION_TYPES if not traits[name].help] == []


def test_layers_override_in_order() -> None:
    settings = RLMSettings(config=Config({"RLMSettings": {"model": "cfg-model", "max_depth": 3,
                                                           "max_iterations": 11}}))
    d = Defaults(settings=settings, environ={"RLM_MODEL": "env-model", "RLM_MAX_ITERATIONS": "12"})
    d.set("max-iterations", "13")
    resolved = d.resolve()
    assert resolved["max_depth"] == (3, "config")
    assert resolved["model"] == ("env-model", "env")
    assert resolved["max_iterations"] == (13, "session")
    opts = d.options(max_iterations=14)
    assert (opts.model, opts.max_depth, opts.max_iterations) == ("env-model", 3, 14)
    d.set("max_iterations", "")  # an empty value drops the session setting
    assert d.options().max_iterations == 12


@pytest.mark.parametrize(("option", "text", "value"), [
    ("approve", "yes", True), ("cache", "off", False), ("max_subcalls", "1_000", 1000),
    ("max_cost", "2.5", 2.5), ("prices", '{"m": {"input": 1}}', {"m": {"input": 1}}), ("model", " demo ", "demo"),
])
def test_parse_value(option: str, text: str, value: object) -> None:
    assert parse_value(option, text) == value


def test_bad_values_name_the_problem() -> None:
    with pytest.raises(ConfigValueError, match="max_depth must be an integer, got 'deep'"):
        parse_value("max_depth", "deep")
    with pytest.raises(ConfigValueError, match="unknown RLM option 'colour'; known: model"):
        Defaults(environ={}).set("colour", "red")
    with pytest.raises(ConfigValueError, match="RLM_TIMEOUT"):
        Defaults(environ={"RLM_TIMEOUT": "soon"}).resolve()
    with pytest.raises(ConfigValueError, match="ANTHROPIC_API_KEY"):
        Defaults(environ={}).set("api_key", "sk-ant-whatever")


def test_describe_says_whether_a_key_is_set_but_never_shows_it() -> None:
    secret = "sk-ant-test-very-secret"
    text = describe(Defaults(environ={"ANTHROPIC_API_KEY": secret}))
    assert "ANTHROPIC_API_KEY is set" in text and secret not in text
    assert "none set" in describe(Defaults(environ={}))


@pytest.fixture(scope="module")
def configured_kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KernelSession, Path]]:
    root = tmp_path_factory.mktemp("config")
    with jupyter_sandbox(root) as work:
        config_dir = root / "config"  # JUPYTER_CONFIG_DIR in the sandbox
        config_dir.mkdir(exist_ok=True)
        (config_dir / "rlm_kernel_config.py").write_text(
            "c.RLMKernel.max_iterations = 7\nc.RLMKernel.sub_model = 'from-config'\n")
        profile = root / "ipython" / "profile_default"
        profile.mkdir(parents=True)
        (profile / "ipython_kernel_config.py").write_text("c.RLMKernel.max_depth = 3\n")
        with KernelSession(work, env={"RLM_SUB_MODEL": "from-env"}) as session:
            yield session, work


def test_kernel_reads_config_files_env_and_session(configured_kernel: tuple[KernelSession, Path]) -> None:
    kernel, work = configured_kernel
    rows = {line.split()[0]: line.split()[1:] for line in kernel.run("%rlm config model=demo").text.splitlines()
            if line and line.split()[0] in OPTION_TYPES}
    assert rows["max_iterations"] == ["7", "config"]
    assert rows["max_depth"] == ["3", "config"]
    assert rows["sub_model"] == ["from-env", "env"]
    assert rows["model"] == ["demo", "session"]

    kernel.run("context = 'a few words of text for the demo model to read.'")
    cell = kernel.run("%%rlm --max-iterations 4\nWhat does it say?")
    assert cell.status == "ok", cell.text
    options = (list_runs(work / "rlm_runs")[0].started() or {})["options"]
    assert (options["max_iterations"], options["max_depth"], options["sub_model"]) == (4, 3, "from-env")


# --- ranges: a bad number is refused where it enters, naming the option and what is allowed --------

@pytest.mark.parametrize(("make", "where"), [
    (lambda: Defaults(environ={"RLM_MAX_ITERATIONS": "-3"}).resolve(), "environment variable RLM_MAX_ITERATIONS=-3"),
    (lambda: Defaults(environ={}).set("max_iterations", "-3"), ""),
    (lambda: Defaults(settings=RLMSettings(config=Config({"RLMSettings": {"max_iterations": -3}})),
                      environ={}).options(), "c.RLMKernel.max_iterations = -3 in the config file"),
    (lambda: parse_value("max_iterations", "0"), ""),
])
def test_a_budget_out_of_range_is_refused_at_every_layer(make, where) -> None:
    with pytest.raises(ConfigValueError) as info:
        make()
    message = str(info.value)
    assert "\n" not in message
    assert where in message and "max_iterations must be a whole number of at least 1, got" in message
