"""Model spec strings to providers.

``anthropic:MODEL``, ``openai:MODEL`` (``openai:MODEL@BASE_URL`` or
``OPENAI_BASE_URL`` for any OpenAI-compatible server), ``local`` (the
embedded default model) and ``local:PATH.gguf``. Provider modules are
imported only when a spec names them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from tether.exceptions import ModelSpecError
from tether.spec.model import Model

__all__ = ["PROVIDERS", "default_models", "model_from_spec"]

#: the providers a spec string may name (``PROVIDER:MODEL``)
PROVIDERS = ("anthropic", "openai", "local")

ANTHROPIC_CHAIN = ("anthropic:claude-sonnet-4-5", "anthropic:claude-haiku-4-5")
OPENAI_CHAIN = ("openai:gpt-4.1", "openai:gpt-4.1-mini")


def default_models(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The default chain for the keys present in ``env`` (default: the environment).

    Anthropic (Sonnet, then Haiku) if ``ANTHROPIC_API_KEY`` is set, else
    OpenAI (GPT-4.1, then GPT-4.1-mini) if ``OPENAI_API_KEY`` is set, else the
    embedded ``local`` model, which needs no key and no network.
    """
    env = os.environ if env is None else env
    if env.get("ANTHROPIC_API_KEY"):
        return ANTHROPIC_CHAIN
    if env.get("OPENAI_API_KEY"):
        return OPENAI_CHAIN
    return ("local",)


def model_from_spec(spec: str, *, timeout: float = 120.0) -> Model:
    """Build the provider a spec string names. Raises :class:`ModelSpecError`."""
    provider, _, rest = spec.partition(":")
    provider = provider.strip().lower()
    if provider == "anthropic":
        if not rest:
            raise ModelSpecError(
                "'anthropic:' needs a model name, e.g. anthropic:claude-sonnet-4-5"
            )
        from tether.providers.anthropic import AnthropicModel

        return AnthropicModel(rest, timeout=timeout)
    if provider == "openai":
        if not rest:
            raise ModelSpecError("'openai:' needs a model name, e.g. openai:gpt-4.1")
        from tether.providers.openai import OpenAIModel

        model, _, base_url = rest.partition("@")
        return OpenAIModel(model, base_url=base_url or None, timeout=timeout)
    if provider == "local":
        from tether.providers.local import LocalModel

        return LocalModel(rest or None, timeout=timeout)
    raise ModelSpecError(
        f"unknown model spec {spec!r}: use anthropic:MODEL, openai:MODEL, local "
        "or local:PATH.gguf (scripted models are built in code: tether.testing.ScriptedModel)"
    )
