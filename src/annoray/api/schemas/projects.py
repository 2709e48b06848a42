"""Bodies of projects, members, active learning, tasks, completions, predictions, rules, files and pages."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from annoray.api.schemas.common import Timestamp
from annoray.platform.lifecycle import OcrStatus
from annoray.platform.store.tables import CompletionStatus, ReviewStatus, Role


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
    team: str = Field("default", description="The team whose quota its work counts against ('default': none).")
    priority: int = Field(0, description="Priority of its trainings when a request gives none.")


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
