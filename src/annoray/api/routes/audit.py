from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from annoray.api.deps import AdminUser, SessionDep, SettingsDep
from annoray.api.schemas import AuditEventOut, Page
from annoray.platform.store.repositories import AuditRepository

router = APIRouter(tags=["audit"])


@router.get("/api/audit", response_model=Page[AuditEventOut])
def audit(
    _: AdminUser, session: SessionDep, settings: SettingsDep,
    username: Annotated[str | None, Query(max_length=150, description="Only this user's requests.")] = None,
    method: Annotated[Literal["POST", "PUT", "PATCH", "DELETE"] | None, Query()] = None,
    path: Annotated[str | None, Query(max_length=2000, description="Only paths starting with this.")] = None,
    outcome: Annotated[Literal["ok", "refused", "error"] | None, Query()] = None,
    since: Annotated[datetime | None, Query(description="From this time (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Before this time (ISO 8601).")] = None,
    page: Annotated[int, Query(ge=1, le=10**9)] = 1,
    page_size: Annotated[int, Query(ge=1)] = 100,
) -> Page[AuditEventOut]:
    """Every state-changing request, newest first (admins only): who, when, from which address, what, the outcome."""
    page_size = min(page_size, settings.api.max_page_size)
    rows, total = AuditRepository(session).page(username=username, method=method, path=path, outcome=outcome,
                                                since=since, until=until, offset=(page - 1) * page_size, limit=page_size)
    return Page[AuditEventOut](items=[AuditEventOut.model_validate(r) for r in rows], total=total, page=page,
                               page_size=page_size)
