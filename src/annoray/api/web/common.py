"""What every dashboard page shares: the signed-in visitor, the CSRF check, and rendering.

A page reads and acts by calling the API's own route functions with the visitor's user, so it applies the same role
rules and shows the same data; what a page adds is only how it looks.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker

from annoray.api.deps import Membership, SessionDep, membership_of
from annoray.platform.access.roles import may_see_cluster
from annoray.platform.errors import Errors, Forbidden
from annoray.platform.store.repositories import WebSessionRepository
from annoray.platform.store.tables import User, WebSession

templates = Jinja2Templates(directory=str(resources.files("annoray.api.web") / "templates"))

COOKIE = "annoray_session"
LIVE_POLL_SECONDS = 0.5


@dataclass
class Visitor:
    """A signed-in person: their user and their session (whose CSRF token the forms carry)."""

    user: User
    session: WebSession
    key: str

    def member(self, session: Session, pid: int) -> Membership:
        """The visitor's membership of a project (403 for a project they are not in, 404 for none)."""
        return membership_of(session, self.user, pid)

    def may_see_cluster(self, session: Session) -> bool:
        return may_see_cluster(session, self.user)


class NotSignedIn(Exception):
    """Handled by sending the browser to the sign-in page."""


def visitor(request: Request, session: SessionDep) -> Visitor:
    key = request.cookies.get(COOKIE, "")
    found = WebSessionRepository(session).live(key, datetime.now(UTC)) if key else None
    if found is None:
        raise NotSignedIn()
    request.state.caller = found[1].id, found[1].username, None  # for the audit trail
    return Visitor(found[1], found[0], key)


VisitorDep = Annotated[Visitor, Depends(visitor)]


def same(given: str, expected: str) -> bool:
    """A constant-time comparison that takes any text a form may send."""
    return bool(expected) and secrets.compare_digest(given.encode(), expected.encode())


def check_csrf(v: Visitor, csrf: str) -> None:
    if not same(csrf, v.session.csrf):
        raise Forbidden(Errors.E408)


def page(request: Request, name: str, v: Visitor | None, status_code: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, {"user": v.user if v else None, "csrf": v.session.csrf if v else "",
                                                      **context}, status_code=status_code)


async def live_fragments(sessions: sessionmaker[Session], render: Callable[[Session], tuple[str, bool]],
                         poll: float = LIVE_POLL_SECONDS) -> AsyncIterator[str]:
    """Server-sent events of a fragment of a page: ``update`` with its HTML whenever it changes, then ``end`` once
    ``render`` says what it shows has ended. It reads the database (so it works behind several API replicas) on a
    thread only while reading, and holds none while it waits."""
    last = None
    while True:
        html, ended = await run_in_threadpool(_render_with, sessions, render)
        if html != last:
            yield "event: update\n" + "".join(f"data: {line}\n" for line in html.splitlines()) + "\n"
            last = html
        if ended:
            yield "event: end\ndata: {}\n\n"
            return
        await asyncio.sleep(poll)


def _render_with(sessions: sessionmaker[Session], render: Callable[[Session], tuple[str, bool]]) -> tuple[str, bool]:
    with sessions() as session:
        return render(session)


def event_stream(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                        path="/")
