"""Annotations map to Tether's flags restrict-only; overrides win; the spec is checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tether import Agent, ConfigError, mcp_server, tool
from tether.providers.mcp import flags_for, load_overrides

RO, DE, ID, OW = "readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"
GATED = {"reads": False, "writes": False, "irreversible": True, "idempotent": False}
OPEN = {"untrusted_output": True, "egress": True}
CLOSED = {"untrusted_output": False, "egress": False}
READ = {"reads": True, "writes": False, "irreversible": False}


@pytest.mark.parametrize(
    ("annotations", "trusted", "expected"),
    [
        # missing annotations: destructive and open-world, trusted or not
        (None, False, GATED | OPEN),
        (None, True, GATED | OPEN),
        ({}, True, GATED | OPEN),
        # readOnlyHint lifts the gate only for a trusted server
        ({RO: True, OW: False}, False, GATED | OPEN),
        ({RO: True, OW: False}, True, READ | {"idempotent": True} | CLOSED),
        ({RO: True, ID: False, OW: False}, True, READ | {"idempotent": False} | CLOSED),
        # destructiveHint true: gated even if the server is trusted
        ({RO: False, DE: True, ID: True, OW: False}, True, GATED | {"idempotent": True} | CLOSED),
        # destructiveHint false: an additive write, ungated only when trusted
        ({DE: False}, True, GATED | {"writes": True, "irreversible": False} | OPEN),
        ({DE: False}, False, GATED | OPEN),
        # idempotentHint is believed only from a trusted server
        ({ID: True}, False, GATED | OPEN),
        ({ID: True}, True, GATED | {"idempotent": True} | OPEN),
        # openWorldHint true or missing: untrusted output and egress; false only if trusted
        ({RO: True, OW: True}, True, READ | {"idempotent": True} | OPEN),
        ({RO: True}, True, READ | {"idempotent": True} | OPEN),
        ({OW: False}, False, GATED | OPEN),
    ],
)
def test_annotations_only_tighten(
    annotations: dict[str, Any] | None, trusted: bool, expected: dict[str, bool]
) -> None:
    assert flags_for(annotations, trusted=trusted) == expected


def test_overrides_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="readz"):
        mcp_server("stdio", name="s", command=["x"], overrides={"t": {"readz": True}})
    with pytest.raises(ConfigError, match="reads"):
        mcp_server("stdio", name="s", command=["x"], overrides={"t": {"reads": "yes"}})
    f = tmp_path / "o.yaml"
    f.write_text("search:\n  reads: true\n  irreversible: false\n")
    assert load_overrides(f) == {"search": {"reads": True, "irreversible": False}}
    assert mcp_server("stdio", name="s", command=["x"], overrides=f).overrides == {
        "search": {"reads": True, "irreversible": False}
    }
    f.write_text("search:\n  bogus: 1\n")
    with pytest.raises(ConfigError, match="bogus"):
        load_overrides(f)


def test_spec_mistakes_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="transport"):
        mcp_server("sse", name="s", url="http://x")
    with pytest.raises(ConfigError, match="command"):
        mcp_server("stdio", name="s")
    with pytest.raises(ConfigError, match="url"):
        mcp_server("http", name="s")
    with pytest.raises(ConfigError, match="stdio"):
        mcp_server("http", name="s", url="http://x", command=["x"])


@tool
def local() -> str:
    """A local tool."""
    return "hi"


def test_agent_moves_sources_out_of_tools() -> None:
    server = mcp_server("stdio", name="s", command=["x"])
    agent = Agent(name="a", instructions="i", tools=(local, server))
    assert agent.tools == (local,)
    assert agent.toolsets == (server,)
    with pytest.raises(ConfigError, match="tool source"):
        Agent(name="a", instructions="i", toolsets=(local,))  # type: ignore[arg-type]
