"""What the server keeps beside sessions: API keys and idempotency records.

Both live in the session store's database (same migrations, same URL), so
every replica sees the same keys and the same first outcomes.

**API keys** look like ``tk_<id>_<secret>``. Only the SHA-256 of the secret
is stored: the secret is 32 random bytes, which no one can guess from its
hash, so a slow password hash would only add a delay to every request. A
key maps to a :class:`~tether.spec.principal.Principal` (user, tenant,
roles, scopes); a revoked key is refused from the next request on.

**Idempotency records** hold the first outcome of a POST sent with an
``Idempotency-Key`` header, keyed by who sent it and the key: ``begin``
claims the key (one INSERT; a second claimant gets the existing record),
``finish`` stores the response. A record older than ``ttl`` is forgotten.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from tether.exceptions import ConfigError
from tether.spec.principal import Principal
from tether.store.sql import SQLStore
from tether.store.tables import api_keys, idempotency

__all__ = ["ROLES", "ApiKey", "IdempotencyRecord", "IdempotencyStore", "KeyStore"]

#: the roles a key may hold
ROLES = ("user", "approver", "admin")
_PREFIX = "tk_"


def well_formed(token: str) -> bool:
    """Whether ``token`` has a key's shape (``tk_<id>_<secret>``, at most 200 characters)."""
    if not token.startswith(_PREFIX) or len(token) > 200:
        return False
    key_id, sep, secret = token[len(_PREFIX) :].partition("_")
    return bool(sep and key_id and secret)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key (never its secret)."""

    id: str
    name: str
    principal: Principal
    created_at: float
    revoked_at: float | None = None
    last_used_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        p = self.principal
        return {
            "id": self.id,
            "name": self.name,
            "user": p.user,
            "tenant": p.tenant,
            "roles": sorted(p.roles),
            "scopes": None if p.scopes is None else sorted(p.scopes),
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
            "last_used_at": self.last_used_at,
        }


def _row_key(row: Any) -> ApiKey:
    scopes = None if row.scopes is None else frozenset(json.loads(row.scopes))
    return ApiKey(
        id=row.id,
        name=row.name,
        principal=Principal(
            user=row.user_id,
            tenant=row.tenant_id,
            roles=frozenset(json.loads(row.roles)),
            scopes=scopes,
        ),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


class KeyStore:
    """API keys in the store's database."""

    def __init__(self, store: SQLStore, *, clock: Any = time.time) -> None:
        self._engine = store.engine
        self.clock = clock

    async def create(
        self,
        *,
        user: str,
        name: str | None = None,
        tenant: str | None = None,
        roles: frozenset[str] | set[str] = frozenset({"user"}),
        scopes: frozenset[str] | set[str] | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key for ``user``; returns it and the secret token (shown once, never stored)."""
        bad = set(roles) - set(ROLES)
        if bad:
            raise ConfigError(
                f"unknown role(s) {sorted(bad)}; a key's roles are among {', '.join(ROLES)}"
            )
        principal = Principal(
            user=user,
            tenant=tenant,
            roles=frozenset(roles),
            scopes=None if scopes is None else frozenset(scopes),
        )
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        now = self.clock()
        row = {
            "id": key_id,
            "secret_hash": _hash(secret),
            "name": name or user,
            "user_id": user,
            "tenant_id": tenant,
            "roles": json.dumps(sorted(principal.roles)),
            "scopes": None if principal.scopes is None else json.dumps(sorted(principal.scopes)),
            "created_at": now,
        }
        async with self._engine.begin() as conn:
            await conn.execute(api_keys.insert().values(**row))
        key = ApiKey(id=key_id, name=row["name"], principal=principal, created_at=now)
        return key, f"{_PREFIX}{key_id}_{secret}"

    async def list(self, *, include_revoked: bool = False) -> list[ApiKey]:
        q = sa.select(api_keys).order_by(api_keys.c.created_at)
        if not include_revoked:
            q = q.where(api_keys.c.revoked_at.is_(None))
        async with self._engine.connect() as conn:
            return [_row_key(r) for r in (await conn.execute(q)).all()]

    async def count(self) -> int:
        q = sa.select(sa.func.count()).select_from(api_keys)
        q = q.where(api_keys.c.revoked_at.is_(None))
        async with self._engine.connect() as conn:
            return int((await conn.execute(q)).scalar_one())

    async def revoke(self, key_id: str) -> bool:
        """Revoke ``key_id`` (an id or a whole token); ``False`` if no such live key."""
        if key_id.startswith(_PREFIX):
            key_id = key_id[len(_PREFIX) :].split("_", 1)[0]
        q = (
            api_keys.update()
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=self.clock())
        )
        async with self._engine.begin() as conn:
            return bool((await conn.execute(q)).rowcount)

    async def authenticate(self, token: str) -> ApiKey | None:
        """The live key ``token`` is, or ``None`` (unknown, malformed or revoked)."""
        if not well_formed(token):
            return None
        key_id, _sep, secret = token[len(_PREFIX) :].partition("_")
        q = sa.select(api_keys).where(api_keys.c.id == key_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(q)).first()
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.secret_hash, _hash(secret)):
            return None
        return _row_key(row)


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """The first request sent with a key, and its outcome once it has one."""

    owner: str
    key: str
    fingerprint: str
    created_at: float
    session_id: str | None = None
    first_seq: int | None = None
    status_code: int | None = None
    body: Any = None

    @property
    def done(self) -> bool:
        return self.status_code is not None


def _row_record(row: Any) -> IdempotencyRecord:
    return IdempotencyRecord(
        owner=row.owner,
        key=row.key,
        fingerprint=row.fingerprint,
        created_at=row.created_at,
        session_id=row.session_id,
        first_seq=row.first_seq,
        status_code=row.status_code,
        body=None if row.body is None else json.loads(row.body),
    )


class IdempotencyStore:
    """First outcomes of keyed POSTs, shared by every replica."""

    def __init__(self, store: SQLStore, *, ttl: float = 24 * 3600, clock: Any = time.time) -> None:
        self._engine = store.engine
        self.ttl = ttl
        self.clock = clock

    async def begin(self, owner: str, key: str, fingerprint: str) -> tuple[bool, IdempotencyRecord]:
        """Claim ``key`` for ``owner``: ``(True, record)`` if this request is the first,
        else ``(False, the existing record)``. An expired record is replaced."""
        now = self.clock()
        row = {"owner": owner, "key": key, "fingerprint": fingerprint, "created_at": now}
        for _ in range(3):
            try:
                async with self._engine.begin() as conn:
                    await conn.execute(idempotency.insert().values(**row))
                return True, IdempotencyRecord(owner, key, fingerprint, now)
            except IntegrityError:
                pass
            existing = await self.get(owner, key)
            if existing is None:  # deleted between our insert and read: try again
                continue
            if existing.created_at >= now - self.ttl:
                return False, existing
            async with self._engine.begin() as conn:  # expired: forget it and claim again
                await conn.execute(
                    idempotency.delete().where(
                        idempotency.c.owner == owner,
                        idempotency.c.key == key,
                        idempotency.c.created_at == existing.created_at,
                    )
                )
        raise ConfigError(f"idempotency key {key!r} is contended; retry the request")

    async def started(self, owner: str, key: str, *, session_id: str, first_seq: int) -> None:
        """Record the session and first event of the turn this request runs."""
        q = (
            idempotency.update()
            .where(idempotency.c.owner == owner, idempotency.c.key == key)
            .values(session_id=session_id, first_seq=first_seq)
        )
        async with self._engine.begin() as conn:
            await conn.execute(q)

    async def finish(self, owner: str, key: str, status_code: int, body: Any) -> None:
        q = (
            idempotency.update()
            .where(idempotency.c.owner == owner, idempotency.c.key == key)
            .values(
                status_code=status_code,
                body=json.dumps(body, separators=(",", ":"), default=str),
                done_at=self.clock(),
            )
        )
        async with self._engine.begin() as conn:
            await conn.execute(q)

    async def forget(self, owner: str, key: str) -> None:
        """Drop a claim whose request failed before doing anything (the client may retry)."""
        q = idempotency.delete().where(idempotency.c.owner == owner, idempotency.c.key == key)
        async with self._engine.begin() as conn:
            await conn.execute(q)

    async def get(self, owner: str, key: str) -> IdempotencyRecord | None:
        q = sa.select(idempotency).where(idempotency.c.owner == owner, idempotency.c.key == key)
        async with self._engine.connect() as conn:
            row = (await conn.execute(q)).first()
        return None if row is None else _row_record(row)

    async def purge(self) -> int:
        """Forget records older than ``ttl``; returns how many."""
        q = idempotency.delete().where(idempotency.c.created_at < self.clock() - self.ttl)
        async with self._engine.begin() as conn:
            return int((await conn.execute(q)).rowcount)
