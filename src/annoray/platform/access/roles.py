"""Who may do what in a project (roles per project; admins are platform-wide)."""

from __future__ import annotations

from annoray.platform.errors import Errors, Forbidden
from annoray.platform.store.tables import Role

OWNER_MANAGER = frozenset({Role.OWNER, Role.MANAGER})
REVIEWERS = frozenset({Role.REVIEWER, Role.OWNER, Role.MANAGER})
OWNER = frozenset({Role.OWNER})
ANY_MEMBER = frozenset(Role)


def require_role(role: Role, allowed: frozenset[Role], action: str) -> None:
    if role not in allowed:
        raise Forbidden(Errors.E402.format(
            role=role.value, action=action, allowed=", ".join(sorted(r.value for r in allowed))
        ))
