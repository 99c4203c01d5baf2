"""Who may read what: the roles table, in one place, and the marker a GraphQL field carries.

Roles are ordered; each one sees everything the roles before it see:

| role | may read |
|---|---|
| ``viewer`` | aggregates: funnels, trends, dashboard, top paths, sentiment, realtime metrics, health |
| ``analyst`` | + user-level data: users, sessions, journeys, similar users, drop-off and converted lists |
| ``admin`` | + mutations (cache invalidation, refreshes) and raw form ``value``s (PII), masked for the others |

A field declares its role with one marker in its metadata, like the response cache's ``volatile()``::

    @strawberry.field(metadata=requires(Role.ANALYST))
    @strawberry.field(metadata=volatile() | requires(Role.VIEWER))
    value: str | None = strawberry.field(metadata=requires(Role.ADMIN, masked=True))

Rules (enforced before execution by ``gateway/security/analysis.py``):
  * every root field (Query, Mutation, Subscription) names its role; an UNMARKED root field needs
    ``admin`` (fail safe: a field nobody classified is not served to lower roles, and
    ``tests/security/test_roles_table.py`` fails until it is marked);
  * a field below the root inherits the role of the path that reached it, unless it is marked with a
    higher one;
  * ``masked=True``: a lower role may select the field and reads ``null`` (no error), instead of being
    refused with ``FORBIDDEN``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class Role(IntEnum):
    VIEWER = 1
    ANALYST = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, name: str) -> Role:
        """``viewer``/``analyst``/``admin`` (any case); ValueError naming the choices otherwise."""
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown role {name!r} (choose {', '.join(NAMES)})") from None


NAMES = tuple(role.label for role in Role)

# What each role adds, for the README, the CLI help and error messages.
TABLE: Mapping[Role, str] = {
    Role.VIEWER: "aggregates: funnels, trends, dashboard, top paths, sentiment, realtime metrics, health",
    Role.ANALYST: "+ user-level data: users, sessions, journeys, similar users, drop-off/converted lists",
    Role.ADMIN: "+ mutations (cache invalidation, refreshes) and raw form values (PII)",
}

_ROLE = "funnelgate.role"
_MASKED = "funnelgate.masked"


def requires(role: Role, *, masked: bool = False) -> dict[str, Any]:
    """Field metadata: reading this field needs ``role``; with ``masked`` lower roles read null instead."""
    return {_ROLE: role, _MASKED: masked} if masked else {_ROLE: role}


def marked_role(metadata: Mapping[str, Any] | None) -> Role | None:
    """The role a field's metadata names, None when it carries no marker."""
    value = (metadata or {}).get(_ROLE)
    return Role(value) if value is not None else None


def is_masked(metadata: Mapping[str, Any] | None) -> bool:
    return bool((metadata or {}).get(_MASKED))


@dataclass(frozen=True)
class Principal:
    """Who is asking: ``subject`` names the credential (``key:ci-dashboard``, ``jwt:alice``) or, with
    authentication off, the client address (``anonymous``)."""

    subject: str
    role: Role
    authenticated: bool = True

    def may(self, role: Role) -> bool:
        return self.role >= role


# With authentication off (allowed on a loopback bind only) the local operator is trusted fully.
ANONYMOUS = Principal("anonymous", Role.ADMIN, authenticated=False)
# With authentication on, a WebSocket before its connection_init: refused everything until it authenticates.
NOBODY = Principal("nobody", Role.VIEWER, authenticated=False)
