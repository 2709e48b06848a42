from datetime import datetime

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status

from annoray.api.deps import AdminUser, CallerDep, CurrentUser, Id, SessionDep, WritesDep
from annoray.api.schemas import TokenCreate, TokenCreated, TokenOut, UserCreate, UserCreated, UserOut, UserUpdate
from annoray.platform.errors import Errors, Forbidden
from annoray.platform.services import access
from annoray.platform.store.repositories import ApiTokenRepository, UserRepository
from annoray.platform.store.tables import ApiToken

router = APIRouter(tags=["users"])


@router.post("/api/users", response_model=UserCreated, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, writes: WritesDep, _: AdminUser) -> UserCreated:
    """A user, or with ``service`` a service account for pipelines; its own API token is shown this once."""
    user, token = access.create_user(writes, body.username, service=body.service)
    return UserCreated(id=user.id, username=user.username, is_admin=user.is_admin, is_service=user.is_service, token=token)


@router.get("/api/users", response_model=list[UserOut])
def list_users(session: SessionDep, _: AdminUser) -> list[UserOut]:
    """Every user, disabled ones too (admin)."""
    return [UserOut.model_validate(u) for u in UserRepository(session).all()]


@router.get("/api/users/me", response_model=UserOut)
def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)


@router.post("/api/users/me/token", response_model=UserCreated)
def rotate_my_token(caller: CallerDep, writes: WritesDep) -> UserCreated:
    """Replace your own API token: the old one stops at once, the new one is shown this once. Send it with the token
    it replaces (a named token may not)."""
    user, secret = access.rotate_own_token(writes, caller)
    return UserCreated(**UserOut.model_validate(user).model_dump(), token=secret)


@router.patch("/api/users/{username}", response_model=UserOut)
def update_user(username: Annotated[str, Path(max_length=150)], body: UserUpdate, writes: WritesDep, admin: AdminUser) -> UserOut:
    """Disable a user (``active: false``: every token and dashboard session of theirs stops at once) or enable them
    again (with no token: make them one with POST /api/tokens). Admin."""
    user = access.set_active(writes, admin, username, body.active)
    return UserOut.model_validate(user)


def token_out(token: ApiToken, username: str, last_used_at: datetime | None) -> TokenOut:
    return TokenOut(id=token.id, name=token.name, username=username, scope=token.scope, created_at=token.created_at,
                    expires_at=token.expires_at, last_used_at=last_used_at, revoked_at=token.revoked_at)


@router.post("/api/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def create_api_token(body: TokenCreate, caller: CallerDep, writes: WritesDep) -> TokenCreated:
    """A named token for automation, shown this once: a scope no wider than the token this request came with, an
    expiry (default 90 days). Admins may make one for another user, such as a service account."""
    token, secret, owner = access.create_token(writes, caller, body.username, name=body.name, scope=body.scope,
                                               expires_in_days=body.expires_in_days)
    return TokenCreated(**token_out(token, owner, None).model_dump(), token=secret)


@router.get("/api/tokens", response_model=list[TokenOut])
def list_api_tokens(request: Request, caller: CallerDep, session: SessionDep,
                    all_users: bool = Query(False, alias="all", description="Every user's tokens (admins only).")) -> list[TokenOut]:
    """The caller's named tokens, newest first (never their secrets)."""
    if all_users and not caller.user.is_admin:
        raise Forbidden(Errors.E403.format(action="list every user's tokens"))
    uses = request.app.state.token_uses
    return [token_out(t, name, uses.last(t.id, t.last_used_at))
            for t, name in ApiTokenRepository(session).of_user(None if all_users else caller.user.id)]


@router.delete("/api/tokens/{tid}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_api_token(tid: Id, caller: CallerDep, writes: WritesDep) -> None:
    """Revoke a token at once (its requests get 401 from now on); the token stays listed, revoked."""
    access.revoke_token(writes, caller, tid)
