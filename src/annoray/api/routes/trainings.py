import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from annoray.api.deps import (
    Membership,
    MembershipDep,
    SchedulerDep,
    SessionDep,
    SessionsDep,
    SettingsDep,
    TrainingAccess,
    TrainingDep,
    WritesDep,
)
from annoray.api.schemas import TrainingCreate, TrainingCreated, TrainingJobRef, TrainingOut, TrainingProgress
from annoray.platform.access.roles import ANY_MEMBER, OWNER_MANAGER, require_role
from annoray.platform.access.teams import DEFAULT_TEAM
from annoray.platform.errors import Conflict, Errors
from annoray.platform.lifecycle import ENDED
from annoray.platform.models.training_log import log_document, log_text
from annoray.platform.store.repositories import TrainingJobRepository, TrainingLogRepository
from annoray.platform.settings import Settings
from annoray.platform.store.tables import Project, TrainingJob
from annoray.scheduler import SchedulerClient, TrainingRequest, queue_trainings

router = APIRouter(tags=["trainings"])

FOLLOW_POLL_SECONDS = 0.5


def training_out(job: TrainingJob, project: Project) -> TrainingOut:
    progress = job.progress or {}
    return TrainingOut(
        id=job.id, project_id=job.project_id, kind=job.kind, engine=job.engine, source=job.source, status=job.status,
        reason=job.reason, error=job.error,
        progress=TrainingProgress(epoch=progress.get("epoch", 0), epochs=progress.get("epochs", job.params.get("epochs", 0)),
                                  percent=progress.get("percent", 0.0), loss=progress.get("loss")),
        metrics=job.metrics or {}, warnings=job.warnings or [], model=job.model, params=job.params,
        selection=job.selection or {}, data=job.data_summary or {}, embeddings=job.embeddings, deploy="force" if job.deploy_forced else job.deploy,
        deployment=job.deployment or {},
        attempts=job.attempts, resources=job.resources or {}, node_id=job.node_id, licenses=job.scopes or [], created_at=job.created_at,
        decided_at=job.decided_at, started_at=job.started_at,
        finished_at=job.finished_at, log=f"/api/trainings/{job.id}/log",
        priority=job.priority, team=project.team.name if project.team else DEFAULT_TEAM, preemptions=job.preemptions,
    )


@router.post("/api/projects/{pid}/trainings", response_model=TrainingCreated, status_code=status.HTTP_202_ACCEPTED)
def create_trainings(
    body: TrainingCreate, m: MembershipDep, writes: WritesDep, sessions: SessionsDep, settings: SettingsDep,
    scheduler: SchedulerDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=100, description=(
        "Any unique text: a request sent again with the same key (its answer lost) gets the jobs the first one "
        "queued, not new ones."))] = None,
) -> TrainingCreated:
    """Queue one training job per kind; 422 with every reason when the request cannot train, 409 when the
    cluster can never hold it (nothing is queued either way)."""
    return queue(body, m, writes, sessions, settings, scheduler, idempotency_key)


def queue(body: TrainingCreate, m: Membership, writes: sessionmaker[Session], sessions: sessionmaker[Session],
          settings: Settings, scheduler: SchedulerClient, idempotency_key: str | None) -> TrainingCreated:
    require_role(m.member.role, OWNER_MANAGER, "train models")
    request = TrainingRequest(
        kinds=body.kinds, engine=body.engine, embeddings=body.embeddings, params=body.params, split=body.split,
        task_tags=tuple(body.task_tags), reviewed_only=body.reviewed_only, deploy=body.deploy is True, force_deploy=body.deploy == "force",
        config=body.config, request_key=idempotency_key, priority=body.priority,
    )
    jobs, warnings = queue_trainings(writes, sessions, settings, m.project, m.user, request, why_never=scheduler.never_reason)
    scheduler.wake()
    return TrainingCreated(jobs=[TrainingJobRef(id=j.id, kind=j.kind, status=j.status) for j in jobs], warnings=warnings)


@router.get("/api/projects/{pid}/trainings", response_model=list[TrainingOut])
def training_history(m: MembershipDep, session: SessionDep) -> list[TrainingOut]:
    """Every training of the project, newest first: source, data used, dates, status, parameters, metrics, log."""
    require_role(m.member.role, ANY_MEMBER, "see the training history")
    return trainings_of(session, m.project)


def trainings_of(session: Session, project: Project) -> list[TrainingOut]:
    return [training_out(j, project) for j in TrainingJobRepository(session).for_project(project.id)]


@router.get("/api/trainings/{jid}", response_model=TrainingOut)
def get_training(t: TrainingDep) -> TrainingOut:
    return training_out(t.job, t.membership.project)


@router.post("/api/trainings/{jid}/cancel", response_model=TrainingOut)
def cancel_training(t: TrainingDep, writes: WritesDep, reads: SessionsDep, scheduler: SchedulerDep) -> TrainingOut:
    """Cancel a queued or running training; its Ray Train run stops and its resources come back."""
    cancel(t, writes, scheduler)
    with reads() as session:  # what the scheduler wrote, after this request's own reads began
        return training_out(TrainingJobRepository(session).get(t.job.id), t.membership.project)


def cancel(t: TrainingAccess, writes: sessionmaker[Session], scheduler: SchedulerClient) -> None:
    require_role(t.membership.member.role, OWNER_MANAGER, "cancel trainings")
    if t.job.status in ENDED:
        raise Conflict(Errors.E507.format(job_id=t.job.id, status=t.job.status.value))
    scheduler.cancel(writes, t.job.id, t.membership.user.username)


@router.get(
    "/api/trainings/{jid}/log",
    responses={200: {"content": {"text/plain": {}, "application/json": {}}}},
)
def training_log(
    request: Request,
    t: TrainingDep,
    session: SessionDep,
    sessions: SessionsDep,
    follow: Annotated[bool, Query(description="Stream new lines until the training ends.")] = False,
    format: Annotated[Literal["text", "json"], Query(description="text, or json for the log's JSON twin")] = "text",
):
    """The training log: parameters, versions, data used, each epoch, final metrics; ``follow`` streams it live."""
    if format == "json" or not follow:
        return log_file(session, t.job, format)
    session.close()  # the stream reads through sessions of its own: the request's connection goes back to the pool now
    events = request.app.state.streams.stream(t.membership.user.id, _follow(sessions, t.job.id))
    return StreamingResponse(events, media_type="text/plain; charset=utf-8")


def log_file(session: Session, job: TrainingJob, format: str) -> Response:
    """The training log as a download: text, or its JSON twin."""
    lines = TrainingLogRepository(session).lines(job.id)
    filename = f"training-{job.id}.log"
    if format == "json":
        return JSONResponse(log_document(job, lines), headers={"Content-Disposition": f'attachment; filename="{filename}.json"'})
    return PlainTextResponse(log_text(lines), headers={"Content-Disposition": f'attachment; filename="{filename}"'})


async def _follow(sessions: sessionmaker[Session], job_id: int) -> AsyncIterator[str]:
    """New log lines as they come, until the job has ended: a thread only while reading, none while waiting."""
    after = 0
    while True:
        ended, text, after = await run_in_threadpool(_new_lines, sessions, job_id, after)
        if text:
            yield text
        elif ended:
            return
        else:
            await asyncio.sleep(FOLLOW_POLL_SECONDS)


def _new_lines(sessions: sessionmaker[Session], job_id: int, after: int) -> tuple[bool, str, int]:
    """Whether the job had ended, the log's lines after line ``after`` as text, and the last line's id."""
    with sessions() as session:
        ended = TrainingJobRepository(session).get(job_id).status in ENDED
        lines = TrainingLogRepository(session).lines(job_id, after_id=after)
        return ended, log_text(lines) if lines else "", lines[-1].id if lines else after
