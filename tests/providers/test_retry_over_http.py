"""The runtime's retries against the real anthropic and openai SDKs, HTTP mocked by respx.

A 429 with ``Retry-After: 2`` followed by a good answer gives exactly one
retry, after 2 s on the fake clock, and one more HTTP request; a 401 gives
none. The SDKs' own retries are off, so each attempt is one request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from tether import Agent, Runtime
from tether.providers.anthropic import AnthropicModel
from tether.providers.openai import OpenAIModel
from tether.spec.events import EventType
from tether.spec.model import Model
from tether.testing import FakeClock

from . import test_anthropic as anth
from . import test_openai as oai

PROVIDERS: dict[str, tuple[str, str, Callable[[], Model], Any]] = {
    "anthropic": (
        anth.URL,
        "ANTHROPIC_API_KEY",
        lambda: AnthropicModel(anth.MODEL),
        lambda: anth.stream_response(anth.TEXT_EVENTS),
    ),
    "openai": (
        oai.URL,
        "OPENAI_API_KEY",
        lambda: OpenAIModel(oai.MODEL),
        lambda: oai.stream_response(oai.TEXT_EVENTS),
    ),
}


@pytest.fixture(params=sorted(PROVIDERS))
def provider(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, Callable[[], Model], Any]:
    url, key_env, make, ok = PROVIDERS[request.param]
    for name in ("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(key_env, "sk-test-0123456789abcdef")
    return url, make, ok


async def test_429_with_retry_after_is_retried_once_after_that_wait(
    http: respx.MockRouter, provider: tuple[str, Callable[[], Model], Any]
) -> None:
    url, make, ok = provider
    route = http.post(url).mock(
        side_effect=[httpx.Response(429, headers={"retry-after": "2"}), ok()]
    )
    clock = FakeClock()
    async with make() as model:  # type: ignore[attr-defined]
        agent = Agent(name="a", instructions="Be brief.", models=(model,))
        async with Runtime(clock=clock, sleep=clock.sleep) as rt:
            result = await rt.run(agent, "Where is my order?")
    assert result.ok, result.error
    assert result.output == "Your order has shipped."
    assert route.call_count == 2
    assert clock.sleeps == [2.0]
    (retry,) = [e for e in result.events if e.type == EventType.MODEL_RETRY]
    assert retry.data["reason"] == "HTTP 429"
    assert retry.data["delay"] == 2.0
    assert retry.data["attempt"] == 1


async def test_401_is_not_retried(
    http: respx.MockRouter, provider: tuple[str, Callable[[], Model], Any]
) -> None:
    url, make, _ok = provider
    body = {"type": "error", "error": {"type": "authentication_error", "message": "bad key"}}
    route = http.post(url).mock(return_value=httpx.Response(401, json=body))
    clock = FakeClock()
    async with make() as model:  # type: ignore[attr-defined]
        agent = Agent(name="a", instructions="Be brief.", models=(model,))
        async with Runtime(clock=clock, sleep=clock.sleep) as rt:
            result = await rt.run(agent, "Where is my order?")
    assert not result.ok
    assert route.call_count == 1
    assert clock.sleeps == []
    assert not [e for e in result.events if e.type == EventType.MODEL_RETRY]
    assert result.error is not None
    assert "refused" in result.error
