"""Model prices: what a call cost, from the tokens the provider reported.

A :class:`PriceTable` maps models to a :class:`Price` in US dollars per
million tokens of each kind: input, output, cache read, cache write (the
four counts of :class:`~tether.spec.messages.Usage`). :data:`DEFAULT_PRICES`
covers current Anthropic and OpenAI models, dated by ``as_of``; vendors
change prices, so a deployment overrides them with a file (JSON or TOML)
named by ``TETHER_PRICES`` or passed to :meth:`PriceTable.load`::

    # prices.toml
    as_of = "2026-12-01"
    [prices."anthropic:claude-sonnet-4-5"]
    input = 3.0
    output = 15.0
    cache_read = 0.30
    cache_write = 3.75

Lookup takes a model spec (``anthropic:claude-sonnet-4-5``) or a bare name;
a dated snapshot (``claude-haiku-4-5-20251001``, ``gpt-4.1-2025-04-14``)
falls back to its base name. Local models (``local``, ``local:PATH``) and
test models (``scripted``, ``function``) cost nothing unless the table names
them. An OpenAI-compatible server reached through a base URL
(``openai:NAME@URL``: vLLM, Ollama, a proxy) is not OpenAI's service, so the
default table does not price it: give it a price by its full spec. A model
the table does not know is *unpriced*: its cost counts as 0 and reports
list it, so a missing price is visible instead of silently cheap.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.exceptions import ConfigError
from tether.spec.messages import Usage

__all__ = ["DEFAULT_PRICES", "FREE", "Price", "PriceTable", "load_prices"]

_MILLION = 1_000_000.0


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million tokens of each kind."""

    input: float
    output: float
    cache_read: float = 0.0
    cache_write: float = 0.0

    def __post_init__(self) -> None:
        for name in ("input", "output", "cache_read", "cache_write"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or v < 0:
                raise ConfigError(f"Price.{name} must be a number >= 0, not {v!r}")

    def cost(self, usage: Usage) -> float:
        """Dollars for ``usage`` at this price."""
        return (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_read_tokens * self.cache_read
            + usage.cache_write_tokens * self.cache_write
        ) / _MILLION

    def to_dict(self) -> dict[str, float]:
        return {
            "input": self.input,
            "output": self.output,
            "cache_read": self.cache_read,
            "cache_write": self.cache_write,
        }


FREE = Price(0.0, 0.0, 0.0, 0.0)

_DATE_SUFFIX = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2})$")
_FREE_PROVIDERS = frozenset({"local", "scripted", "function"})


def _key(spec: str) -> str:
    return spec.strip().lower()


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Prices by model spec. ``as_of`` dates them (vendors change prices)."""

    prices: Mapping[str, Price]
    as_of: str = ""
    source: str = "built-in"
    _index: dict[str, Price] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {_key(k): v for k, v in self.prices.items()}
        # A bare name ("gpt-4.1") finds its provider's entry, unless named itself.
        for k, v in list(index.items()):
            provider, _, name = k.partition(":")
            if name and "@" not in k and provider not in _FREE_PROVIDERS:
                index.setdefault(name, v)
        object.__setattr__(self, "_index", index)

    def lookup(self, model: str) -> Price | None:
        """The price of ``model`` (a spec or a bare name), or ``None`` if unpriced."""
        spec = _key(model)
        for candidate in _candidates(spec):
            price = self._index.get(candidate)
            if price is not None:
                return price
        provider = spec.split(":", 1)[0]
        if provider in _FREE_PROVIDERS:
            return FREE
        return None

    def merged(
        self, overrides: Mapping[str, Price], *, as_of: str = "", source: str = ""
    ) -> PriceTable:
        """This table with ``overrides`` replacing or adding entries."""
        return PriceTable(
            {**dict(self.prices), **dict(overrides)},
            as_of=as_of or self.as_of,
            source=source or self.source,
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str) -> PriceTable:
        """A table from ``{"as_of": ..., "prices": {spec: {input, output, ...}}}``."""
        raw = data.get("prices")
        if not isinstance(raw, Mapping) or not raw:
            raise ConfigError(
                f"{source}: expected a 'prices' table of model -> {{input, output, "
                "cache_read, cache_write}} in dollars per million tokens"
            )
        prices: dict[str, Price] = {}
        for name, entry in raw.items():
            if not isinstance(entry, Mapping):
                raise ConfigError(f"{source}: the price of {name!r} must be a table")
            unknown = set(entry) - {"input", "output", "cache_read", "cache_write"}
            if unknown or "input" not in entry or "output" not in entry:
                raise ConfigError(
                    f"{source}: the price of {name!r} needs 'input' and 'output' (and may "
                    f"have 'cache_read', 'cache_write'){'; unknown: ' if unknown else ''}"
                    f"{', '.join(sorted(unknown))}"
                )
            prices[str(name)] = Price(**{k: float(v) for k, v in entry.items()})
        return cls(prices, as_of=str(data.get("as_of", "")), source=source)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, base: PriceTable | None = None) -> PriceTable:
        """Read a JSON or TOML price file; its entries override ``base`` (default table)."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read the price file {p}: {e.strerror or e}") from e
        import tomllib  # only when a price file is read: keeps `import tether` light

        try:
            data = tomllib.loads(text) if p.suffix.lower() == ".toml" else json.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(
                f"the price file {p} is not valid {p.suffix[1:] or 'JSON'}: {e}"
            ) from None
        if not isinstance(data, Mapping):
            raise ConfigError(f"the price file {p} must hold a table at the top level")
        table = cls.from_mapping(data, source=str(p))
        base = DEFAULT_PRICES if base is None else base
        return base.merged(table.prices, as_of=table.as_of or base.as_of, source=str(p))

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of,
            "source": self.source,
            "prices": {k: v.to_dict() for k, v in sorted(self.prices.items())},
        }


def _candidates(spec: str) -> list[str]:
    """Keys to try for ``spec``: itself, without a date suffix, and as a bare name."""
    out = [spec]
    provider, _, name = spec.partition(":")
    if "@" in spec:  # a self-hosted server: only an entry for the full spec prices it
        return out
    if not name:
        name, provider = provider, ""
    base = _DATE_SUFFIX.sub("", name)
    for n in (name, base):
        if provider:
            out.append(f"{provider}:{n}")
        out.append(n)
    return list(dict.fromkeys(out))


def _p(i: float, o: float, r: float, w: float) -> Price:
    return Price(input=i, output=o, cache_read=r, cache_write=w)


# Dollars per million tokens, from the vendors' public price pages (read on the
# date below). Anthropic bills cache writes at 1.25x input (5-minute cache);
# OpenAI caches automatically, bills cached input at a discount and charges
# no write premium (cache_write = input).
_ANTHROPIC = {
    "claude-fable-5-1": _p(10.0, 50.0, 0.25, 12.50),
    "claude-opus-5-5": _p(4.0, 20.0, 0.20, 5.0),
    "claude-opus-5": _p(5.0, 25.0, 0.50, 6.25),
    "claude-opus-4-8": _p(5.0, 25.0, 0.50, 6.25),
    "claude-opus-4-7": _p(5.0, 25.0, 0.50, 6.25),
    "claude-opus-4-6": _p(5.0, 25.0, 0.50, 6.25),
    "claude-opus-4-5": _p(5.0, 25.0, 0.50, 6.25),
    "claude-opus-4-1": _p(15.0, 75.0, 1.50, 18.75),
    "claude-opus-4-0": _p(15.0, 75.0, 1.50, 18.75),
    "claude-opus-4": _p(15.0, 75.0, 1.50, 18.75),
    "claude-sonnet-5-5": _p(2.0, 10.0, 0.10, 2.50),
    "claude-sonnet-5": _p(2.0, 10.0, 0.20, 2.50),
    "claude-sonnet-4-6": _p(3.0, 15.0, 0.30, 3.75),
    "claude-sonnet-4-5": _p(3.0, 15.0, 0.30, 3.75),
    "claude-sonnet-4-0": _p(3.0, 15.0, 0.30, 3.75),
    "claude-sonnet-4": _p(3.0, 15.0, 0.30, 3.75),
    "claude-haiku-5-5": _p(0.10, 0.50, 0.01, 0.125),
    "claude-haiku-4-5": _p(1.0, 5.0, 0.10, 1.25),
    "claude-3-5-haiku": _p(0.80, 4.0, 0.08, 1.0),
    "claude-3-haiku": _p(0.25, 1.25, 0.03, 0.30),
}
_OPENAI = {
    "gpt-5.4": _p(2.50, 15.0, 0.25, 2.50),
    "gpt-5.4-mini": _p(0.75, 4.50, 0.075, 0.75),
    "gpt-5.2": _p(1.75, 14.0, 0.175, 1.75),
    "gpt-5": _p(1.25, 10.0, 0.125, 1.25),
    "gpt-5-mini": _p(0.25, 2.0, 0.025, 0.25),
    "gpt-5-nano": _p(0.05, 0.40, 0.005, 0.05),
    "gpt-4.1": _p(2.0, 8.0, 0.50, 2.0),
    "gpt-4.1-mini": _p(0.40, 1.60, 0.10, 0.40),
    "gpt-4.1-nano": _p(0.10, 0.40, 0.025, 0.10),
    "gpt-4o": _p(2.50, 10.0, 1.25, 2.50),
    "gpt-4o-mini": _p(0.15, 0.60, 0.075, 0.15),
    "o3": _p(2.0, 8.0, 0.50, 2.0),
    "o4-mini": _p(1.10, 4.40, 0.275, 1.10),
}

DEFAULT_PRICES = PriceTable(
    {f"anthropic:{k}": v for k, v in _ANTHROPIC.items()}
    | {f"openai:{k}": v for k, v in _OPENAI.items()},
    as_of="2026-11-05",
)


def load_prices(path: str | os.PathLike[str] | None = None) -> PriceTable:
    """The price table in force: ``path``, else ``$TETHER_PRICES``, over the defaults."""
    chosen = path if path is not None else os.environ.get("TETHER_PRICES")
    if not chosen:
        return DEFAULT_PRICES
    return PriceTable.load(chosen)
