"""Every refusal answers ``{"detail": ..., "errors": [...]}``; request size is limited before parsing.

Starlette's own body limit answers a declared oversize with plain text, so the limit lives here
to keep the error shape of every refusal the same."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from annoray.platform.errors import (
    AnnorayError, Conflict, Errors, Forbidden, InvalidInput, NotFound, Unauthorized, Unavailable,
)

STATUS = {InvalidInput: 422, NotFound: 404, Forbidden: 403, Unauthorized: 401, Conflict: 409, Unavailable: 503}
"""The HTTP status of each kind of refusal: the only place the platform's errors meet HTTP."""


def _body(detail: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"detail": detail, "errors": errors or []}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AnnorayError)
    async def _annoray(_: Request, exc: AnnorayError) -> JSONResponse:
        status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 422)
        return JSONResponse(_body(exc.detail, [e.as_dict() for e in exc.errors]), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            loc = [str(p) for p in e.get("loc", ())]
            errors.append({"field": ".".join(loc), "message": e.get("msg", "invalid")})
        detail = "invalid request: " + "; ".join(f"{x['field']}: {x['message']}" for x in errors[:5])
        return JSONResponse(_body(detail, errors), status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(_body(str(exc.detail)), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        return JSONResponse(_body(f"conflict with the current state: {exc.orig}"), status_code=409)


class BodySizeLimit:
    """Answer 413 to bodies over ``limit`` bytes, declared or streamed, before anything reads them."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            response = JSONResponse(
                _body(Errors.E505.format(size=int(declared), limit=self.limit)), status_code=413
            )
            await response(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(413, Errors.E505.format(size=f"more than {received}", limit=self.limit))
            return message

        await self.app(scope, limited, send)
