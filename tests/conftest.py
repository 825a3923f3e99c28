"""What only Tether's own suite needs.

The network block (no connections except loopback) and the runtime
fixtures come from Tether's pytest plugin, ``tether.testing.pytest_plugin``,
which pytest loads through the package's ``pytest11`` entry point;
``tests/testing/test_pytest_plugin.py`` checks that it is active here.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep tests away from the user's ~/.tether store and real API keys."""
    home = tmp_path_factory.mktemp("tether-home")
    monkeypatch.setenv("TETHER_HOME", str(home))
    monkeypatch.delenv("TETHER_DATABASE_URL", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    # a developer's own server must not receive the local CLI tests' requests
    monkeypatch.delenv("TETHER_SERVER", raising=False)
    monkeypatch.delenv("TETHER_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
