"""Store-specific failures and the lease-conflict messages both stores share.

``StoreTimeout`` and ``StoreUnavailable`` are :class:`~tether.exceptions.RunError`
subclasses (the session stays intact and resumable) that are also a
``TimeoutError`` / ``ConnectionError``, so retry policies that classify by
the builtin exception treat them as transient.
"""

from __future__ import annotations

from tether.exceptions import RunError
from tether.runtime.lease import lease_conflict, lease_lost

__all__ = ["StoreTimeout", "StoreUnavailable", "lease_conflict", "lease_lost"]


class StoreTimeout(RunError, TimeoutError):
    """A store operation did not finish within ``op_timeout``."""


class StoreUnavailable(RunError, ConnectionError):
    """The database could not be reached or refused the operation for now."""
