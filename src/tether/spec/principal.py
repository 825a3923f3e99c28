"""Who is acting on a session: :class:`Principal`.

A session stores the principal that created it. Later calls on the session
may *narrow* it (fewer scopes, fewer roles), never widen it: what the
session may do is decided once, when it is created, by whoever created it,
and an approval decided later, or a resume after a crash, acts with the
stored scopes, not with the decider's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tether.exceptions import AccessDenied, ConfigError

__all__ = ["ANYONE", "Principal"]


def _names(value: Iterable[str] | None, what: str) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise ConfigError(f"{what} must be a collection of names, not the string {value!r}")
    names = frozenset(value)
    for n in names:
        if not isinstance(n, str) or not n.strip():
            raise ConfigError(f"{what} must be non-empty strings, got {n!r}")
    return names


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """A user (or service) acting on sessions.

    - ``user``: the user id (``None``: anonymous);
    - ``tenant``: the organisation the user belongs to, if any;
    - ``roles``: e.g. ``{"approver"}`` (see ``ApprovalPolicy.approver_role``);
    - ``scopes``: what the caller may trigger: a tool declared with
      ``scopes={"refunds"}`` is offered and run only for a principal
      holding ``refunds``. ``None`` means a trusted caller: every tool.
    """

    user: str | None = None
    tenant: str | None = None
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] | None = None

    def __post_init__(self) -> None:
        for name in ("user", "tenant"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, str) or not v.strip() or len(v) > 255):
                raise ConfigError(f"Principal.{name} must be 1 to 255 characters, got {v!r}")
        if self.roles:  # the common, empty case needs no check
            object.__setattr__(self, "roles", _names(self.roles, "Principal.roles"))
        elif type(self.roles) is not frozenset:
            object.__setattr__(self, "roles", frozenset())
        if self.scopes is not None:
            object.__setattr__(self, "scopes", _names(self.scopes, "Principal.scopes"))

    def narrow(self, other: Principal | None) -> Principal:
        """This principal limited by ``other`` (a later call): never wider than either.

        ``other`` must be the same user and tenant (``None`` in ``other``
        keeps this one's); its roles and scopes are intersected with these.
        Raises :class:`~tether.exceptions.AccessDenied` if it names another
        user or tenant: a session is not handed from one user to another.
        """
        if other is None or other is self:
            return self
        for name in ("user", "tenant"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if theirs is not None and mine != theirs:
                if mine is None:
                    raise AccessDenied(
                        f"this session was started with no {name}; a call as {name} "
                        f"{theirs!r} cannot claim it (continue it without naming a {name})"
                    )
                raise AccessDenied(
                    f"this session belongs to {name} {mine!r}; a call as {name} {theirs!r} "
                    "cannot act on it"
                )
        if other.scopes is None:
            scopes = self.scopes
        elif self.scopes is None:
            scopes = other.scopes
        else:
            scopes = self.scopes & other.scopes
        return Principal(
            user=self.user, tenant=self.tenant, roles=self.roles & other.roles, scopes=scopes
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "tenant": self.tenant,
            "roles": sorted(self.roles),
            "scopes": None if self.scopes is None else sorted(self.scopes),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Principal:
        if not (d.get("user") or d.get("tenant") or d.get("roles")) and d.get("scopes") is None:
            return ANYONE
        scopes = d.get("scopes")
        return cls(
            user=d.get("user"),
            tenant=d.get("tenant"),
            roles=frozenset(d.get("roles") or ()),
            scopes=None if scopes is None else frozenset(scopes),
        )


#: an anonymous, unrestricted caller (the library's default)
ANYONE = Principal()
