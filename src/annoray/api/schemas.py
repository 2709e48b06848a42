"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from annoray.platform.models import CompletionStatus, ReviewStatus, Role

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
    database: str


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=150, pattern=r"^[A-Za-z0-9_.@-]+$")


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    is_admin: bool = False


class UserCreated(UserOut):
    token: str = Field(description="The user's API token; shown this once only.")


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
    created_at: datetime
    role: Role | None = None
    kinds: dict[str, Any] = Field(description="Model kinds the labeling config implies, with their labels.")


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
    created_at: datetime


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
    created_at: datetime
    updated_at: datetime


class TaskDetail(TaskOut):
    completions: list[CompletionOut]


class PredictionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    task_id: int
    result: list[Any]
    score: float | None
    model_version: str
    created_at: datetime


class TrainingDataOut(BaseModel):
    tasks_selected: int
    split: dict[str, Any]
    kinds: dict[str, Any]
    warnings: list[str]
    errors: list[str]
