"""Work an API request hands to its process's pool: queued, running, then succeeded with the answer the request
would have given, or failed with its refusal. A client polls it; one its process never ended is reported lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from annoray.platform.errors import Errors, Forbidden, NotFound
from annoray.platform.lifecycle import JobStatus
from annoray.platform.services import Writes
from annoray.platform.store.repositories.base import aware
from annoray.platform.store.tables import User, WorkJob

UNDER_WAY = (JobStatus.QUEUED, JobStatus.RUNNING)


def open_work(writes: Writes, kind: str, user_id: int, project_id: int | None, *, running: bool) -> int:
    """The row of work a request hands off once its wait is over (work that ends within the wait leaves none)."""
    with writes.begin() as session:
        job = WorkJob(kind=kind, requested_by=user_id, project_id=project_id,
                      status=JobStatus.RUNNING if running else JobStatus.QUEUED, started_at=datetime.now(UTC) if running else None)
        session.add(job)
        session.flush()
        return job.id


def _move(writes: Writes, work_id: int, **values: Any) -> None:
    with writes.begin() as session:
        session.execute(update(WorkJob).where(WorkJob.id == work_id, WorkJob.status.in_(UNDER_WAY)).values(**values))


def start_work(writes: Writes, work_id: int) -> None:
    _move(writes, work_id, status=JobStatus.RUNNING, started_at=datetime.now(UTC))


def finish_work(writes: Writes, work_id: int, result: dict[str, Any]) -> None:
    _move(writes, work_id, status=JobStatus.SUCCEEDED, result=result, finished_at=datetime.now(UTC))


def fail_work(writes: Writes, work_id: int, status: int, detail: str, errors: list[dict[str, Any]]) -> None:
    """The work ended refused or broken: ``status`` (the HTTP status the request would have answered), its detail and
    errors."""
    _move(writes, work_id, status=JobStatus.FAILED, error={"status": status, "detail": detail, "errors": errors},
          finished_at=datetime.now(UTC))


def work_of(reads: Writes, writes: Writes, user: User, work_id: int, lost_after_s: float) -> WorkJob:
    """A work job, for whoever asked for it or an admin (a read); one still under way after ``lost_after_s`` (the
    process that ran it stopped) is failed then, with E516."""
    with reads() as session:
        job = session.get(WorkJob, work_id)
        if job is None:
            raise NotFound("work", work_id)
        if job.requested_by != user.id and not user.is_admin:
            raise Forbidden(Errors.E403.format(action="see another user's work"))
        lost = job.status in UNDER_WAY and aware(job.created_at) < datetime.now(UTC) - timedelta(seconds=lost_after_s)
    if not lost:
        return job
    fail_work(writes, work_id, 503, Errors.E516.format(work_id=work_id, kind=job.kind), [])
    with reads() as session:
        return session.get(WorkJob, work_id)  # type: ignore[return-value]
