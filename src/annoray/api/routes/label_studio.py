"""The Label Studio ML backend protocol: annoray as the model behind a Label Studio project.

Label Studio calls ``/ls/health`` and ``/ls/setup`` when a model is connected (setup links its project to an annoray
project), ``/ls/predict`` for pre-annotations, and sends its events to ``/ls/webhook``. Every call carries an
annoray token as the password of HTTP Basic authentication (Label Studio's model settings), or as a bearer token.
Label Studio makes the webhook itself, without credentials: at setup annoray puts the same Authorization header on
it through Label Studio's API, with the access token Label Studio sends for that purpose.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from annoray.api.deps import SchedulerDep, SessionDep, SessionsDep, SettingsDep, WriteSessionsDep, identify
from annoray.api.label_studio_webhooks import WebhookJob, allowed_label_studio
from annoray.platform.access.roles import OWNER_MANAGER
from annoray.platform.errors import Conflict, Errors, Forbidden, InvalidInput, Unauthorized, Unavailable
from annoray.platform.labeling import label_studio as ls
from annoray.platform.labeling.predictions import label_studio_result
from annoray.platform.labeling.projects import project_config
from annoray.platform.models.active_learning import count_eligible
from annoray.platform.models.training import TrainingParams
from annoray.platform.settings import Settings
from annoray.platform.store.repositories import ProjectRepository, ServerRepository
from annoray.platform.store.tables import Prediction, PreannotationServer, Project, Role, ServerStatus, Task, User
from annoray.scheduler.client import SchedulerClient
from annoray.scheduler.preannotation import task_text, uncertainty
from annoray.scheduler.servers import ServerRequest, request_server
from annoray.scheduler.trainings import TrainingRequest, request_trainings

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/ls", tags=["label studio"])

UID = r"^[1-9]\d{0,8}\.\d{1,12}$"  # a Label Studio project id (an int32 here) and its creation time
NO_MODEL = "annoray-untrained"
ANNOTATION_EVENTS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED")
DELETE_EVENTS = ("ANNOTATIONS_DELETED", "ANNOTATION_DELETED")
REVIEW_EVENTS = ("REVIEW_CREATED", "REVIEW_UPDATED")


def token_of(authorization: str) -> str:
    """The annoray token in an Authorization header: Basic's password, or a Bearer (or Token) credential."""
    scheme, _, credential = authorization.strip().partition(" ")
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(credential.strip(), validate=True).decode().partition(":")[2].strip()
        except (binascii.Error, UnicodeDecodeError):
            return ""
    return credential.strip() if scheme.lower() in ("bearer", "token") else ""


def get_ls_user(request: Request, reads: SessionsDep) -> User:
    """The annoray user behind a Label Studio call (refused, E1009, without a token), read in a read transaction (on
    SQLite a prediction must not hold the write lock while the server works)."""
    secret = token_of(request.headers.get("authorization", ""))
    if not secret:
        raise Unauthorized(Errors.E1009)
    with reads() as session:
        return identify(request, session, secret, datetime.now(UTC)).user


LsUser = Annotated[User, Depends(get_ls_user)]


class LsSetup(BaseModel):
    model_config = ConfigDict(extra="allow")

    project: str = Field(pattern=UID, description="Label Studio's project uid: `<id>.<created, epoch seconds>`.")
    schema_: str = Field("", alias="schema", max_length=2**20, description="The project's labeling config.")
    hostname: str = Field("", max_length=300, description="Label Studio's own address.")
    access_token: str = Field("", max_length=200, description="A Label Studio token annoray uses to put its credentials on the webhook.")


class LsPredict(BaseModel):
    model_config = ConfigDict(extra="allow")

    project: str = Field(pattern=UID)
    tasks: list[dict[str, Any]] = Field(max_length=10_000, description="Label Studio tasks: `id`, `data`.")
    label_config: str = Field("", max_length=2**20)


class LsWebhook(BaseModel):
    model_config = ConfigDict(extra="allow")

    action: str = Field(max_length=100)
    project: dict[str, Any] | None = None
    task: dict[str, Any] | list[dict[str, Any]] | None = None
    annotation: dict[str, Any] | list[dict[str, Any]] | None = None
    annotations: list[dict[str, Any]] | None = None
    review: dict[str, Any] | None = None


@router.get("/health")
def health(_: LsUser) -> dict[str, Any]:
    """Label Studio's health check: UP, for a caller with a valid token (a wrong one is told apart: 401)."""
    return {"status": "UP", "model_class": "annoray", "v2": True}


def _model_version(server: PreannotationServer | None) -> str:
    return f"{server.name}:{'+'.join(server.models)}" if server is not None else NO_MODEL


def _server_of(session: Session, project: Project) -> PreannotationServer | None:
    """The project's server: a running one first, else the newest on its way."""
    servers = ServerRepository(session).with_status(ServerStatus.RUNNING, ServerStatus.DEPLOYING, ServerStatus.QUEUED,
                                                    project_id=project.id)
    return min(servers, key=lambda s: (s.status is not ServerStatus.RUNNING, -s.id), default=None)


@router.post("/setup")
def setup(body: LsSetup, request: Request, user: LsUser, session: SessionDep, settings: SettingsDep) -> dict[str, str]:
    """Link the Label Studio project to an annoray project (made from its config, or one of yours asking for the same
    labels); answers the model version its predictions carry. A config annoray cannot use: 422 with every error.

    annoray calls back only a Label Studio the operator listed (``ANNORAY_LABEL_STUDIO__ALLOWED_URLS``): another
    address is refused before any request is sent; with none listed, webhook registration is off, and the answer says
    so (``webhook``)."""
    base = allowed_label_studio(settings, body.hostname) if body.hostname else None
    if body.hostname and base is None and settings.label_studio.allowed_urls:
        raise Forbidden(Errors.E1013.format(url=ls.instance_of(body.hostname),
                                            allowed=", ".join(settings.label_studio.allowed_urls)))
    instance = ls.instance_of(body.hostname or f"http://{request.client.host if request.client else 'unknown'}")
    try:
        link, project = ls.link_project(session, settings, user, uid=body.project, instance=instance, label_config=body.schema_,
                                        title=f"Label Studio project {body.project.split('.')[0]}")
    except InvalidInput as exc:  # Label Studio shows only the status line: the reasons go to the log too
        logger.warning("Label Studio project %s at %s cannot be linked: %s", body.project, instance,
                       "; ".join(e.message for e in exc.errors) or exc.detail)
        raise
    session.commit()
    answer = {"model_version": _model_version(_server_of(session, project))}
    if not settings.label_studio.allowed_urls:
        answer["webhook"] = Errors.E1015
    elif not link.webhook_ready and base is not None and body.access_token:
        request.app.state.ls_webhooks.secure(WebhookJob(link.id, link.ls_project_id, base, body.access_token,
                                            request.url.path.rsplit("/", 1)[0] + "/webhook",
                                            request.headers.get("authorization", "")))
    return answer


_slots: dict[int, threading.BoundedSemaphore] = {}


def _slot(request: Request, limit: int) -> threading.BoundedSemaphore:
    """This API process's prediction slots (one semaphore per app)."""
    return _slots.setdefault(id(request.app), threading.BoundedSemaphore(limit))


@router.post("/predict")
def predict(body: LsPredict, request: Request, user: LsUser, writes: WriteSessionsDep, settings: SettingsDep,
            scheduler: SchedulerDep) -> dict[str, Any]:
    """Predictions for Label Studio's tasks from the project's running server, in Label Studio's shape (one per task,
    chunk-level results with scores, and the model version). With no server yet, one is queued from the project's
    config (503 until it runs); with no trained model, 409 says how to get one. At most
    ``ANNORAY_LABEL_STUDIO__MAX_CONCURRENT_PREDICTIONS`` are answered at once; others wait their turn, then get 503.

    Its writes are short transactions of their own, never open while the server works (on SQLite this route does not
    queue behind other writers for its whole length: see ``api/ops.py``)."""
    slot = _slot(request, settings.label_studio.max_concurrent_predictions)
    if not slot.acquire(timeout=settings.label_studio.prediction_wait_s):
        raise Unavailable(Errors.E1008.format(limit=settings.label_studio.max_concurrent_predictions))
    try:
        with writes.begin() as session:
            _, project = ls.linked(session, body.project)
            _require_manager(session, project, user, body.project)
            config = project_config(project)
            if config.visual_ner is not None:
                raise InvalidInput(Errors.E1010.format(project_id=project.id))
            tasks = ls.mirror_tasks(session, project, config, body.tasks)
            task_ids = [tasks[t["id"]].id for t in body.tasks]
            server = _server_or_deploy(session, settings, scheduler, project, user)
        if server.status is not ServerStatus.RUNNING:
            scheduler.wake()  # committed: the scheduler sees the server (a queued one may be new)
            raise Unavailable(Errors.E1007.format(server_id=server.id, project_id=project.id, status=server.status.value))
        outputs = scheduler.predict(server.id, [task_text(config, t["data"]) for t in body.tasks],
                                    settings.label_studio.prediction_timeout_s)
    finally:
        slot.release()
    version = _model_version(server)
    results = []
    for output in outputs:
        result, score = ([], None) if "error" in output else label_studio_result(config, output)
        results.append({"result": result, "score": score, "model_version": version})
    _keep(writes, project.id, task_ids, results, version)
    return {"results": results, "model_version": version}


def _require_manager(session: Session, project: Project, user: User, uid: str) -> None:
    member = ProjectRepository(session).member(project.id, user.id)
    if member is None or member.role not in OWNER_MANAGER:
        raise Forbidden(Errors.E1003.format(uid=uid, project_id=project.id))


def _server_or_deploy(session: Session, settings: Settings, scheduler: SchedulerClient, project: Project, user: User) -> PreannotationServer:
    """The project's server, running or on its way; queued from the project's config when it has none (the
    seeds' Deploy button). The caller commits, then wakes the scheduler."""
    server = _server_of(session, project)
    if server is None:
        if not project_config(project).models:
            raise Conflict(Errors.E1006.format(project_id=project.id))
        server = request_server(session, settings, user, ServerRequest(project=project), why_never=scheduler.never_reason)
        session.flush()
    return server


def _keep(sessions: sessionmaker[Session], project_id: int, task_ids: list[int], results: list[dict[str, Any]], version: str) -> None:
    """Keep the predictions annoray made for Label Studio (once per task and model version), with each task's
    uncertainty, as a pre-annotation job would."""
    with sessions.begin() as session:
        seen = set(session.scalars(select(Prediction.task_id).where(
            Prediction.project_id == project_id, Prediction.model_version == version, Prediction.task_id.in_(task_ids))))
        for task_id, r in zip(task_ids, results, strict=True):
            if task_id in seen:
                continue
            seen.add(task_id)
            session.add(Prediction(project_id=project_id, task_id=task_id, result=r["result"], score=r["score"], model_version=version))
            session.get(Task, task_id).uncertainty = uncertainty(r["result"])  # type: ignore[union-attr]


def _project_uid(payload: dict[str, Any] | None) -> str | None:
    """The uid of the project an event names (its id and creation time, as the ML backend calls name it)."""
    if not payload or not isinstance(payload.get("id"), int) or not isinstance(payload.get("created_at"), str):
        return None
    try:
        return ls.uid_of(payload["id"], datetime.fromisoformat(payload["created_at"].replace("Z", "+00:00")))
    except ValueError:
        return None


def _as_list(value: Any) -> list[dict[str, Any]]:
    return [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, dict)]


@router.post("/webhook")
def webhook(body: LsWebhook, user: LsUser, session: SessionDep, reads: SessionsDep, settings: SettingsDep,
            scheduler: SchedulerDep) -> dict[str, Any]:
    """Label Studio's events: annotations created or updated become completions (once per Label Studio annotation),
    deleted ones are removed, reviews accept or reject them, START_TRAINING queues a training; other events are
    acknowledged and ignored."""
    action = body.action
    if action not in (*ANNOTATION_EVENTS, *DELETE_EVENTS, *REVIEW_EVENTS, "START_TRAINING"):
        return {"action": action, "ignored": True}
    uid = _project_uid(body.project)
    if uid is None:
        raise InvalidInput(Errors.E1002.format(uid="(the event names no project with 'id' and 'created_at')"))
    link, project = ls.linked(session, uid)
    _require_manager(session, project, user, uid)
    config = project_config(project)
    answer: dict[str, Any] = {"action": action, "project_id": project.id}
    if action in ANNOTATION_EVENTS:
        annotations, tasks = _as_list(body.annotation), _as_list(body.task)
        mirrored = ls.mirror_tasks(session, project, config, tasks)
        completions = []
        for annotation in annotations:
            task = mirrored.get(annotation.get("task"))  # type: ignore[arg-type]
            if task is None:
                raise InvalidInput(Errors.E1004.format(index=annotation.get("task")))
            author = ls.member_for(session, project, link.instance, _user_id(annotation.get("completed_by")),
                                   priority=settings.label_studio.annotator_priority)
            completion = ls.apply_annotation(session, project, config, task, author, annotation)
            completions.append(completion.id if completion else None)
        answer["completions"] = completions
        due = count_eligible(session, project, [t.id for t in mirrored.values()])
    elif action in DELETE_EVENTS:
        answer["removed"] = ls.remove_annotations(session, project, [a.get("id") for a in _as_list(body.annotations or body.annotation)])
        due = False
    elif action in REVIEW_EVENTS:
        review = body.review or {}
        annotation = review.get("annotation")
        annotation_id = annotation.get("id") if isinstance(annotation, dict) else annotation
        if not ls.is_id(annotation_id) or not isinstance(review.get("accepted"), bool):
            raise InvalidInput(Errors.E1005)
        reviewer = ls.member_for(session, project, link.instance, _user_id(review.get("created_by")), role=Role.REVIEWER,
                                 priority=settings.label_studio.annotator_priority)
        completion = ls.apply_review(session, project, reviewer, annotation_id, review["accepted"])
        answer["completion"] = completion.id if completion else None
        due = completion is not None and count_eligible(session, project, [completion.task_id])
    else:
        answer["jobs"] = _start_training(session, reads, settings, scheduler, project, user)
        return answer
    session.commit()
    if due:
        scheduler.wake()
    return answer


def _user_id(value: Any) -> int:
    user_id = value.get("id") if isinstance(value, dict) else value
    if not ls.is_id(user_id):
        raise InvalidInput(Errors.E1012)
    return user_id


def _start_training(session: Session, reads: sessionmaker[Session], settings: Settings, scheduler: SchedulerClient,
                    project: Project, user: User) -> list[int]:
    """Label Studio's Start Training: every kind the config has, with the project's active-learning parameters, deployed
    when done (its server then predicts with the new models)."""
    session.expunge(project)  # the user is of the authentication's own session, never this one
    session.rollback()
    request = TrainingRequest(deploy=True, params=TrainingParams(**(project.active_learning_params or {})))
    jobs, _ = request_trainings(session, reads, settings, project, user, request, why_never=scheduler.never_reason)
    session.commit()
    scheduler.wake()
    return [j.id for j in jobs]


@router.post("/train")
def train(body: dict[str, Any], user: LsUser, session: SessionDep, reads: SessionsDep, settings: SettingsDep,
          scheduler: SchedulerDep) -> dict[str, Any]:
    """Label Studio's older Start Training call (it sends the annotations too; annoray already has them)."""
    uid = body.get("project")
    if not isinstance(uid, str):
        raise InvalidInput(Errors.E1002.format(uid=str(uid)[:40]))
    _, project = ls.linked(session, uid)
    _require_manager(session, project, user, uid)
    return {"job": ",".join(map(str, _start_training(session, reads, settings, scheduler, project, user)))}


class LsTaskIn(BaseModel):
    """A Label Studio task as its API lists it, with its annotations."""

    model_config = ConfigDict(extra="allow")

    id: int = Field(ge=1, le=2**31 - 1)
    data: dict[str, Any]
    annotations: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)


class LsImport(BaseModel):
    """A page of a Label Studio project, as ``annoray ls sync`` reads it through Label Studio's API."""

    project: str = Field(pattern=UID, description="The project's uid: `<id>.<created, epoch seconds>`.")
    schema_: str = Field("", alias="schema", max_length=2**20, description="The project's labeling config.")
    title: str = Field("", max_length=200)
    instance: str = Field(max_length=300, description="The Label Studio server's address.")
    users: dict[str, str] = Field(default_factory=dict, description="Label Studio user id -> email, for members' names.")
    tasks: list[LsTaskIn] = Field(max_length=1000)


@router.post("/import")
def import_page(body: LsImport, user: LsUser, session: SessionDep, settings: SettingsDep, scheduler: SchedulerDep) -> dict[str, Any]:
    """Mirror a page of Label Studio tasks and their annotations (the sync's pull): the project linked as setup links
    it, each task and annotation made once and updated to what Label Studio has, annotations no longer there removed.
    Sent again, it changes nothing. A bad annotation refuses the whole page."""
    link, project = ls.link_project(session, settings, user, uid=body.project, instance=ls.instance_of(body.instance),
                                    label_config=body.schema_, title=body.title or None)
    _require_manager(session, project, user, body.project)
    config = project_config(project)
    tasks = ls.mirror_tasks(session, project, config, [{"id": t.id, "data": t.data} for t in body.tasks])
    kept, removed = 0, 0
    for item in body.tasks:
        task = tasks[item.id]
        live = []
        for annotation in item.annotations:
            author_id = _user_id(annotation.get("completed_by"))
            author = ls.member_for(session, project, link.instance, author_id, name=body.users.get(str(author_id)),
                                   priority=settings.label_studio.annotator_priority)
            if ls.apply_annotation(session, project, config, task, author, annotation) is not None:
                live.append(annotation["id"])
                kept += 1
        removed += ls.remove_annotations_of_task(session, project, task, keep=live)
    due = count_eligible(session, project, [t.id for t in tasks.values()])
    session.commit()
    if due:
        scheduler.wake()
    return {"project_id": project.id, "tasks": len(tasks), "completions": kept, "removed": removed}


@router.get("/predictions")
def predictions(user: LsUser, reads: SessionsDep, project: Annotated[str, Query(pattern=UID)],
                after: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
                limit: Annotated[int, Query(ge=1, le=1000)] = 500) -> dict[str, Any]:
    """The newest annoray prediction of each mirrored Label Studio task, by Label Studio task id from ``after`` (the
    sync's push), with the next ``after`` while there are more."""
    with reads() as session:
        _, linked_project = ls.linked(session, project)
        _require_manager(session, linked_project, user, project)
        items, next_after = ls.newest_predictions(session, linked_project, after=after, limit=limit)
    return {"items": items, "next": next_after}
