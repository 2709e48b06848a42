"""What training and serving keep: the model catalog, training jobs, configs and logs, servers and pre-annotation jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from annoray.platform.lifecycle import JobStatus, ServerStatus
from annoray.platform.store.tables.base import _enum, Base, JsonType, utcnow

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
    priority: Mapped[int] = mapped_column(Integer, default=0)  # higher first (the request's, else its project's)
    preemptions: Mapped[int] = mapped_column(Integer, default=0)  # times it was stopped for another job (not failures)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)  # first start/wait/never
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


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
    # "models": the server's NER models find the entities; "completion": each task's latest completion holds them
    entities_from: Mapped[str] = mapped_column(String(16), default="models", server_default="models")
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[list[Any]] = mapped_column(default=list)  # {task_id, error} of the first failed tasks
    replicas_used: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)  # tasks predicted, per replica
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class WorkJob(Base):
    """Slow work an API request handed to its process's pool (splitting an upload into pages, checking a training
    config, importing a model): the client polls it when it outlasts the request's wait."""

    __tablename__ = "work_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=True, index=True)
    requested_by: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus), default=JobStatus.QUEUED)
    result: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)  # what the request would have answered
    error: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)  # {status, detail, errors} of a refusal
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
