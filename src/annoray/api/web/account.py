"""Signing in and out: with an API token, or once with a sign-in link that ``annoray up`` prints for the admin."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session, sessionmaker

from annoray.api.deps import Id, SessionDep, SettingsDep, WritesDep, get_admin
from annoray.api.web.common import COOKIE, VisitorDep, check_csrf, page, same, set_cookie
from annoray.platform.access.tokens import Caller
from annoray.platform.errors import Errors
from annoray.platform.services import access
from annoray.platform.settings import Settings
from annoray.platform.store.repositories import ApiTokenRepository, AuditRepository, UserRepository
from annoray.platform.store.tables import TokenScope

router = APIRouter(prefix="/ui", include_in_schema=False)

LOGIN_CSRF = "annoray_login_csrf"  # double-submit token of the sign-in form (there is no session yet)
AUDIT_ROWS = 50  # the newest audit events on the admin page (the API and `annoray audit` filter and page them all)


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request) -> HTMLResponse:
    return _sign_in_form(request)


def _sign_in_form(request: Request, error: str | None = None, status_code: int = 200) -> HTMLResponse:
    csrf = secrets.token_urlsafe(32)
    response = page(request, "sign_in.html", None, status_code, csrf=csrf, error=error)
    set_cookie(request, response, LOGIN_CSRF, csrf, 600)
    return response


@router.post("/sign-in")
def sign_in(request: Request, session: SessionDep, writes: WritesDep, settings: SettingsDep, token: Annotated[str, Form()] = "",
            csrf: Annotated[str, Form()] = "") -> Response:
    """A user's own API token opens a session (a named automation token does not, nor a service account's);
    anything else shows the form again with the reason."""
    if not same(csrf, request.cookies.get(LOGIN_CSRF, "")):
        return _sign_in_form(request, Errors.E408)
    user = UserRepository(session).by_token(token.strip()) if token.strip() else None
    if user is None:
        return _sign_in_form(request, Errors.E407, 401)
    if user.is_service:
        return _sign_in_form(request, Errors.E413.format(username=user.username), 403)
    return _open_session(request, writes, settings, user.id)


@router.get("/sign-in/{code}")
def sign_in_once(request: Request, writes: WritesDep, settings: SettingsDep, code: str) -> Response:
    """A one-time sign-in link: it opens a session and is gone; used again, or after its hour, it shows the form."""
    user_id = access.redeem_sign_in_link(writes, code)
    if user_id is None:
        return _sign_in_form(request, Errors.E409, 401)
    return _open_session(request, writes, settings, user_id)


def _open_session(request: Request, writes: sessionmaker[Session], settings: Settings, user_id: int) -> Response:
    key = access.open_web_session(writes, user_id, settings.api.session_hours)
    response = RedirectResponse("/ui/", status_code=303)
    set_cookie(request, response, COOKIE, key, int(settings.api.session_hours * 3600))
    response.delete_cookie(LOGIN_CSRF, path="/")
    return response


@router.post("/sign-out")
def sign_out(v: VisitorDep, writes: WritesDep, csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(v, csrf)
    access.end_web_session(writes, v.key)
    response = RedirectResponse("/ui/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


# --- your account, and the admin's users, tokens and audit log ------------------------------------------------------


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, v: VisitorDep) -> HTMLResponse:
    return page(request, "account.html", v)


@router.post("/account/token", response_class=HTMLResponse)
def rotate_token(request: Request, v: VisitorDep, writes: WritesDep, csrf: Annotated[str, Form()] = "") -> HTMLResponse:
    """A new own token, shown this once on the page; the old one stops at once (the session goes on)."""
    check_csrf(v, csrf)
    _, secret = access.rotate_own_token(writes, Caller(v.user, None, TokenScope.ADMIN if v.user.is_admin else TokenScope.WRITE))
    return page(request, "account.html", v, token=secret)


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request, v: VisitorDep, session: SessionDep, notice: str = "") -> HTMLResponse:
    """Users (disable, enable), every named token (revoke) and the newest audit events. Admins."""
    get_admin(v.user)
    events, total = AuditRepository(session).page(limit=AUDIT_ROWS)
    return page(request, "admin.html", v, users=UserRepository(session).all(), tokens=ApiTokenRepository(session).of_user(None),
                last_used=request.app.state.token_uses.last, events=events, total=total, notice=notice)


@router.post("/admin/users/{username}")
def set_user_active(v: VisitorDep, writes: WritesDep, username: Annotated[str, Path(max_length=150)],
                    active: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(v, csrf)
    get_admin(v.user)
    enable = active == "true"
    access.set_active(writes, v.user, username, enable)
    return RedirectResponse(f"/ui/admin?notice={username}+{'enabled' if enable else 'disabled'}", status_code=303)


@router.post("/admin/tokens/{tid}/revoke")
def revoke(v: VisitorDep, writes: WritesDep, tid: Id, csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(v, csrf)
    get_admin(v.user)
    access.revoke_token(writes, Caller(v.user, None, TokenScope.ADMIN), tid)
    return RedirectResponse(f"/ui/admin?notice=token+{tid}+revoked", status_code=303)


