"""Users, tokens, dashboard sessions and licences: each write a short transaction of its own."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from annoray.platform.access import licenses, tokens
from annoray.platform.access.tokens import Caller
from annoray.platform.errors import Conflict, Errors, NotFound
from annoray.platform.services import Writes
from annoray.platform.store.repositories import ApiTokenRepository, UserRepository, WebSessionRepository
from annoray.platform.store.tables import ApiToken, AuditEvent, TokenScope, User
from annoray.platform.store.tokens import new_token


def create_user(writes: Writes, username: str, *, service: bool) -> tuple[User, str]:
    """A user (or a service account) and its own token, shown this once."""
    with writes.begin() as session:
        repo = UserRepository(session)
        if repo.by_username(username) is not None:
            raise Conflict(Errors.E501.format(username=username))
        token = new_token()
        return repo.add(username, token, is_service=service), token


def rotate_own_token(writes: Writes, caller: Caller) -> tuple[User, str]:
    with writes.begin() as session:
        return tokens.rotate_own_token(session, caller)


def set_active(writes: Writes, admin: User, username: str, active: bool) -> User:
    with writes.begin() as session:
        return tokens.set_active(session, admin, username, active, datetime.now(UTC))


def create_token(writes: Writes, caller: Caller, username: str | None, *, name: str, scope: TokenScope,
                 expires_in_days: int | None) -> tuple[ApiToken, str, str]:
    """A named token of the caller (or, for an admin, of ``username``), its secret, and its owner's name."""
    with writes.begin() as session:
        owner = caller.user if username is None else UserRepository(session).by_username(username)
        if owner is None:
            raise NotFound("user", username)
        expires_at = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days is not None else None
        token, secret = tokens.create_token(session, caller, owner, name=name, scope=scope, expires_at=expires_at)
        return token, secret, owner.username


def revoke_token(writes: Writes, caller: Caller, token_id: int) -> ApiToken:
    with writes.begin() as session:
        return tokens.revoke_token(session, caller, token_id, datetime.now(UTC))


def open_web_session(writes: Writes, user_id: int, hours: float) -> str:
    """A dashboard session for the user (expired ones end meanwhile): its key, for the cookie."""
    key, now = secrets.token_urlsafe(32), datetime.now(UTC)
    with writes.begin() as session:
        repo = WebSessionRepository(session)
        repo.end_expired(now)
        repo.add(key, user_id, secrets.token_urlsafe(32), now + timedelta(hours=hours))
    return key


SIGN_IN_LINK_MINUTES = 60


def sign_in_link(writes: Writes, token: str) -> str:
    """A path that signs the owner of ``token`` in to the dashboard once, within the hour; the store keeps only its
    hash (``annoray up`` prints one for the admin)."""
    code = secrets.token_urlsafe(32)
    with writes.begin() as session:
        user = UserRepository(session).by_token(token)
        if user is None:
            raise NotFound("user with this token", "")
        WebSessionRepository(session).add(code, user.id, "", datetime.now(UTC) + timedelta(minutes=SIGN_IN_LINK_MINUTES),
                                          one_time=True)
    return f"/ui/sign-in/{code}"


def redeem_sign_in_link(writes: Writes, code: str) -> int | None:
    """The user a one-time sign-in link opens for (the link is gone then); None for one used, expired or unknown."""
    with writes.begin() as session:
        return WebSessionRepository(session).redeem(code, datetime.now(UTC))


def end_web_session(writes: Writes, key: str) -> None:
    with writes.begin() as session:
        WebSessionRepository(session).end(key)


def install_license(writes: Writes, document: Any, issuers: dict[str, str]) -> dict[str, Any]:
    """Install a licence; its view (scopes, seats, expiry)."""
    now = datetime.now(UTC)
    with writes.begin() as session:
        license_id = licenses.install_license(session, document, issuers, now).id
        return next(v for v in licenses.license_views(session, now) if v["id"] == license_id)


def uninstall_license(writes: Writes, license_id: int) -> None:
    with writes.begin() as session:
        licenses.uninstall_license(session, license_id)


def note_token_uses(writes: Writes, uses: dict[int, datetime], every: timedelta) -> None:
    """The last uses of tokens the API noted in memory, written at most once per ``every`` per token."""
    with writes.begin() as session:
        repository = ApiTokenRepository(session)
        for token_id, at in uses.items():
            repository.touch(token_id, at, every)


def record_audit(writes: Writes, event: dict[str, Any]) -> None:
    """One request's line of the audit trail (who, what, the answer)."""
    with writes.begin() as session:
        session.add(AuditEvent(**event))
