"""The public API is what tether/__init__ exports; changing it is a decision, not an accident."""

from __future__ import annotations

import tether
import tether.runtime
import tether.store
import tether.testing


def test_top_level_exports() -> None:
    assert sorted(tether.__all__) == sorted(
        [
            "Agent",
            "BreakerPolicy",
            "Budget",
            "CircuitOpen",
            "ConfigError",
            "Event",
            "EventType",
            "Limits",
            "Message",
            "Model",
            "ModelUnavailable",
            "Price",
            "PriceTable",
            "ProviderError",
            "Quota",
            "RateLimited",
            "RateLimits",
            "RetryPolicy",
            "Risk",
            "RunError",
            "Runtime",
            "SessionConflict",
            "SessionNotFound",
            "TetherError",
            "Tool",
            "ToolCall",
            "ToolContext",
            "ToolFailed",
            "ToolResult",
            "TurnResult",
            "Usage",
            "__version__",
            "open_store",
            "tool",
        ]
    )
    for name in tether.__all__:
        assert getattr(tether, name) is not None


def test_submodule_facades_export_what_they_list() -> None:
    for module in (tether.runtime, tether.store, tether.testing):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_import_does_not_load_provider_sdks() -> None:
    import subprocess
    import sys

    heavy = "('anthropic', 'openai', 'xllamacpp', 'sqlalchemy')"
    code = f"import sys, tether; print(','.join(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
