"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from annoray.platform.labeling.config import ModelKind
from annoray.platform.labeling.datasets import SplitMethod
from annoray.platform.lifecycle import JobStatus, OcrStatus, ServerStatus
from annoray.platform.models.training import TrainingParams
from annoray.platform.store.tables import MAX_ID, CompletionStatus, ReviewStatus, Role, TokenScope

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


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=150, pattern=r"^[A-Za-z0-9_.@-]+$")
    service: bool = Field(False, description="A service account, for pipelines: it uses API tokens and never signs in "
                          "to the dashboard.")


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    is_admin: bool = False
    is_service: bool = False
    active: bool = Field(True, description="False: disabled by an admin; none of the user's tokens or sessions works.")


class UserCreated(UserOut):
    token: str = Field(description="The user's API token; shown this once only.")


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    active: bool = Field(description="false: every token and dashboard session of the user stops at once; true: the user "
                         "comes back with no token (an admin makes one: POST /api/tokens with its username).")


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100, description="What the token is for, as its list shows it.")
    scope: TokenScope = Field(TokenScope.WRITE, description="read: GET only; write: what the user's roles allow but "
                              "an admin's actions; admin: everything the user may do (an admin's tokens only).")
    expires_in_days: float | None = Field(90, gt=0, le=3650, description="Days until it stops working; null: never.")
    username: str | None = Field(None, max_length=150, description="Whose token (admins only; default: yours), for "
                                 "example a service account's.")


class TokenOut(BaseModel):
    id: int
    name: str
    username: str
    scope: TokenScope
    created_at: Timestamp
    expires_at: Timestamp | None
    last_used_at: Timestamp | None
    revoked_at: Timestamp | None


class TokenCreated(TokenOut):
    token: str = Field(description="The token; shown this once only, stored only as its hash.")


class ProjectCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    labeling_config: str = Field(min_length=1)
    language: str = "en"
    model_type: str = "open_source"


class ProjectOut(BaseModel):
    id: int
    name: str
    labeling_config: str
    config_version: int
    language: str
    model_type: str
    created_at: Timestamp
    role: Role | None = None
    kinds: dict[str, Any] = Field(description="Model kinds the labeling config implies, with their labels.")
    models: list[str] = Field(description="The models the labeling config names (what a server for it serves).")
    active_learning: ActiveLearningOut


class ActiveLearningIn(BaseModel):
    """Active learning and the gate of deploys after training."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool
    every: int = Field(50, ge=1, le=1_000_000, description="Train after this many newly eligible completions.")
    deploy: bool = Field(False, description="Deploy the models its trainings produce.")
    gate: bool = Field(True, description="Deploy after training only replaces a model the new one scores at least as well as.")
    metric: str = Field("micro.f1", description="The gate's metric on the held-out split: micro.f1, macro.f1, accuracy, ...")
    params: dict[str, Any] | None = Field(None, description="Training parameters of its trainings; default: the defaults.")


class ActiveLearningOut(BaseModel):
    enabled: bool
    every: int
    deploy: bool
    gate: bool
    metric: str
    params: dict[str, Any]
    counter: int = Field(description="Newly eligible completions counted toward the next training.")
    pending: bool = Field(description="A training is due and waits for the project's running training to end.")
    last: dict[str, Any] = Field(description="The last trigger: when, the training jobs it queued, or why it queued none.")


class LabelingConfigUpdate(BaseModel):
    labeling_config: str = Field(min_length=1)


class MemberCreate(BaseModel):
    username: str
    role: Role
    priority: int = Field(0, ge=-1000, le=1000, description="Higher wins when several members submitted a task.")


class MemberOut(BaseModel):
    user_id: int
    username: str
    role: Role
    priority: int


class ImportOut(BaseModel):
    imported: int
    task_ids: list[int]


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    data: dict[str, Any]
    tags: list[str]
    uncertainty: float | None = Field(None, description="1 - the lowest confidence of the last pre-annotation's regions.")
    created_at: Timestamp


class CompletionCreate(BaseModel):
    result: list[Any]
    status: CompletionStatus = CompletionStatus.SUBMITTED


class CompletionEdit(BaseModel):
    result: list[Any] | None = None
    status: CompletionStatus | None = None


class ReviewIn(BaseModel):
    status: ReviewStatus


class CompletionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    task_id: int
    author_id: int
    result: list[Any]
    status: CompletionStatus
    review_status: ReviewStatus | None
    reviewer_id: int | None
    prediction_id: int | None
    created_at: Timestamp
    updated_at: Timestamp


class TaskDetail(TaskOut):
    completions: list[CompletionOut]


class PredictionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    task_id: int
    result: list[Any]
    score: float | None
    model_version: str
    created_at: Timestamp


class TrainingDataOut(BaseModel):
    tasks_selected: int
    split: dict[str, Any]
    kinds: dict[str, Any]
    warnings: list[str]
    errors: list[str]


class TrainingCreate(BaseModel):
    """A training request; every kind trains as its own job."""

    model_config = ConfigDict(extra="forbid")
    kinds: list[ModelKind] | None = Field(None, description="Kinds to train; default: every kind the labeling config has.")
    engine: str = Field("spacy", description="Engine family: spacy (built in), or spacy_words (Visual NER on the words alone, to measure what the layout brings).")
    embeddings: str | None = Field(None, description="Catalog name of registered static vectors; default: none (hash embeddings).")
    params: TrainingParams = Field(default_factory=TrainingParams, description=(
        "Training parameters; each one left out takes the engine's default (GET /api/engines lists them: the text "
        "kinds as below, Visual NER 30 epochs of batches of 4 at learning rate 0.002)."))
    split: SplitMethod = Field(SplitMethod.RANDOM, description="random (by validation_split, seeded) or tags (train/test task tags).")
    task_tags: list[str] = Field(default_factory=list, description="Train on tasks with any of these tags; default: all tasks.")
    reviewed_only: bool = Field(False, description="Only completions a reviewer accepted.")
    deploy: bool | Literal["force"] = Field(
        False, description='Deploy the models when the training succeeds and they pass the quality floor and the gate; '
        '"force" deploys them whatever they score.')
    config: RowId | None = Field(None, description="Id of one of the project's own training configs: NER trains with it.")


class EngineOut(BaseModel):
    name: str = Field(description="Versioned name, family.kind.v1, as jobs and models record it.")
    family: str = Field(description='What a training request names as "engine".')
    kinds: list[str]
    languages: list[str]
    available: bool
    reason: str | None = Field(description="Why it cannot train here, when it cannot.")
    defaults: dict[str, Any] = Field(description="The training parameters a request that gives none trains this engine "
                                     "with (a request's own parameters take their place one by one).")


class TrainingConfigCreate(BaseModel):
    """A spaCy training config (config.cfg as spaCy writes it) for the project's NER model."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9 _.-]+$")
    config: str = Field(min_length=1, max_length=200_000, description="The config.cfg text; [nlp] and [components] are used.")
    code: str | None = Field(None, max_length=200_000, description="Python registering functions the config names: "
                             "only with ANNORAY_TRAINING__ALLOW_CUSTOM_CODE, only from an admin.")


class TrainingConfigOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    project_id: int
    name: str
    kind: str
    text: str = Field(description="The config.cfg as uploaded.")
    code: bool = Field(description="Whether code came with it.")
    created_at: Timestamp


class TrainingJobRef(BaseModel):
    id: int
    kind: str
    status: JobStatus


class TrainingCreated(BaseModel):
    jobs: list[TrainingJobRef]
    warnings: list[str]


class TrainingProgress(BaseModel):
    epoch: int = 0
    epochs: int = 0
    percent: float = 0.0
    loss: float | None = None


class TrainingOut(BaseModel):
    id: int
    project_id: int
    kind: str
    engine: str
    source: str
    status: JobStatus
    reason: str | None = Field(None, description="Why the job waits, while it waits.")
    error: str | None = Field(None, description="Why the job failed or was cancelled.")
    progress: TrainingProgress
    metrics: dict[str, Any]
    warnings: list[str]
    model: str | None = Field(None, description="Catalog name of the trained model, once it succeeded.")
    params: dict[str, Any]
    selection: dict[str, Any]
    data: dict[str, Any] = Field(description="The data used: tasks, split sizes, per-label counts.")
    embeddings: str | None
    deploy: bool | Literal["force"]
    deployment: dict[str, Any] = Field(description="The deploy after training: decision and its reason, metric, both scores, "
                                       "the held-out size, config version.")
    attempts: int = Field(description="Failures so far: workers restarted, or runs queued again, from the last checkpoint.")
    resources: dict[str, Any] = Field(description="Of its worker: cpus, memory_gb, gpus.")
    node_id: str | None = Field(None, description="The node its worker runs on, once placed.")
    licenses: list[str] = Field(description="License scopes it leases a seat of while it runs.")
    created_at: Timestamp
    decided_at: Timestamp | None = Field(description="When the scheduler first decided it (start, wait or never).")
    started_at: Timestamp | None
    finished_at: Timestamp | None
    log: str = Field(description="Where the training log downloads (text; ?format=json for its JSON twin).")


class ModelRegister(BaseModel):
    """Register static vectors (a local word2vec-style text file) so trainings can use them as embeddings."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=300, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    kind: Literal["embeddings", "sparknlp_embeddings"] = Field(
        "embeddings", description="embeddings: a word2vec-style text file (spaCy); sparknlp_embeddings: a saved "
        "WordEmbeddingsModel folder (Spark NLP).")
    uri: str = Field(description="Path of the vectors file or folder, readable by every node.")
    language: str = "en"


class ModelShare(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shared: bool = Field(description="Whether every project's servers may hold it (else: its own project's).")


class ModelImport(BaseModel):
    """A model trained outside annoray, to serve: a spaCy pipeline folder (``nlp.to_disk``) or a Spark NLP PipelineModel
    folder, on a path or a pyarrow URI."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=300, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Its name in the catalog.")
    uri: str = Field(min_length=1, max_length=2000, description="A folder path, file://, s3:// or gs://; never http(s).")
    engine: str = Field("spacy", description="What wrote it: spacy (a pipeline folder) or sparknlp (a saved PipelineModel).")
    language: str = Field("en", max_length=8, description="A Spark NLP pipeline's language (a spaCy pipeline says its own).")


class ModelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    name: str
    kind: str
    labels: list[Any]
    language: str
    embeddings: str | None
    engine: str | None
    source: str
    project_id: int | None
    training_job_id: int | None
    uri: str | None = Field(description="Where the model store keeps it: shown to admins only (null for others).")
    stored: bool = Field(False, description="Whether the model store holds it (a server can load it).")
    shared: bool = Field(description="Shared by an admin: every project's servers may hold it.")
    metrics: dict[str, Any] = Field(description="Benchmark on the held-out split: per-label P/R/F1, micro, macro; confusion matrix for classifiers.")
    created_at: Timestamp


class LicenseDocument(BaseModel):
    """A license as its issuer hands it out; every field besides the terms (secrets included) stays in the store."""

    license: dict[str, Any] = Field(description="The signed fields: id, issuer, scopes, seats, expires_at (ISO 8601 with a time zone), and any others.")
    signature: str = Field(description="Base64 Ed25519 signature of the canonical JSON of `license` (sorted keys, no spaces, UTF-8).")


class LeaseOut(BaseModel):
    scope: str
    holder: str = Field(description="What holds the seat: `training` or `server`.")
    holder_id: int
    leased_at: Timestamp


class LicenseOut(BaseModel):
    id: int
    key: str = Field(description="The license's public id from its document.")
    issuer: str
    scopes: list[str]
    seats: int
    leased: int
    leases: list[LeaseOut]
    expires_at: Timestamp
    expired: bool
    created_at: Timestamp


class ServerCreate(BaseModel):
    """Deploy the models a project's labeling config names, or the listed catalog models."""

    project_id: RowId | None = Field(None, description="The project it belongs to: serve the models its labeling config "
                                     "names (and its rules). None: a server shared by every project (admins only).")
    models: list[str] | None = Field(None, description="Catalog model names (at most five); overrides the project's. A "
                                     "project's server holds its own models, imported ones and shared ones.")
    name: str | None = Field(None, max_length=200, description="Unique server name; default from the project.")
    replicas: int = Field(1, ge=1, le=64, description="Replicas (the autoscaling minimum).")
    max_replicas: int | None = Field(None, ge=1, le=64, description="Autoscaling maximum; default: replicas (no autoscaling). "
                                     "The scheduler holds room for this many, spread over the nodes.")
    target_ongoing_requests: float | None = Field(None, gt=0, le=1000, description=(
        "Serve's autoscaling target: requests waiting on each replica before it adds one (Serve's default: 2)."))
    upscale_delay_s: float | None = Field(None, ge=0, le=86400, description="How long the load must stay high before a replica is added (Serve's default: 30 s).")
    downscale_delay_s: float | None = Field(None, ge=0, le=86400, description="How long the load must stay low before a replica is removed (Serve's default: 600 s).")


class ServedModelOut(BaseModel):
    name: str
    kind: str | None
    labels: list[str] = Field(description="The labels this model predicts.")


class ServerOut(BaseModel):
    id: int
    name: str
    project_id: int | None
    status: ServerStatus
    reason: str | None = Field(None, description="What a queued server waits for.")
    error: str | None = Field(None, description="Why the server failed.")
    models: list[ServedModelOut]
    deployed_models: list[str] = Field(description="What its Serve app runs now; differs from models while it redeploys.")
    rules: list[str]
    replicas: int
    max_replicas: int
    resources: dict[str, Any] = Field(description="Per replica: cpus, memory_gb, gpus.")
    autoscaling: dict[str, float] = Field(description="Serve's autoscaling options it was asked with, beside min and max replicas.")
    node_id: str | None = Field(None, description="The first node its replicas run on, once placed.")
    spread: list[tuple[str, int]] = Field(description="Once placed: each node its replicas may run on, with how many it holds room for there.")
    licenses: list[str] = Field(description="License scopes it leases a seat of while deployed.")
    leases: list[LeaseOut]
    created_at: Timestamp


class PreannotationCreate(BaseModel):
    server_id: RowId
    task_ids: list[RowId] | None = Field(None, description="Tasks to pre-annotate; default: the project's tasks with no completion.")


class PreannotationOut(BaseModel):
    id: int
    project_id: int
    server_id: int | None
    status: JobStatus
    reason: str | None
    error: str | None
    total: int
    done: int
    failed: int
    progress: float = Field(description="Share of the tasks done or failed, 0 to 1.")
    failures: list[dict[str, Any]] = Field(description="The first failed tasks and why.")
    replicas_used: dict[str, int] = Field(description="How many tasks each of the server's replicas predicted, by replica id.")
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None


class RuleCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    label: str = Field(min_length=1, max_length=200, description="The label every match gets.")
    kind: str = Field(description="regex or dictionary")
    pattern: str | None = Field(None, description="The regular expression (regex rules).")
    terms: list[str] | None = Field(None, description="The terms, matched case-insensitively on token boundaries (dictionary rules).")


class RuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    label: str
    kind: str
    pattern: str | None
    terms: list[str]
    created_at: Timestamp


class PageOut(BaseModel):
    page: int = Field(description="From 1.")
    url: str = Field(description="The page image (PNG, upright), for members of the project; what a task's image points at.")
    width: int = Field(description="Pixels.")
    height: int = Field(description="Pixels.")
    ocr: OcrStatus = Field(description="queued, running, done or failed (with `error`).")
    error: str | None = Field(None, description="Why the page's OCR failed.")
    language: str = Field(description="The OCR language: the project's language.")
    word_count: int | None = Field(None, description="How many words OCR found, once done (the words: `{url}/ocr`).")
    attempts: int = Field(description="How many times OCR of the page started.")
    seconds: float | None = Field(None, description="How long the page's OCR took.")


class FileOut(BaseModel):
    id: int
    project_id: int
    filename: str
    media_type: str = Field(description="What the bytes are: image/png, image/jpeg, image/tiff or application/pdf.")
    size: int = Field(description="Bytes uploaded.")
    sha256: str
    created_at: Timestamp
    pages: list[PageOut]


class FilesOut(BaseModel):
    items: list[FileOut]
    task_ids: list[int] = Field(default_factory=list, description="With `?tasks=true`: one new task per page, in page order.")


class OcrWordOut(BaseModel):
    text: str
    box: list[int] = Field(description="x0, y0, x1, y1 in pixels of the page image.")
    block: int
    line: int = Field(description="Line number on the page, from 0, in reading order.")


class OcrWordIn(OcrWordOut):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=200, pattern=r"\S")
    box: list[int] = Field(min_length=4, max_length=4, description="x0, y0, x1, y1 in pixels of the page image.")
    block: int = Field(0, ge=0, le=1_000_000)
    line: int = Field(ge=0, le=1_000_000, description="Line number on the page, from 0, in reading order.")


class PageWordsIn(BaseModel):
    """A page's words from an OCR of your own (or transcribed by hand), in reading order."""

    model_config = ConfigDict(extra="forbid")
    words: list[OcrWordIn] = Field(max_length=50_000)


class PageOcrOut(PageOut):
    words: list[OcrWordOut] = Field(description="In reading order; empty until OCR is done.")


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    at: Timestamp
    user_id: int | None
    username: str | None = Field(description="Who: the user the request's token or dashboard session belongs to.")
    token_id: int | None = Field(description="The named API token used; null: the user's own token or a session.")
    address: str | None = Field(description="The client's address, as the API process saw it.")
    method: str
    path: str
    route: str | None = Field(description="The route's template, for grouping: /api/projects/{pid}/tasks/import.")
    status: int
    outcome: Literal["ok", "refused", "error"]
    detail: str | None = Field(description="The error code of a refusal, such as [E402].")
