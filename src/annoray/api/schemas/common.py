"""Types every body shares: ids, timestamps, pages of results, errors, health."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, Field

from annoray.platform.store.tables import MAX_ID


T = TypeVar("T")
RowId = Annotated[int, Field(ge=1, le=MAX_ID)]
"""An id in a body: ids are INTEGER columns (signed 32-bit on PostgreSQL)."""



def _with_zone(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)  # SQLite returns naive datetimes; the store writes UTC


Timestamp = Annotated[datetime, AfterValidator(_with_zone)]
"""Every timestamp the API answers is ISO 8601 with its zone."""

class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int


class ErrorOut(BaseModel):
    field: str | None = None
    message: str
    line: int | None = None
    tag: str | None = None
    index: int | None = None


class ErrorBody(BaseModel):
    """Every refusal: what is wrong, coded ([E402]), and where, item by item."""

    detail: str
    errors: list[ErrorOut]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": why} for status, why in (
        (400, "The Host header is not one of the allowed hosts."),
        (401, "No token, or one annoray does not know, revoked or expired."),
        (403, "The caller may not do this (role, membership, admin, token scope)."),
        (404, "What the path names does not exist."),
        (409, "The request is valid but the current state does not allow it."),
        (413, "The body is over the size limit."),
        (422, "The input is invalid; each error says where."),
        (503, "A part the request needs (the scheduler, the database) is not running."),
    )
}
"""The refusals every route may answer, in the one shape they all share."""


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
    database: str


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(description="database, migrations, scheduler: 'ok', or what is wrong.")
