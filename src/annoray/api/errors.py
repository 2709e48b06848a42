"""Every refusal answers ``{"detail": ..., "errors": [...]}``, as ASCII JSON so that whatever the request held
(an unpaired surrogate in a key) the refusal can be written."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException

from annoray.platform.errors import (
    AnnorayError, Conflict, Errors, Forbidden, InvalidInput, NotFound, TooMany, Unauthorized, Unavailable,
)

logger = logging.getLogger(__name__)

STATUS = {InvalidInput: 422, NotFound: 404, Forbidden: 403, Unauthorized: 401, Conflict: 409, Unavailable: 503, TooMany: 429}
"""The HTTP status of each kind of refusal: the only place the platform's errors meet HTTP."""


class ErrorResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def refusal(status: int, detail: str, errors: list[dict[str, Any]] | None = None,
            headers: dict[str, str] | None = None) -> ErrorResponse:
    return ErrorResponse({"detail": detail, "errors": errors or []}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AnnorayError)
    async def _annoray(_: Request, exc: AnnorayError) -> JSONResponse:
        status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 422)
        return refusal(status, exc.detail, [e.as_dict() for e in exc.errors])

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            loc = [str(p) for p in e.get("loc", ())]
            errors.append({"field": ".".join(loc), "message": e.get("msg", "invalid")})
        detail = "invalid request: " + "; ".join(f"{x['field']}: {x['message']}" for x in errors[:5])
        return refusal(422, detail, errors)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return refusal(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        """A write that raced another: the database's own words (tables, columns, values) stay in the log."""
        logger.warning("%s %s conflicted with the database's state: %s", request.method, request.url.path, exc.orig)
        return refusal(409, Errors.E515)
