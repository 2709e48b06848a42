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
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session, sessionmaker

from annoray.api.deps import SchedulerDep, SessionsDep, SettingsDep, WritesDep, identify
from annoray.api.label_studio_webhooks import WebhookJob, allowed_label_studio, client_installed
from annoray.platform.errors import Errors, Forbidden, InvalidInput, Unauthorized, Unavailable
from annoray.platform.labeling import label_studio as ls
from annoray.platform.labeling.predictions import label_studio_result, task_text
from annoray.platform.labeling.projects import project_config
from annoray.platform.models.training import TrainingParams
from annoray.platform.services import label_studio
from annoray.platform.settings import Settings
from annoray.platform.store.tables import PreannotationServer, Project, ServerStatus, User
from annoray.scheduler import SchedulerClient, TrainingRequest, deploy_for_label_studio, queue_trainings

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/ls", tags=["label studio"])

UID = r"^[1-9]\d{0,8}\.\d{1,12}$"  # a Label Studio project id (an int32 here) and its creation time
NO_MODEL = "annoray-untrained"


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


@router.post("/setup")
def setup(body: LsSetup, request: Request, user: LsUser, writes: WritesDep, settings: SettingsDep) -> dict[str, str]:
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
        link, _, server = label_studio.link(writes, settings, user, uid=body.project, instance=instance,
                                            label_config=body.schema_, title=f"Label Studio project {body.project.split('.')[0]}")
    except InvalidInput as exc:  # Label Studio shows only the status line: the reasons go to the log too
        logger.warning("Label Studio project %s at %s cannot be linked: %s", body.project, instance,
                       "; ".join(e.message for e in exc.errors) or exc.detail)
        raise
    answer = {"model_version": _model_version(server)}
    if not settings.label_studio.allowed_urls:
        answer["webhook"] = Errors.E1015
    elif not client_installed():
        answer["webhook"] = Errors.E1016
    elif not link.webhook_ready and base is not None and body.access_token:
        request.app.state.ls_webhooks.secure(WebhookJob(link.id, link.ls_project_id, base, body.access_token,
                                            request.url.path.rsplit("/", 1)[0] + "/webhook",
                                            request.headers.get("authorization", "")))
    return answer


@router.post("/predict")
def predict(body: LsPredict, request: Request, user: LsUser, writes: WritesDep, settings: SettingsDep,
            scheduler: SchedulerDep) -> dict[str, Any]:
    """Predictions for Label Studio's tasks from the project's running server, in Label Studio's shape (one per task,
    chunk-level results with scores, and the model version). With no server yet, one is queued from the project's
    config (503 until it runs); with no trained model, 409 says how to get one. At most
    ``ANNORAY_LABEL_STUDIO__MAX_CONCURRENT_PREDICTIONS`` are answered at once; others wait their turn, then get 503.

    Its writes are short transactions of their own, never open while the server works."""
    slot = request.app.state.ls_predictions
    if not slot.acquire(timeout=settings.label_studio.prediction_wait_s):
        raise Unavailable(Errors.E1008.format(limit=settings.label_studio.max_concurrent_predictions))
    try:
        project, task_ids, server = label_studio.prediction_inputs(
            writes, user, body.project, body.tasks, lambda session, project: deploy_for_label_studio(
                session, settings, user, project, why_never=scheduler.never_reason))
        if server.status is not ServerStatus.RUNNING:
            scheduler.wake()  # committed: the scheduler sees the server (a queued one may be new)
            raise Unavailable(Errors.E1007.format(server_id=server.id, project_id=project.id, status=server.status.value))
        config = project_config(project)
        outputs = scheduler.predict(server.id, [task_text(config, t["data"]) for t in body.tasks],
                                    settings.label_studio.prediction_timeout_s)
    finally:
        slot.release()
    version = _model_version(server)
    results = []
    for output in outputs:
        result, score = ([], None) if "error" in output else label_studio_result(config, output)
        results.append({"result": result, "score": score, "model_version": version})
    label_studio.keep(writes, project.id, task_ids, [{"result": r["result"], "score": r["score"]} for r in results], version)
    return {"results": results, "model_version": version}


def _project_uid(payload: dict[str, Any] | None) -> str | None:
    """The uid of the project an event names (its id and creation time, as the ML backend calls name it)."""
    if not payload or not isinstance(payload.get("id"), int) or not isinstance(payload.get("created_at"), str):
        return None
    try:
        return ls.uid_of(payload["id"], datetime.fromisoformat(payload["created_at"].replace("Z", "+00:00")))
    except ValueError:
        return None


@router.post("/webhook")
def webhook(body: LsWebhook, user: LsUser, writes: WritesDep, reads: SessionsDep, settings: SettingsDep,
            scheduler: SchedulerDep) -> dict[str, Any]:
    """Label Studio's events: annotations created or updated become completions (once per Label Studio annotation),
    deleted ones are removed, reviews accept or reject them, START_TRAINING queues a training; other events are
    acknowledged and ignored."""
    action = body.action
    if action not in (*label_studio.ANNOTATION_EVENTS, *label_studio.DELETE_EVENTS, *label_studio.REVIEW_EVENTS, "START_TRAINING"):
        return {"action": action, "ignored": True}
    uid = _project_uid(body.project)
    if uid is None:
        raise InvalidInput(Errors.E1002.format(uid="(the event names no project with 'id' and 'created_at')"))
    if action == "START_TRAINING":
        project = label_studio.linked(reads, uid, user)
        return {"action": action, "project_id": project.id,
                "jobs": _start_training(writes, reads, settings, scheduler, project, user)}
    answer, due = label_studio.apply_event(writes, settings, user, uid, label_studio.Event(
        action, task=body.task, annotation=body.annotation, annotations=body.annotations, review=body.review))
    if due:
        scheduler.wake()
    return answer


def _start_training(writes: sessionmaker[Session], reads: sessionmaker[Session], settings: Settings,
                    scheduler: SchedulerClient, project: Project, user: User) -> list[int]:
    """Label Studio's Start Training: every kind the config has, with the project's active-learning parameters, deployed
    when done (its server then predicts with the new models)."""
    request = TrainingRequest(deploy=True, params=TrainingParams(**(project.active_learning_params or {})))
    jobs, _ = queue_trainings(writes, reads, settings, project, user, request, why_never=scheduler.never_reason)
    scheduler.wake()
    return [j.id for j in jobs]


@router.post("/train")
def train(body: dict[str, Any], user: LsUser, writes: WritesDep, reads: SessionsDep, settings: SettingsDep,
          scheduler: SchedulerDep) -> dict[str, Any]:
    """Label Studio's older Start Training call (it sends the annotations too; annoray already has them)."""
    uid = body.get("project")
    if not isinstance(uid, str):
        raise InvalidInput(Errors.E1002.format(uid=str(uid)[:40]))
    project = label_studio.linked(reads, uid, user)
    return {"job": ",".join(map(str, _start_training(writes, reads, settings, scheduler, project, user)))}


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
def import_page(body: LsImport, user: LsUser, writes: WritesDep, settings: SettingsDep, scheduler: SchedulerDep) -> dict[str, Any]:
    """Mirror a page of Label Studio tasks and their annotations (the sync's pull): the project linked as setup links
    it, each task and annotation made once and updated to what Label Studio has, annotations no longer there removed.
    Sent again, it changes nothing. A bad annotation refuses the whole page."""
    answer, due = label_studio.import_page(writes, settings, user, uid=body.project, instance=ls.instance_of(body.instance),
                                           label_config=body.schema_, title=body.title or None, users=body.users,
                                           tasks=[t.model_dump() for t in body.tasks])
    if due:
        scheduler.wake()
    return answer


@router.get("/predictions")
def predictions(user: LsUser, reads: SessionsDep, project: Annotated[str, Query(pattern=UID)],
                after: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
                limit: Annotated[int, Query(ge=1, le=1000)] = 500) -> dict[str, Any]:
    """The newest annoray prediction of each mirrored Label Studio task, by Label Studio task id from ``after`` (the
    sync's push), with the next ``after`` while there are more."""
    with reads() as session:
        _, linked_project = ls.linked(session, project, user)
        items, next_after = ls.newest_predictions(session, linked_project, after=after, limit=limit)
    return {"items": items, "next": next_after}
