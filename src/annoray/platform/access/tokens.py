"""Who a request is: its bearer token read as a user and a scope.

A user's own token (made with the user, or the admin token of `annoray up`) has every right the user has. Named
tokens are for automation: each has a scope, an expiry and a last-used time, is shown once and can be revoked. A
token's scope narrows its holder's rights, never widens them: ``read`` may only read, ``write`` acts with the user's
project roles but none of an admin's rights, ``admin`` is everything the user may do (only an admin's token can be
one)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from annoray.platform.errors import ErrorDetail, Errors, Forbidden, InvalidInput, NotFound, Unauthorized
from annoray.platform.store.repositories import ApiTokenRepository, UserRepository, WebSessionRepository, aware
from annoray.platform.store.tables import ApiToken, TokenScope, User
from annoray.platform.store.tokens import hash_token, new_token

RANK = {TokenScope.READ: 0, TokenScope.WRITE: 1, TokenScope.ADMIN: 2}
TOUCH_EVERY = timedelta(minutes=1)
"""How stale a token's last-used time may get: a read must not write on every request."""


@dataclass(frozen=True)
class Caller:
    """The user a request acts as, the named token it came with (None: the user's own token) and that token's scope."""

    user: User
    token: ApiToken | None
    scope: TokenScope


def authenticate(session: Session, secret: str, now: datetime) -> Caller:
    """The caller a bearer token stands for; unknown (E401), revoked or expired (E410) tokens are refused."""
    if not secret:
        raise Unauthorized()
    user = UserRepository(session).by_token(secret)
    if user is not None and not user.active:
        raise Unauthorized(Errors.E415.format(username=user.username))
    if user is not None:
        return Caller(user, None, TokenScope.ADMIN if user.is_admin else TokenScope.WRITE)
    found = ApiTokenRepository(session).by_secret(secret)
    if found is None:
        raise Unauthorized()
    token, user = found
    if not user.active:
        raise Unauthorized(Errors.E415.format(username=user.username))
    if token.revoked_at is not None:
        raise Unauthorized(Errors.E410.format(what=f"revoked at {aware(token.revoked_at):%Y-%m-%d %H:%M} UTC"))
    if token.expires_at is not None and aware(token.expires_at) <= now:
        raise Unauthorized(Errors.E410.format(what=f"valid until {aware(token.expires_at):%Y-%m-%d %H:%M} UTC"))
    return Caller(user, token, token.scope)


def check_scope(caller: Caller, method: str) -> None:
    if caller.scope is TokenScope.READ and method not in ("GET", "HEAD"):
        raise Forbidden(Errors.E411)


def create_token(session: Session, caller: Caller, owner: User, *, name: str, scope: TokenScope,
                 expires_at: datetime | None) -> tuple[ApiToken, str]:
    """A named token of ``owner`` and its secret (shown this once). Nobody makes a token wider than the one they
    came with, an admin-scope token is an admin's, and only an admin makes tokens for another user."""
    if owner.id != caller.user.id and not (caller.user.is_admin and caller.scope is TokenScope.ADMIN):
        raise Forbidden(Errors.E403.format(action="make a token for another user"))
    why, field = None, "scope"
    if RANK[scope] > RANK[caller.scope]:
        why = (f"with a '{caller.scope.value}' token: use a token at least as wide" if caller.token is not None
               else f"by '{caller.user.username}', who is not an admin")
    elif scope is TokenScope.ADMIN and not owner.is_admin:
        why = f"for '{owner.username}', who is not an admin"
    elif expires_at is not None and expires_at <= datetime.now(UTC):
        why, field = "already expired: give an expiry in the future", "expires_in_days"
    elif (limit := _expiry_of(caller)) is not None and (expires_at is None or expires_at > limit):
        why, field = (f"to outlive the token this request came with (valid until {limit:%Y-%m-%d %H:%M} UTC): give "
                      "expires_in_days that ends before it"), "expires_in_days"
    if why is not None:
        error = Errors.E412.format(scope=scope.value, why=why)
        raise InvalidInput(error, [ErrorDetail(error, field=field)])
    secret = new_token()
    token = ApiTokenRepository(session).add(ApiToken(user_id=owner.id, name=name, token_hash=hash_token(secret), scope=scope,
                                                     expires_at=expires_at))
    return token, secret


def _expiry_of(caller: Caller) -> datetime | None:
    """When the token a request came with stops working (None: never); no token it makes may outlive it."""
    return aware(caller.token.expires_at) if caller.token is not None and caller.token.expires_at is not None else None


def revoke_token(session: Session, caller: Caller, token_id: int, now: datetime) -> ApiToken:
    """Revoke a token (the owner's or, for an admin, anyone's); revoking twice changes nothing."""
    token = ApiTokenRepository(session).get(token_id)
    if token.user_id != caller.user.id and not caller.user.is_admin:
        raise Forbidden(Errors.E414.format(token_id=token_id))
    if token.revoked_at is None:
        token.revoked_at = now
    return token


def set_active(session: Session, admin: User, username: str, active: bool, now: datetime) -> User:
    """Disable a user (every token and dashboard session of theirs stops at once; their own token is replaced by one
    nobody holds) or enable them again (with no token: an admin makes them one)."""
    user = UserRepository(session).by_username(username)
    if user is None:
        raise NotFound("user", username)
    if not active and user.id == admin.id:
        raise Forbidden(Errors.E416)
    if not active and user.active:
        user.token_hash = hash_token(new_token())
        ApiTokenRepository(session).revoke_all(user.id, now)
        WebSessionRepository(session).end_all(user.id)
    user.active = active
    return user


def rotate_own_token(session: Session, caller: Caller) -> tuple[User, str]:
    """A new own token for the caller, shown once; the old one stops at once. Only the own token (or a dashboard
    session, which it opened) may do it: a named token never widens itself."""
    if caller.token is not None:
        raise Forbidden(Errors.E417)
    user = session.get(User, caller.user.id)
    assert user is not None, "the caller was just authenticated"
    secret = new_token()
    user.token_hash = hash_token(secret)
    return user, secret
