"""Types every body shares: ids, timestamps, pages of results, errors, health."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from annoray.platform.lifecycle import JobStatus
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


class WorkAccepted(BaseModel):
    """Slow work still under way when the request's wait ended: poll ``url`` (also the ``Location`` header)."""

    id: int
    kind: str
    status: str
    url: str


class WorkOut(BaseModel):
    """Slow work a request handed off: once ``succeeded``, ``result`` is what the request would have answered; once
    ``failed``, ``error`` is its refusal (``status``, ``detail``, ``errors``)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str = Field(description="upload, training-config or model-import")
    project_id: int | None
    status: JobStatus
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None


WORK_ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"model": WorkAccepted, "description": "Still under way after a moment: poll the work (`Location`)."}}
