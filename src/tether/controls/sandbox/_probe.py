"""Start-up: find the strongest sandbox that really works here, or refuse to run code."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from tether.controls.sandbox._bwrap import BubblewrapSandbox
from tether.controls.sandbox._docker import DEFAULT_IMAGE, DockerSandbox
from tether.controls.sandbox._local import UNSANDBOXED_RISK, UnsafeLocalSandbox
from tether.controls.sandbox._types import Isolation, SandboxBackend
from tether.exceptions import ConfigError

__all__ = ["open_sandbox", "probe"]

log = logging.getLogger("tether.sandbox")


def probe(backends: Sequence[SandboxBackend] | None = None) -> Isolation:
    """Try each backend in order (bubblewrap, then Docker) by running a tiny program in it.

    The program checks that it cannot reach the network and that the process
    limit holds; the binary being installed is not enough. Returns the first
    that passes, or level ``"none"`` with every backend's reason. Blocks for
    the time the programs take (about 0.1 s for bubblewrap; seconds for a
    Docker engine): call it once, at start-up.
    """
    candidates = list(backends) if backends is not None else [BubblewrapSandbox(), DockerSandbox()]
    reasons: list[str] = []
    for backend in candidates:
        found = backend.probe()
        if found.sandbox is not None and found.level != "none":
            return found
        reasons.append(f"{backend.name}: {found.reason}")
    return Isolation("none", "; ".join(reasons) or "no sandbox backend was given")


def open_sandbox(
    *, allow_unsandboxed: bool = False, backends: Sequence[SandboxBackend] | None = None
) -> SandboxBackend:
    """The best sandbox this machine has (see :func:`probe`), its isolation level logged.

    With none, raises :class:`~tether.ConfigError` saying how to get one,
    unless ``allow_unsandboxed`` is true: then code runs in an
    :class:`UnsafeLocalSandbox`, with a warning in the log. Allow that only
    for code you trust, on a machine you can lose.
    """
    found = probe(backends)
    if found.sandbox is not None:
        log.info("sandbox: isolation level %s: %s", found.level, found.reason)
        return found.sandbox
    if allow_unsandboxed:
        log.warning(
            "sandbox: isolation level none (%s); running code UNSANDBOXED because "
            "allow_unsandboxed=True: %s",
            found.reason,
            UNSANDBOXED_RISK,
        )
        return UnsafeLocalSandbox(allow_unsandboxed=True)
    raise ConfigError(
        f"no sandbox can run code on this machine ({found.reason}). Install bubblewrap "
        "(Debian/Ubuntu: `apt-get install bubblewrap`; Fedora: `dnf install bubblewrap`) and "
        "allow unprivileged user namespaces (older Debian: sysctl "
        "kernel.unprivileged_userns_clone=1; Ubuntu 24.04+: an AppArmor profile for bwrap); "
        f"or run a Docker engine with the image present (`docker pull {DEFAULT_IMAGE}`). "
        "open_sandbox(allow_unsandboxed=True) would run code anyway, but "
        f"{UNSANDBOXED_RISK}: only for code you trust, on a machine you can lose."
    )
