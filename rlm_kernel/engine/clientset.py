"""Choosing the model backend for a run: from options, then the environment, with one clear
error when nothing usable is configured."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from .clients.demo import DEMO_ROOT, DEMO_SUB, DemoClient
from .modelio import ModelIO
from .options import DEFAULT_ROOT_MODEL, DEFAULT_SUB_MODEL, RLMOptions
from .types import ModelClient

PROVIDERS = ("anthropic", "openai", "demo")


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

    def window(self, model: str) -> int | None:
        client = self.root if model == self.root_model else self.sub
        return client.context_window(model)

    def sub_window(self) -> int | None:
        return self.sub.context_window(self.sub_model)


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
        return ClientSet(client, client, options.model or DEFAULT_ROOT_MODEL,
                         options.sub_model or DEFAULT_SUB_MODEL, "anthropic", keys=(key,))
    base_url = options.base_url or os.environ.get("RLM_OPENAI_BASE_URL") or os.environ.get("OPENAI_BASE_URL")
    if not base_url:
        raise ConfigError("provider 'openai' needs base_url (or RLM_OPENAI_BASE_URL), e.g. http://127.0.0.1:8000/v1")
    if not options.model:
        raise ConfigError("provider 'openai' needs model= (the name your server serves, e.g. 'llama3.1')")
    from .clients.openai_client import OpenAICompatClient

    key = options.api_key or os.environ.get("RLM_OPENAI_API_KEY") or os.environ.get("OPENAI_API_KEY")
    ident = ("openai", base_url, _digest(key or ""), options.max_retries, options.request_timeout)
    try:
        client = io.client(ident, lambda: OpenAICompatClient(base_url=base_url, api_key=key,
                                                              max_retries=options.max_retries,
                                                              timeout=options.request_timeout))
    except ImportError as exc:  # the optional openai package is missing: its message says how to install it
        raise ConfigError(str(exc)) from None
    return ClientSet(client, client, options.model, options.sub_model or options.model, "openai-compatible",
                     keys=(key,) if key else ())


def _digest(secret: str) -> str:
    """Clients are cached per key without keeping the key itself in the cache's identity."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]
