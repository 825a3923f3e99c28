"""The public API is what tether/__init__ exports; changing it is a decision, not an accident."""

from __future__ import annotations

import re
import types
from pathlib import Path

import tether
import tether.runtime
import tether.store
import tether.testing

REPO = Path(__file__).resolve().parent.parent


def test_top_level_exports() -> None:
    assert sorted(tether.__all__) == sorted(
        [
            "AccessDenied",
            "Agent",
            "ApprovalError",
            "ApprovalPolicy",
            "BreakerPolicy",
            "Budget",
            "CircuitOpen",
            "ConfigError",
            "Event",
            "EventType",
            "GuardPolicy",
            "HealthCheck",
            "InjectionDetector",
            "InputRejected",
            "InvalidSessionState",
            "Limits",
            "Message",
            "Model",
            "ModelRequest",
            "ModelResponse",
            "ModelUnavailable",
            "NotApprover",
            "PendingApproval",
            "Price",
            "PriceTable",
            "Principal",
            "ProviderError",
            "Quota",
            "RateLimited",
            "RateLimiter",
            "RateLimits",
            "RetryPolicy",
            "Risk",
            "RunError",
            "Runtime",
            "SandboxLimits",
            "ScriptExhausted",
            "Session",
            "SessionConflict",
            "SessionInfo",
            "SessionNotFound",
            "SessionState",
            "SessionStatus",
            "ShuttingDown",
            "SqlPolicy",
            "TetherError",
            "Tool",
            "ToolCall",
            "ToolContext",
            "ToolFailed",
            "ToolResult",
            "TurnResult",
            "Usage",
            "__version__",
            "apply_policy",
            "arguments_hash",
            "mcp_server",
            "open_sandbox",
            "open_store",
            "review_sql",
            "run_python_tool",
            "tool",
        ]
    )
    for name in tether.__all__:
        assert getattr(tether, name) is not None


def test_all_matches_the_module_namespace() -> None:
    """Every public name bound in ``tether`` is in ``__all__`` and the other way round
    (httpx's ``test_exported_members``): nothing is exported by accident, nothing listed
    is missing. Lazy names join ``vars(tether)`` once first used."""
    for name in tether.__all__:
        getattr(tether, name)  # loads the lazy ones
    public = {
        name
        for name, value in vars(tether).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(tether.__all__) - {"__version__"}


def test_what_the_docs_import_comes_from_tether() -> None:
    """The docs and examples import the library's API from ``tether`` itself; only the
    public facades ``tether.testing``, ``tether.store``, ``tether.surfaces.evals``,
    ``tether.client``, ``tether.surfaces.server`` and ``tether.surfaces.ops`` are imported
    by path."""
    facades = {
        "tether",
        "tether.testing",
        "tether.store",
        "tether.surfaces.evals",
        "tether.client",
        "tether.surfaces.server",
        "tether.surfaces.ops",
    }
    found: list[str] = []
    for root in ("docs", "examples", "README.md"):
        path = REPO / root
        files = [path] if path.is_file() else [*path.rglob("*.py"), *path.rglob("*.md")]
        for f in files:
            for m in re.finditer(r"^\s*from (tether[\w.]*) import", f.read_text(), re.M):
                if m.group(1) not in facades:
                    found.append(f"{f.relative_to(REPO)}: {m.group(0).strip()}")
    assert found == []


def test_submodule_facades_export_what_they_list() -> None:
    for module in (tether.runtime, tether.store, tether.testing):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_the_client_does_not_load_the_server() -> None:
    """``tether.client`` (a service's dependency) loads neither FastAPI, uvicorn nor the store."""
    import subprocess
    import sys

    heavy = "('fastapi', 'uvicorn', 'sqlalchemy', 'anthropic', 'openai')"
    code = f"import sys, tether.client; print(','.join(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_import_does_not_load_provider_sdks() -> None:
    import subprocess
    import sys

    heavy = "('anthropic', 'openai', 'xllamacpp', 'sqlalchemy')"
    code = f"import sys, tether; print(','.join(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
