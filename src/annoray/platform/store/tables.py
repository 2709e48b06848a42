"""The SQL store's tables (SQLAlchemy 2). Alembic migrations in ``migrations/`` build them."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from annoray.platform.lifecycle import JobStatus, OcrStatus, ServerStatus

JsonType = JSON().with_variant(JSONB(), "postgresql")


MAX_ID = 2**31 - 1
"""The largest id a row can have: ids are INTEGER columns, signed 32-bit on PostgreSQL."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JsonType, list[Any]: JsonType}


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])


class Role(str, enum.Enum):
    OWNER = "owner"
    MANAGER = "manager"
    ANNOTATOR = "annotator"
    REVIEWER = "reviewer"


class CompletionStatus(str, enum.Enum):
    DRAFT = "draft"
    SUBMITTED = "submitted"


class ReviewStatus(str, enum.Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_service: Mapped[bool] = mapped_column(Boolean, default=False)  # a pipeline's account: API tokens, no dashboard
    active: Mapped[bool] = mapped_column(Boolean, default=True)  # disabled by an admin: no token, no session works
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TokenScope(str, enum.Enum):
    """What a token lets its holder do, within the holder's own rights: read (GET only), write (anything the user's
    roles allow but an admin's actions), admin (everything the user may do)."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


class ApiToken(Base):
    """A named API token of a user, for automation: stored as its hash, shown once, with a scope and an expiry."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[TokenScope] = mapped_column(_enum(TokenScope))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AuditEvent(Base):
    """A state-changing request: who, when, from where, what, and the outcome."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True)
    username: Mapped[str | None] = mapped_column(String(150), nullable=True)
    token_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the named token used; none: the user's own
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(2000))
    route: Mapped[str | None] = mapped_column(String(300), nullable=True)  # the route's template: /api/projects/{pid}
    status: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))  # ok | refused | error
    detail: Mapped[str | None] = mapped_column(String(300), nullable=True)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    labeling_config: Mapped[str] = mapped_column(Text)
    config_version: Mapped[int] = mapped_column(Integer, default=1)
    language: Mapped[str] = mapped_column(String(8), default="en")
    model_type: Mapped[str] = mapped_column(String(32), default="open_source")
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Active learning: a training every `active_learning_every` newly eligible completions.
    active_learning_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    active_learning_every: Mapped[int] = mapped_column(Integer, default=50)
    active_learning_deploy: Mapped[bool] = mapped_column(Boolean, default=False)
    active_learning_counter: Mapped[int] = mapped_column(Integer, default=0)  # counted eligible tasks since the last trigger
    active_learning_pending: Mapped[bool] = mapped_column(Boolean, default=False)  # a trigger the scheduler has not acted on yet
    active_learning_params: Mapped[dict[str, Any]] = mapped_column(default=dict)  # training parameters of its trainings
    active_learning_last: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the last trigger: when, the jobs, or why none
    # Deploy after training replaces a model only if the new one scores at least as well (when gated).
    deploy_gate: Mapped[bool] = mapped_column(Boolean, default=True)
    deploy_metric: Mapped[str] = mapped_column(String(32), default="micro.f1")

    members: Mapped[list[Member]] = relationship(back_populates="project", cascade="all, delete-orphan")


class LabelingConfigVersion(Base):
    """Every saved labeling config, so a deploy's rewrite can be traced and undone."""

    __tablename__ = "labeling_config_versions"
    __table_args__ = (UniqueConstraint("project_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    labeling_config: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(200), default="edited")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("project_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[Role] = mapped_column(_enum(Role))
    priority: Mapped[int] = mapped_column(Integer, default=0)

    project: Mapped[Project] = relationship(back_populates="members")
    user: Mapped[User] = relationship()


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_project_id_id", "project_id", "id"),
        Index("ux_tasks_project_ls_task", "project_id", "ls_task_id", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    data: Mapped[dict[str, Any]] = mapped_column()
    ls_task_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the Label Studio task it mirrors
    # Denormalised from task_tags for reading; task_tags is what queries filter on.
    tags: Mapped[list[Any]] = mapped_column(default=list)
    uncertainty: Mapped[float | None] = mapped_column(Float, nullable=True)
    active_learning_counted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)  # counted once by active learning
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Document(Base):
    """An uploaded file (an image or a PDF), split into pages; its bytes are in the file store."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    pages: Mapped[list[Page]] = relationship(back_populates="document", order_by="Page.page", cascade="all, delete-orphan")


class Page(Base):
    """One page of a document as an upright PNG in the file store, with its OCR words once OCR is done."""

    __tablename__ = "pages"
    __table_args__ = (UniqueConstraint("document_id", "page"), Index("ix_pages_ocr_status", "ocr_status"))

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    page: Mapped[int] = mapped_column(Integer)  # from 1
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(300))  # the page image's key in the file store
    ocr_status: Mapped[OcrStatus] = mapped_column(_enum(OcrStatus), default=OcrStatus.QUEUED)
    ocr_language: Mapped[str] = mapped_column(String(16))
    # [text, x0, y0, x1, y1, block, line] per word in reading order, pixel boxes of the stored page image
    ocr_words: Mapped[list[Any] | None] = mapped_column(JsonType, nullable=True)
    ocr_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    ocr_attempts: Mapped[int] = mapped_column(Integer, default=0)
    ocr_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)

    document: Mapped[Document] = relationship(back_populates="pages")


class TaskTag(Base):
    __tablename__ = "task_tags"
    __table_args__ = (Index("ix_task_tags_project_tag_task", "project_id", "tag", "task_id"),)

    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(100), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))


class Completion(Base):
    __tablename__ = "completions"
    __table_args__ = (
        Index("ix_completions_project_task", "project_id", "task_id"),
        # one completion per Label Studio annotation: a redelivered event finds the one it made
        Index("ux_completions_project_ls_annotation", "project_id", "ls_annotation_id", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    result: Mapped[list[Any]] = mapped_column()
    status: Mapped[CompletionStatus] = mapped_column(_enum(CompletionStatus))
    review_status: Mapped[ReviewStatus | None] = mapped_column(_enum(ReviewStatus), nullable=True)
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    prediction_id: Mapped[int | None] = mapped_column(
        ForeignKey("predictions.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ls_annotation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the Label Studio annotation it mirrors


class LabelStudioLink(Base):
    """A Label Studio project linked to an annoray project (by the uid Label Studio's ML backend calls send)."""

    __tablename__ = "label_studio_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(100), unique=True)  # Label Studio's "<project id>.<created, epoch s>"
    instance: Mapped[str] = mapped_column(String(300))  # the Label Studio server's address, as first seen
    ls_project_id: Mapped[int] = mapped_column(Integer)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    webhook_ready: Mapped[bool] = mapped_column(Boolean, default=False)  # its webhook carries the backend's credentials
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LabelStudioUser(Base):
    """The annoray user a Label Studio user annotates as, per Label Studio server."""

    __tablename__ = "label_studio_users"
    __table_args__ = (UniqueConstraint("instance", "ls_user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance: Mapped[str] = mapped_column(String(300))
    ls_user_id: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))


class Prediction(Base):
    """A model's proposal for a task; immutable once written."""

    __tablename__ = "predictions"
    __table_args__ = (
        Index("ix_predictions_project_task", "project_id", "task_id"),
        # one prediction per task per pre-annotation job: a retried batch cannot write a task twice
        Index("ux_predictions_job_task", "preannotation_job_id", "task_id", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    result: Mapped[list[Any]] = mapped_column()
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    model_version: Mapped[str] = mapped_column(String(300), default="")
    preannotation_job_id: Mapped[int | None] = mapped_column(
        ForeignKey("preannotation_jobs.id", ondelete="SET NULL"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@event.listens_for(Prediction, "before_update")
def _predictions_are_immutable(mapper: Any, connection: Any, target: Prediction) -> None:
    raise ValueError(f"prediction {target.id} is immutable; create a completion from it instead")


class CatalogModel(Base):
    """A trained or registered model the platform can serve (the model catalog)."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    labels: Mapped[list[Any]] = mapped_column(default=list)
    language: Mapped[str] = mapped_column(String(8), default="en")
    embeddings: Mapped[str | None] = mapped_column(String(300), nullable=True)
    engine: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source: Mapped[str] = mapped_column(String(32), default="manual")
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="SET NULL"), nullable=True, index=True
    )
    training_job_id: Mapped[int | None] = mapped_column(
        ForeignKey("training_jobs.id", ondelete="SET NULL"), nullable=True
    )
    uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    shared: Mapped[bool] = mapped_column(default=False)  # by an admin: every project's members may serve it
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TrainingJob(Base):
    __tablename__ = "training_jobs"
    __table_args__ = (
        Index("ix_training_jobs_status", "status"),
        Index("ix_training_jobs_project_kind", "project_id", "kind"),
        Index("ix_training_jobs_request_key", "project_id", "request_key", "kind", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    # The client's Idempotency-Key: a request sent again with it (its answer lost) gets the same jobs, not new ones.
    request_key: Mapped[str | None] = mapped_column(String(100), nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    engine: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32), default="manual")
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus), default=JobStatus.QUEUED)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    data_summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    warnings: Mapped[list[Any]] = mapped_column(default=list)
    progress: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    resources: Mapped[dict[str, Any]] = mapped_column(default=dict)
    scopes: Mapped[list[Any]] = mapped_column(default=list)  # license scopes it leases a seat of while running
    model: Mapped[str | None] = mapped_column(String(300), nullable=True)  # the catalog name of the model it trained
    node_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # where its worker runs, once placed
    log_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    selection: Mapped[dict[str, Any]] = mapped_column(default=dict)
    embeddings: Mapped[str | None] = mapped_column(String(300), nullable=True)
    deploy: Mapped[bool] = mapped_column(Boolean, default=False)
    deploy_forced: Mapped[bool] = mapped_column(Boolean, default=False)  # deploy "force": past the quality floor and the gate
    deployment: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the deploy decision: both scores, the config version
    custom: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)  # the owner's config it trains with, as sent
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)  # first start/wait/never
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class WebSession(Base):
    """A person signed in to the dashboard: the cookie carries the key, the store only its hash."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))  # what every form that changes something carries
    one_time: Mapped[bool] = mapped_column(default=False)  # a sign-in link: used once to open a session, never a session
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TrainingConfig(Base):
    """A project owner's own spaCy training config for NER (and, where the operator allows it, code)."""

    __tablename__ = "training_configs"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    code: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TrainingLogLine(Base):
    """One line of a training log: its text, and the structured record the JSON log is built from."""

    __tablename__ = "training_log_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    event: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class PreannotationServer(Base):
    __tablename__ = "servers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="SET NULL"), nullable=True, index=True
    )
    models: Mapped[list[Any]] = mapped_column(default=list)  # what it should serve
    deployed_models: Mapped[list[Any]] = mapped_column(default=list)  # what its Serve app was last built with
    status: Mapped[ServerStatus] = mapped_column(_enum(ServerStatus), default=ServerStatus.QUEUED)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    replicas: Mapped[int] = mapped_column(Integer, default=1)
    max_replicas: Mapped[int] = mapped_column(Integer, default=1)  # autoscaling bound; the scheduler reserves this many
    resources: Mapped[dict[str, Any]] = mapped_column(default=dict)  # per replica
    node_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the first node its replicas run on, once placed
    spread: Mapped[list[Any] | None] = mapped_column(JsonType, nullable=True)  # [node id, replicas held there], once placed
    autoscaling: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)  # Serve's options beside min and max
    scopes: Mapped[list[Any]] = mapped_column(default=list)  # license scopes it leases a seat of while deployed
    rules: Mapped[list[Any]] = mapped_column(default=list)  # names of the rules it runs
    language: Mapped[str] = mapped_column(String(8), default="en")
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PreannotationJob(Base):
    __tablename__ = "preannotation_jobs"
    __table_args__ = (Index("ix_preannotation_jobs_status", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    server_id: Mapped[int | None] = mapped_column(ForeignKey("servers.id", ondelete="SET NULL"), nullable=True)
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus), default=JobStatus.QUEUED)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    task_ids: Mapped[list[Any] | None] = mapped_column(JsonType, nullable=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[list[Any]] = mapped_column(default=list)  # {task_id, error} of the first failed tasks
    replicas_used: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)  # tasks predicted, per replica
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class License(Base):
    """An uploaded license: its checked terms, and in ``document`` the signed original, secrets included.

    ``license_key`` is the document's public ``id``; the document itself never leaves the store.
    """

    __tablename__ = "licenses"

    id: Mapped[int] = mapped_column(primary_key=True)
    license_key: Mapped[str] = mapped_column(String(200), unique=True)
    issuer: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    seats: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    document: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LicenseLease(Base):
    """One seat of a license held by a training job or a server."""

    __tablename__ = "license_leases"
    __table_args__ = (
        Index("ix_license_leases_active", "license_id", "released_at"),
        Index("ix_license_leases_holder", "holder_kind", "holder_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    license_id: Mapped[int] = mapped_column(ForeignKey("licenses.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(64))
    holder_kind: Mapped[str] = mapped_column(String(32))
    holder_id: Mapped[int] = mapped_column(Integer)
    leased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Rule(Base):
    """A regex or dictionary rule reusable by every project's pre-annotation server."""

    __tablename__ = "rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    pattern: Mapped[str | None] = mapped_column(Text, nullable=True)
    terms: Mapped[list[Any]] = mapped_column(default=list)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
