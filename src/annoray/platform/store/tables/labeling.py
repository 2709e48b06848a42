"""What annotators make: projects and their configs, members, tasks, documents and pages, completions, Label Studio links, predictions, rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from annoray.platform.lifecycle import OcrStatus
from annoray.platform.store.tables.base import _enum, Base, CompletionStatus, JsonType, ReviewStatus, Role, utcnow
from annoray.platform.store.tables.access import Team, User

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
    # Sharing the cluster: the team whose quota its work counts against (None: the default team), and the priority of
    # its trainings when a request gives none.
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), nullable=True, index=True)  # a deleted team's go back
    priority: Mapped[int] = mapped_column(Integer, default=0)

    members: Mapped[list[Member]] = relationship(back_populates="project", cascade="all, delete-orphan")
    # Read with the project (views show its name) by a second query: a join would be an outer one, which PostgreSQL
    # refuses to lock when a deploy locks the project.
    team: Mapped[Team | None] = relationship(lazy="selectin")


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
