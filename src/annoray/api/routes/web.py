"""The dashboard: pages rendered by the app (Jinja2, with htmx for the parts that update live), signed in with an API
token. The session lives in an HttpOnly, SameSite=Strict cookie whose key the store keeps hashed; every form that
changes something carries the session's CSRF token. Every page applies the API's role rules and shows only what its
user may see: it reads and acts through the same repositories and services as the API."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from annoray.api.deps import SchedulerDep, SessionDep, SessionsDep, SettingsDep, membership_of
from annoray.platform.access.roles import OWNER_MANAGER
from annoray.api.errors import STATUS
from annoray.platform.errors import AnnorayError, Errors, Forbidden
from annoray.platform.labeling.projects import project_config
from annoray.platform.models.training import TrainingParams
from annoray.platform.models.training_log import log_text
from annoray.platform.store.repositories import (
    ProjectRepository, TrainingJobRepository, TrainingLogRepository, UserRepository, WebSessionRepository,
)
from annoray.platform.store.tables import User, WebSession
from annoray.scheduler import TrainingRequest, request_trainings

router = APIRouter(prefix="/ui", include_in_schema=False)
templates = Jinja2Templates(directory=str(resources.files("annoray.api") / "templates"))

COOKIE = "annoray_session"
LOGIN_CSRF = "annoray_login_csrf"  # double-submit token of the sign-in form (there is no session yet)


@dataclass
class Visitor:
    """A signed-in person: their user and their session (whose CSRF token the forms carry)."""

    user: User
    session: WebSession
    key: str


class NotSignedIn(Exception):
    """Handled by sending the browser to the sign-in page."""


def visitor(request: Request, session: SessionDep) -> Visitor:
    key = request.cookies.get(COOKIE, "")
    found = WebSessionRepository(session).live(key, datetime.now(UTC)) if key else None
    if found is None:
        raise NotSignedIn()
    return Visitor(found[1], found[0], key)


VisitorDep = Annotated[Visitor, Depends(visitor)]


def _same(given: str, expected: str) -> bool:
    """A constant-time comparison that takes any text a form may send."""
    return bool(expected) and secrets.compare_digest(given.encode(), expected.encode())


def _check_csrf(v: Visitor, csrf: str) -> None:
    if not _same(csrf, v.session.csrf):
        raise Forbidden(Errors.E408)


def _page(request: Request, name: str, v: Visitor | None, status_code: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, {"user": v.user if v else None, "csrf": v.session.csrf if v else "", **context},
                                      status_code=status_code)


def _cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                        path="/")


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request) -> HTMLResponse:
    return _sign_in_form(request)


def _sign_in_form(request: Request, error: str | None = None) -> HTMLResponse:
    csrf = secrets.token_urlsafe(32)
    response = _page(request, "sign_in.html", None, csrf=csrf, error=error)
    _cookie(request, response, LOGIN_CSRF, csrf, 600)
    return response


@router.post("/sign-in")
def sign_in(request: Request, session: SessionDep, settings: SettingsDep, token: Annotated[str, Form()] = "",
            csrf: Annotated[str, Form()] = "") -> Response:
    """A valid API token opens a session; anything else shows the form again with the reason."""
    if not _same(csrf, request.cookies.get(LOGIN_CSRF, "")):
        return _sign_in_form(request, Errors.E408)
    user = UserRepository(session).by_token(token.strip()) if token.strip() else None
    if user is None:
        response = _sign_in_form(request, Errors.E407)
        response.status_code = 401
        return response
    key, now = secrets.token_urlsafe(32), datetime.now(UTC)
    sessions = WebSessionRepository(session)
    sessions.end_expired(now)
    sessions.add(key, user.id, secrets.token_urlsafe(32), now + timedelta(hours=settings.api.session_hours))
    session.commit()
    response = RedirectResponse("/ui/", status_code=303)
    _cookie(request, response, COOKIE, key, int(settings.api.session_hours * 3600))
    response.delete_cookie(LOGIN_CSRF, path="/")
    return response


@router.post("/sign-out")
def sign_out(v: VisitorDep, session: SessionDep, csrf: Annotated[str, Form()] = "") -> Response:
    _check_csrf(v, csrf)
    WebSessionRepository(session).end(v.key)
    session.commit()
    response = RedirectResponse("/ui/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/", response_class=HTMLResponse)
def projects_page(request: Request, v: VisitorDep, session: SessionDep) -> HTMLResponse:
    repo = ProjectRepository(session)
    projects = []
    for project in repo.for_user(v.user.id):
        config = project_config(project)
        projects.append({"id": project.id, "name": project.name, "role": repo.member(project.id, v.user.id).role.value,  # type: ignore[union-attr]
                         "kinds": [k.value for k in config.kinds], "language": project.language})
    return _page(request, "projects.html", v, projects=projects)


def _project_context(session: Any, v: Visitor, pid: int) -> dict[str, Any]:
    m = membership_of(session, v.user, pid)
    config = project_config(m.project)
    return {"project": m.project, "role": m.member.role.value, "can_train": m.member.role in OWNER_MANAGER,
            "kinds": [(k.value, list(config.group(k).labels)) for k in config.kinds if config.group(k) is not None],
            "jobs": TrainingJobRepository(session).for_project(pid)}


@router.get("/projects/{pid}", response_class=HTMLResponse)
def project_page(request: Request, v: VisitorDep, session: SessionDep, pid: int) -> HTMLResponse:
    return _page(request, "project.html", v, **_project_context(session, v, pid))


@router.get("/projects/{pid}/trainings", response_class=HTMLResponse)
def trainings_part(request: Request, v: VisitorDep, session: SessionDep, pid: int) -> HTMLResponse:
    """The project's trainings, as the page polls them (every 2 s)."""
    return _page(request, "trainings.html", v, **_project_context(session, v, pid))


@router.post("/projects/{pid}/trainings", response_class=HTMLResponse)
def train(request: Request, v: VisitorDep, session: SessionDep, sessions: SessionsDep, settings: SettingsDep,
          scheduler: SchedulerDep, pid: int, csrf: Annotated[str, Form()] = "", epochs: Annotated[int, Form()] = 10,
          deploy: Annotated[bool, Form()] = False) -> HTMLResponse:
    """The Train button: the same request as the API's, answered at once with what was queued, or why nothing was."""
    _check_csrf(v, csrf)
    m = membership_of(session, v.user, pid)
    if m.member.role not in OWNER_MANAGER:
        raise Forbidden(Errors.E402.format(role=m.member.role.value, action="train models",
                                           allowed=", ".join(sorted(r.value for r in OWNER_MANAGER))))
    project, user = m.project, v.user
    session.expunge(project)
    session.expunge(user)
    session.rollback()  # checking the data takes a while: hold no write lock until the jobs are inserted
    message, errors, failed = "", [], False
    try:
        jobs, warnings = request_trainings(session, sessions, settings, project, user,
                                           TrainingRequest(params=TrainingParams(epochs=epochs), deploy=deploy),
                                           why_never=scheduler.never_reason)
        session.commit()
        scheduler.wake()
        message = "queued: " + ", ".join(f"training {j.id} ({j.kind})" for j in jobs)
        errors = warnings[:5]
    except AnnorayError as exc:  # refused whole, nothing queued: the page says why
        session.rollback()
        failed, message, errors = True, exc.detail, [e.message for e in exc.errors]
    return _page(request, "train_result.html", v, **_project_context(session, v, pid), message=message, errors=errors,
                 failed=failed)


@router.get("/trainings/{jid}/log", response_class=PlainTextResponse)
def training_log_file(v: VisitorDep, session: SessionDep, jid: int) -> PlainTextResponse:
    """A training's log as a file (members of its project only)."""
    job = TrainingJobRepository(session).get(jid)
    membership_of(session, v.user, job.project_id)
    text = log_text(TrainingLogRepository(session).lines(jid))
    return PlainTextResponse(text, headers={"Content-Disposition": f'attachment; filename="training-{jid}.log"'})


def install(app: Any) -> None:
    """The dashboard's routes, and its error pages: a visitor who is not signed in goes to the sign-in page; a
    refusal is a page that says why (the API keeps answering JSON)."""
    app.include_router(router)

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        return RedirectResponse("/ui/sign-in", status_code=303)

    async def refusal(request: Request, exc: AnnorayError) -> Response:
        if not request.url.path.startswith("/ui/"):
            return await previous(request, exc)
        status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 422)
        return _page(request, "error.html", None, status_code=status, status=status, message=exc.detail)

    previous = app.exception_handlers[AnnorayError]
    app.add_exception_handler(AnnorayError, refusal)
