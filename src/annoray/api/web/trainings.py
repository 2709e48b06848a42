"""Training: the Train page in the seeds' three steps, a training's page (live by server-sent events), the history
with its compare view, and the log as a download."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from annoray.api.deps import Id, Offset, SchedulerDep, SessionDep, SessionsDep, SettingsDep, TrainingAccess, WritesDep
from annoray.api.routes import projects, training_setup, trainings
from annoray.api.schemas import ActiveLearningIn, TrainingCreate, TrainingOut
from annoray.api.web.common import LIVE_POLL_SECONDS, Visitor, VisitorDep, check_csrf, event_stream, page
from annoray.api.web.projects import invalid
from annoray.platform.access.roles import OWNER_MANAGER, require_role
from annoray.platform.errors import AnnorayError, InvalidInput, Unavailable
from annoray.platform.lifecycle import ENDED, UNDER_WAY
from annoray.platform.services import labeling
from annoray.platform.store.repositories import ModelRepository, TrainingJobRepository, TrainingLogRepository

router = APIRouter(prefix="/ui", include_in_schema=False)

LOG_TAIL = 200


def _access(session: Session, v: Visitor, jid: int) -> TrainingAccess:
    job = TrainingJobRepository(session).get(jid)
    return TrainingAccess(job, v.member(session, job.project_id))


# --- Train -----------------------------------------------------------------------------------------------------


@router.get("/projects/{pid}/train", response_class=HTMLResponse)
def train_page(request: Request, v: VisitorDep, session: SessionDep, settings: SettingsDep, pid: Id) -> HTMLResponse:
    return page(request, "train.html", v, **_train_context(session, settings, v, pid))


@router.get("/projects/{pid}/train/kinds", response_class=HTMLResponse)
def train_kinds(request: Request, v: VisitorDep, session: SessionDep, settings: SettingsDep, pid: Id,
                kinds: Annotated[list[str] | None, Query()] = None) -> HTMLResponse:
    """Step 1's kinds and the Train button, as the page polls them: a kind whose training runs is disabled with why;
    the choices the visitor made are kept."""
    return page(request, "train_kinds.html", v, **_train_context(session, settings, v, pid, chosen=kinds or []))


def _train_context(session: Session, settings: Any, v: Visitor, pid: int, chosen: list[str] | None = None) -> dict[str, Any]:
    m = v.member(session, pid)
    project = projects.project_view(m)
    busy = {}
    for job in TrainingJobRepository(session).for_project(pid):
        if job.status in UNDER_WAY and job.kind not in busy:
            busy[job.kind] = job
    kinds = [(kind, busy.get(kind), kind in chosen if chosen else kind not in busy) for kind in project.kinds]
    free = [kind for kind, job, _ in kinds if job is None]
    engines = training_setup.engines(settings)
    defaults = {e.kinds[0]: e.defaults for e in engines if e.family == "spacy" and e.kinds[0] in project.kinds}
    return {"project": project, "can_train": m.member.role in OWNER_MANAGER, "kinds": kinds, "defaults": defaults,
            "blocked": None if free else "every kind of this project is training now: " + ", ".join(
                f"{kind} (training {job.id}, {job.status.value})" for kind, job in busy.items()),
            "engines": _families(engines, set(project.kinds)),
            "embeddings": [e.name for e in ModelRepository(session).all("embeddings")],
            "configs": training_setup.configs_of(session, pid), "al": project.active_learning}


def _families(engines: list[Any], kinds: set[str]) -> list[dict[str, Any]]:
    """The engine families that train some of ``kinds``: what a request names as ``engine``, and why one cannot train here."""
    families: dict[str, dict[str, Any]] = {}
    for e in engines:
        if set(e.kinds) & kinds:
            family = families.setdefault(e.family, {"family": e.family, "kinds": [], "available": False, "reason": e.reason})
            family["kinds"] += [k for k in e.kinds if k in kinds and k not in family["kinds"]]
            family["available"] |= e.available
    return list(families.values())


@router.post("/projects/{pid}/trainings", response_class=HTMLResponse)
def train(request: Request, v: VisitorDep, session: SessionDep, sessions: SessionsDep, writes: WritesDep, settings: SettingsDep,
          scheduler: SchedulerDep, pid: Id, csrf: Annotated[str, Form()] = "",
          kinds: Annotated[list[str] | None, Form()] = None, engine: Annotated[str, Form()] = "spacy",
          embeddings: Annotated[str, Form()] = "", config: Annotated[str, Form()] = "",
          epochs: Annotated[str, Form()] = "", learning_rate: Annotated[str, Form()] = "",
          decay: Annotated[str, Form()] = "", dropout: Annotated[str, Form()] = "",
          batch_size: Annotated[str, Form()] = "", split: Annotated[str, Form()] = "random",
          validation_split: Annotated[str, Form()] = "0.2", task_tags: Annotated[str, Form()] = "",
          reviewed_only: Annotated[bool, Form()] = False, deploy: Annotated[str, Form()] = "no",
          al_enabled: Annotated[bool, Form()] = False, al_every: Annotated[str, Form()] = "50",
          al_deploy: Annotated[bool, Form()] = False, al_gate: Annotated[bool, Form()] = False) -> HTMLResponse:
    """The Train button: the API's training request (and the project's active learning, step 3), answered at once
    with the jobs it queued and a link to each, or with every reason it queued nothing."""
    check_csrf(v, csrf)
    m = v.member(session, pid)
    require_role(m.member.role, OWNER_MANAGER, "train models")
    queued: list[Any] = []
    warnings: list[str] = []
    refusal = None
    try:
        body = TrainingCreate(
            kinds=kinds or [], engine=engine, embeddings=embeddings or None, config=int(config) if config else None,
            split=split, task_tags=[t.strip() for t in task_tags.split(",") if t.strip()], reviewed_only=reviewed_only,
            deploy={"no": False, "yes": True}.get(deploy, deploy),
            params={k: v for k, v in {"epochs": epochs, "learning_rate": learning_rate, "decay": decay, "dropout": dropout,
                                      "batch_size": batch_size, "validation_split": validation_split}.items() if v.strip()})
        learning = ActiveLearningIn(enabled=al_enabled, every=al_every, deploy=al_deploy, gate=al_gate,  # type: ignore[arg-type]
                                    metric=m.project.deploy_metric)
        if not body.kinds:
            raise InvalidInput("choose what to train", [])
        created = trainings.queue(body, m, writes, sessions, settings, scheduler, None)
        queued, warnings = created.jobs, created.warnings
        labeling.configure_active_learning(writes, pid, **learning.model_dump())
    except ValidationError as exc:
        refusal = invalid(exc)
    except ValueError as exc:
        refusal = InvalidInput(f"the form has errors: {exc}", [])
    except AnnorayError as exc:  # refused whole, nothing queued: the page says why
        refusal = exc
    with sessions() as fresh:  # what this request queued (its own reads began before)
        context = _train_context(fresh, settings, v, pid)
    return page(request, "train_result.html", v, 422 if refusal else 200, refusal=refusal, queued=queued,
                warnings=warnings, **context)


# --- A training ----------------------------------------------------------------------------------------------------


@router.get("/trainings/{jid}", response_class=HTMLResponse)
def training_page(request: Request, v: VisitorDep, session: SessionDep, scheduler: SchedulerDep, jid: Id) -> HTMLResponse:
    t = _access(session, v, jid)
    job = trainings.training_out(t.job, t.membership.project)
    lines = TrainingLogRepository(session).lines(jid)
    return page(request, "training.html", v, job=job, project=t.membership.project,
                can_cancel=t.membership.member.role in OWNER_MANAGER and job.status not in ENDED,
                log="".join(f"{line.text}\n" for line in lines[-LOG_TAIL:]), after=lines[-1].id if lines else 0,
                cluster=_cluster_or_none(scheduler) if job.status not in ENDED else None, **_result(session, job))


def _cluster_or_none(scheduler: Any) -> dict[str, Any] | None:
    try:
        return scheduler.cluster()
    except Unavailable:
        return None


def _result(session: Session, job: TrainingOut) -> dict[str, Any]:
    epochs = [line.data for line in TrainingLogRepository(session).lines(job.id, event="epoch")]
    return {"chart": chart(epochs), "epochs": epochs, "metrics": job.metrics}


@router.get("/trainings/{jid}/result", response_class=HTMLResponse)
def training_result(request: Request, v: VisitorDep, session: SessionDep, jid: Id) -> HTMLResponse:
    """The chart and the benchmark table, as the page reloads them when an epoch ends and when the training ends."""
    t = _access(session, v, jid)
    job = trainings.training_out(t.job, t.membership.project)
    return page(request, "training_result.html", v, job=job, **_result(session, job))


def chart(epochs: list[dict[str, Any]], width: int = 480, height: int = 160) -> dict[str, Any] | None:
    """Loss and dev micro F1 per epoch as SVG points (loss scaled to its largest value, F1 to 1)."""
    if not epochs:
        return None
    n = max(len(epochs) - 1, 1)
    top = max((e.get("loss") or 0.0 for e in epochs), default=0.0) or 1.0

    def points(values: list[float | None], scale: float) -> list[tuple[float, float]]:
        return [(round(20 + i * (width - 30) / n, 1), round(height - 20 - (value / scale) * (height - 30), 1))
                for i, value in enumerate(values) if value is not None]
    loss = points([e.get("loss") for e in epochs], top)
    f1 = [((e.get("metrics") or {}).get("micro") or {}).get("f1") for e in epochs]
    f1_points = points(f1, 1.0)
    return {"width": width, "height": height, "top": top, "loss_points": loss, "f1_points": f1_points,
            "loss": " ".join(f"{x},{y}" for x, y in loss), "f1": " ".join(f"{x},{y}" for x, y in f1_points),
            "rows": [(e["epoch"], e.get("loss"), f) for e, f in zip(epochs, f1, strict=True)]}


@router.get("/trainings/{jid}/events")
async def training_events(request: Request, v: VisitorDep, session: SessionDep, sessions: SessionsDep, jid: Id,
                          after: Offset = 0) -> StreamingResponse:
    """Server-sent events: the job's progress whenever it changes, new log lines, then ``end``. The stream reads
    the database (so it works behind several API replicas) on a thread only while reading, and holds none while waiting."""
    await run_in_threadpool(_access, session, v, jid)
    await run_in_threadpool(session.close)
    return event_stream(request.app.state.streams.stream(v.user.id, _events(sessions, jid, after)))


async def _events(sessions: sessionmaker[Session], jid: int, after: int) -> AsyncIterator[str]:
    last = None
    while True:
        state, text, after = await run_in_threadpool(_read, sessions, jid, after)
        if state != last:
            yield f"event: progress\ndata: {json.dumps(state)}\n\n"
            last = state
        if text:
            yield "event: log\n" + "".join(f"data: {line}\n" for line in text.splitlines()) + "\n"
        if state["ended"]:
            yield "event: end\ndata: {}\n\n"
            return
        await asyncio.sleep(LIVE_POLL_SECONDS)


def _read(sessions: sessionmaker[Session], jid: int, after: int) -> tuple[dict[str, Any], str, int]:
    with sessions() as session:
        job = TrainingJobRepository(session).get(jid)
        progress = job.progress or {}
        state = {"status": job.status.value, "reason": job.reason, "error": job.error, "epoch": progress.get("epoch", 0),
                 "epochs": progress.get("epochs", job.params.get("epochs", 0)), "percent": progress.get("percent", 0.0),
                 "ended": job.status in ENDED, "model": job.model}
        if job.status.value == "succeeded":
            state["percent"] = 100.0
        lines = TrainingLogRepository(session).lines(jid, after_id=after)
        return state, "".join(f"{line.text}\n" for line in lines), lines[-1].id if lines else after


@router.post("/trainings/{jid}/cancel")
def cancel(v: VisitorDep, session: SessionDep, writes: WritesDep, scheduler: SchedulerDep, jid: Id,
           csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(v, csrf)
    trainings.cancel(_access(session, v, jid), writes, scheduler)
    return RedirectResponse(f"/ui/trainings/{jid}", status_code=303)


@router.get("/trainings/{jid}/log")
def training_log_file(request: Request, v: VisitorDep, session: SessionDep, sessions: SessionsDep, jid: Id,
                      format: str = "text") -> Response:
    """A training's log as a file, text or JSON (members of its project only)."""
    return trainings.log_file(session, _access(session, v, jid).job, "json" if format == "json" else "text")


# --- History and compare -----------------------------------------------------------------------------------------


@router.get("/projects/{pid}/history", response_class=HTMLResponse)
def history(request: Request, v: VisitorDep, session: SessionDep, pid: Id) -> HTMLResponse:
    m = v.member(session, pid)
    return page(request, "history.html", v, project=m.project, jobs=trainings.trainings_of(session, m.project))


@router.get("/projects/{pid}/trainings", response_class=HTMLResponse)
def trainings_part(request: Request, v: VisitorDep, session: SessionDep, pid: Id,
                   job: Annotated[list[int] | None, Query()] = None) -> HTMLResponse:
    """The history's table, as the page polls it (keeping the runs chosen to compare)."""
    m = v.member(session, pid)
    return page(request, "trainings.html", v, project=m.project, jobs=trainings.trainings_of(session, m.project), chosen=job or [])


@router.get("/projects/{pid}/compare", response_class=HTMLResponse)
def compare(request: Request, v: VisitorDep, session: SessionDep, pid: Id,
            job: Annotated[list[int] | None, Query()] = None) -> HTMLResponse:
    """Two or more runs side by side: the parameters that differ, per-label P/R/F1, and F1 across active-learning rounds."""
    m = v.member(session, pid)
    history_ = trainings.trainings_of(session, m.project)
    chosen = [j for j in history_ if j.id in set(job or [])]
    keys = sorted({k for j in chosen for k in (j.params | {"engine": j.engine, "source": j.source, "kind": j.kind})})
    params = [(k, [(j.params | {"engine": j.engine, "source": j.source, "kind": j.kind}).get(k) for j in chosen]) for k in keys]
    labels = sorted({label for j in chosen for label in (j.metrics.get("per_label") or {})})
    rounds: dict[str, list[TrainingOut]] = {}
    for j in sorted(history_, key=lambda j: j.id):
        if j.source == "active_learning" and j.metrics:
            rounds.setdefault(j.kind, []).append(j)
    return page(request, "compare.html", v, project=m.project, chosen=chosen, params=params, labels=labels,
                rounds=rounds, refusal=None if len(chosen) >= 2 else InvalidInput("choose two or more runs to compare", []))
