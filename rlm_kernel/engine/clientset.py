"""Choosing the model backend for a run: from options, then the environment, with one clear
error when nothing usable is configured."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

from .clients.demo import DEMO_ROOT, DEMO_SUB, DemoClient
from .modelio import ModelIO
from .options import DEFAULT_ROOT_MODEL, DEFAULT_SUB_MODEL, RLMOptions
from .types import ModelClient

PROVIDERS = ("anthropic", "openai", "demo")
#: Window assumed for a model on an OpenAI-compatible server that does not report one (llama-cpp-python,
#: Ollama, OpenAI itself): small on purpose, since a guess too large means prompts the server drops.
ASSUMED_WINDOW = 8_192


class ConfigError(ValueError):
    """The run cannot start as configured; the message says what to do."""


NO_KEY = ("No model configured: set ANTHROPIC_API_KEY (e.g. `export ANTHROPIC_API_KEY=sk-ant-...`), "
          "or use the offline demo model with model='demo' (%%rlm --model demo), "
          "or a local OpenAI-compatible server with provider='openai' and base_url=...")


@dataclass
class ClientSet:
    root: ModelClient
    sub: ModelClient
    root_model: str
    sub_model: str
    label: str
    demo: bool = False
    #: The keys the clients send: secrets wherever they appear, whatever they look like.
    keys: tuple[str, ...] = ()
    #: Windows set by options (context_window, sub_context_window): they win over everything else.
    windows: dict[str, int] = field(default_factory=dict)
    #: The window of a model nobody reports (OpenAI-compatible servers), None where unknown is fine.
    assumed_window: int | None = None

    def window(self, model: str) -> int | None:
        """Input window of `model` in tokens: an option, else what the provider or server reports,
        else the assumed window."""
        return self.window_info(model)[0]

    def window_info(self, model: str) -> tuple[int | None, str]:
        """(window, where it came from: "option", "model id", "server: ...", "assumed", "unknown")."""
        if model in self.windows:
            return self.windows[model], "option"
        client = self.root if model == self.root_model else self.sub
        known = client.context_window(model)
        if known is not None:
            source = getattr(client, "window_source", None)
            return known, (source(model) if source else None) or "model id"
        if self.assumed_window is not None:
            return self.assumed_window, "assumed"
        return None, "unknown"

    def sub_window(self) -> int | None:
        return self.window(self.sub_model)

    async def discover(self, io: ModelIO) -> None:
        """Ask servers that can say for the windows no option set (once per client, on the I/O loop)."""
        for client, model in ((self.root, self.root_model), (self.sub, self.sub_model)):
            probe = getattr(client, "discover", None)
            if probe is not None and model not in self.windows:
                await io.call(probe([model]))


def resolve_provider(options: RLMOptions) -> str:
    p = (options.provider or "").strip().lower() or None
    if options.model == DEMO_ROOT or p == "demo":
        return "demo"
    if p is not None:
        if p not in PROVIDERS:
            raise ConfigError(f"unknown provider {options.provider!r}; use one of: {', '.join(PROVIDERS)}")
        return p
    if options.api_key or os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN"):
        return "anthropic"
    if os.environ.get("RLM_OPENAI_BASE_URL"):
        return "openai"
    raise ConfigError(NO_KEY)


def make_clients(options: RLMOptions, io: ModelIO) -> ClientSet:
    provider = resolve_provider(options)
    if provider == "demo":
        demo = io.client(("demo",), DemoClient)
        return ClientSet(demo, demo, DEMO_ROOT, DEMO_SUB, DemoClient.label, demo=True)
    if provider == "anthropic":
        if options.temperature is not None:
            raise ConfigError("temperature is for OpenAI-compatible servers: the Anthropic Messages API takes no "
                              "sampling parameters; leave temperature unset for Anthropic models")
        key = options.api_key or os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN")
        if not key:
            raise ConfigError(NO_KEY)
        from .clients.anthropic_client import AnthropicClient

        base_url = options.base_url or os.environ.get("ANTHROPIC_BASE_URL") or None
        ident = ("anthropic", base_url, _digest(key), options.max_retries, options.request_timeout)
        client = io.client(ident, lambda: AnthropicClient(api_key=key, base_url=base_url,
                                                          max_retries=options.max_retries,
                                                          timeout=options.request_timeout))
        io.submit(client.warm())  # overlaps client set-up with the run's own start
        root_model, sub_model = options.model or DEFAULT_ROOT_MODEL, options.sub_model or DEFAULT_SUB_MODEL
        return ClientSet(client, client, root_model, sub_model, "anthropic", keys=(key,),
                         windows=option_windows(options, root_model, sub_model))
    base_url = options.base_url or os.environ.get("RLM_OPENAI_BASE_URL") or os.environ.get("OPENAI_BASE_URL")
    if not base_url:
        raise ConfigError("provider 'openai' needs base_url (or RLM_OPENAI_BASE_URL), e.g. http://127.0.0.1:8000/v1")
    if not options.model:
        raise ConfigError("provider 'openai' needs model= (the name your server serves, e.g. 'llama3.1')")
    from .clients.openai_client import OpenAICompatClient

    key = options.api_key or os.environ.get("RLM_OPENAI_API_KEY") or os.environ.get("OPENAI_API_KEY")
    sub_model = options.sub_model or options.model
    windows = option_windows(options, options.model, sub_model)
    ident = ("openai", base_url, _digest(key or ""), options.max_retries, options.request_timeout,
             tuple(sorted(windows.items())))
    try:
        client = io.client(ident, lambda: OpenAICompatClient(base_url=base_url, api_key=key,
                                                              max_retries=options.max_retries,
                                                              timeout=options.request_timeout,
                                                              context_windows=windows))
    except ImportError as exc:  # the optional openai package is missing: its message says how to install it
        raise ConfigError(str(exc)) from None
    return ClientSet(client, client, options.model, sub_model, "openai-compatible", windows=windows,
                     assumed_window=options.context_window or ASSUMED_WINDOW, keys=(key,) if key else ())


def option_windows(options: RLMOptions, root_model: str, sub_model: str) -> dict[str, int]:
    """The windows the options set, per model id. For one model serving both roles the smaller wins."""
    windows: dict[str, int] = {}
    for model, value in ((root_model, options.context_window), (sub_model, options.sub_context_window)):
        if value is not None:
            if value <= 0:
                raise ConfigError(f"a context window is a positive number of tokens, got {value}")
            windows[model] = min(value, windows.get(model, value))
    return windows


def _digest(secret: str) -> str:
    """Clients are cached per key without keeping the key itself in the cache's identity."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]
