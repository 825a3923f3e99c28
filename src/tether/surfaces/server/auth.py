"""Who is calling: API keys to principals, and what each may see.

A request carries ``Authorization: Bearer tk_...``; the key maps to a
:class:`~tether.spec.principal.Principal` (user, tenant, roles, scopes).
Visibility is one rule, used by every route:

- a user sees their own sessions (same user id and tenant), and only they
  send messages, answers and resumes to them (:func:`own`);
- an ``approver`` also sees every session of their tenant (to decide);
- an ``admin`` sees everything (and may resume a session).

Anything else is answered 404, exactly as for an id that does not exist,
so a caller cannot probe for other users' sessions.

*Open local mode*: while no key is stored and the server listens on
loopback only, requests act as the user ``local`` with every role (a
developer's machine). Creating the first key ends it at the next check.
A request that came through a proxy (``Forwarded``, ``X-Forwarded-For``,
``X-Real-IP``) or from an address that is not loopback is never let in this
way: a reverse proxy on the same machine would otherwise open the server
to everyone it serves.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from fastapi import Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tether.runtime.ports import SessionRecord
from tether.spec.principal import Principal
from tether.store.server import ApiKey, KeyStore, well_formed
from tether.surfaces.server.config import is_loopback
from tether.surfaces.server.problems import ApiProblem

__all__ = ["LOCAL", "Caller", "Gatekeeper", "bearer", "own", "visible"]

#: the principal of open local mode
LOCAL = Principal(user="local", roles=frozenset({"user", "approver", "admin"}))

bearer = HTTPBearer(auto_error=False, description="an API key from `tether keys create`")


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller: who, and under which key (idempotency records are per key)."""

    principal: Principal
    key_id: str

    @property
    def admin(self) -> bool:
        return "admin" in self.principal.roles

    @property
    def approver(self) -> bool:
        return "approver" in self.principal.roles or self.admin


def visible(caller: Caller, record: SessionRecord) -> bool:
    """Whether ``caller`` may see the session ``record`` (and decide its approvals)."""
    p = caller.principal
    if caller.admin:
        return True
    if record.tenant_id != p.tenant:
        return False
    if own(caller, record):
        return True
    return caller.approver


def own(caller: Caller, record: SessionRecord) -> bool:
    """Whether ``record`` is ``caller``'s own session: only its user talks in it.

    An approver sees the tenant's sessions and decides their approvals, but a
    message, an answer or a resume is the user's: sent by anyone else it
    would put words in the user's mouth and act with the user's scopes.
    """
    p = caller.principal
    return record.user_id is not None and record.user_id == p.user and record.tenant_id == p.tenant


class Gatekeeper:
    """Authenticates requests against the key store (open local mode while it is empty).

    What a key is, is remembered for ``recheck`` seconds (a store read per
    request would cost more than the rest of a small request): a revoked key
    is refused within that long, on every replica.
    """

    def __init__(
        self, keys: KeyStore, *, open_local: bool, recheck: float = 5.0, remember: int = 10_000
    ) -> None:
        self.keys = keys
        self.open_local = open_local
        self.recheck = recheck
        self.remember = remember
        self._open: bool | None = None
        self._checked = 0.0
        self._known: dict[bytes, tuple[float, ApiKey | None]] = {}

    async def is_open(self) -> bool:
        if not self.open_local:
            return False
        now = time.monotonic()
        if self._open is None or now - self._checked > self.recheck:
            self._open = await self.keys.count() == 0
            self._checked = now
        return self._open

    async def _key(self, token: str) -> ApiKey | None:
        if not well_formed(token):  # refused on sight: nothing to read, nothing to remember
            return None
        now = time.monotonic()
        digest = hashlib.sha256(token.encode()).digest()  # a fixed size, whatever was sent
        hit = self._known.get(digest)
        if hit is not None and now < hit[0]:
            return hit[1]
        key = await self.keys.authenticate(token)
        if len(self._known) >= self.remember:  # forget the oldest half, not one at a time
            for old in list(self._known)[: self.remember // 2]:
                del self._known[old]
        self._known[digest] = (now + self.recheck, key)
        return key

    async def caller(self, token: str | None, *, local: bool = True) -> Caller:
        """The caller ``token`` names; without one, the local user if the server is open
        and the request is ``local`` (from loopback, not through a proxy)."""
        if token:
            key = await self._key(token)
            if key is None:
                raise ApiProblem(
                    401,
                    "unauthenticated",
                    "this API key is not valid (unknown, malformed or revoked); "
                    "create one with `tether keys create`",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            return Caller(key.principal, key.id)
        if local and await self.is_open():
            return Caller(LOCAL, "local")
        raise ApiProblem(
            401,
            "unauthenticated",
            "send an API key as 'Authorization: Bearer <key>' (tether keys create makes one)",
            headers={"WWW-Authenticate": "Bearer"},
        )


_PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def _local(request: Request) -> bool:
    """Whether the request came straight from this machine (not through a proxy)."""
    if any(h in request.headers for h in _PROXY_HEADERS):
        return False
    client = request.client
    return client is not None and is_loopback(client.host)


async def authenticate(request: Request, creds: HTTPAuthorizationCredentials | None) -> Caller:
    gate: Gatekeeper = request.app.state.tether.gate
    token = creds.credentials if creds is not None else None
    return await gate.caller(token, local=_local(request))
