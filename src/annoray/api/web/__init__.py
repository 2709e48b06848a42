"""The dashboard: pages rendered by the app (Jinja2, htmx and a few lines of script for what updates live), signed
in with an API token or a one-time link. The session lives in an HttpOnly, SameSite=Strict cookie whose key the store
keeps hashed; every form that changes something carries the session's CSRF token. Every page reads and acts through
the API's own route functions, so the same role rules apply and it shows only what its user may see."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from annoray.api.errors import STATUS
from annoray.api.web import account, projects, serving, trainings
from annoray.api.web.common import NotSignedIn, page
from annoray.platform.errors import AnnorayError

__all__ = ["install"]


def install(app: Any) -> None:
    """The dashboard's routes, and its error pages: a visitor who is not signed in goes to the sign-in page; a
    refusal is a page that says why (the API keeps answering JSON)."""
    for module in (account, projects, trainings, serving):
        app.include_router(module.router)

    @app.get("/", include_in_schema=False)
    def root(request: Request) -> Response:
        """The address ``annoray up`` prints: a browser goes to the dashboard (its sign-in page when not signed in),
        an API client asking for JSON gets where to go."""
        accept = request.headers.get("accept", "")
        if "application/json" in accept and "text/html" not in accept:
            return JSONResponse({"name": "annoray", "dashboard": "/ui/", "docs": "/docs", "openapi": "/openapi.json"})
        return RedirectResponse("/ui/", status_code=307)

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        return RedirectResponse("/ui/sign-in", status_code=303)

    async def refusal(request: Request, exc: AnnorayError) -> Response:
        if not request.url.path.startswith("/ui/"):
            return await previous(request, exc)
        status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 422)
        return page(request, "error.html", None, status_code=status, status=status, message=exc.detail,
                    errors=[e.message for e in exc.errors])

    previous = app.exception_handlers[AnnorayError]
    app.add_exception_handler(AnnorayError, refusal)
