"""Bodies of pre-annotation servers and their jobs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from annoray.api.schemas.access import LeaseOut
from annoray.api.schemas.common import RowId, Timestamp
from annoray.platform.lifecycle import JobStatus, ServerStatus


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
    task_ids: list[RowId] | None = Field(None, description="Tasks to pre-annotate; default: the project's tasks with no "
                                         "completion (with `entities_from: completion`, those with one).")
    entities_from: Literal["models", "completion"] = Field(
        "models", description="Where the entities come from: the server's NER models, or each task's latest completion "
                              "(what an annotator marked: the server's relation model proposes relations between them, "
                              "and no entity is predicted again).")


class PreannotationOut(BaseModel):
    id: int
    project_id: int
    server_id: int | None
    entities_from: str = Field(description="models, or completion: the entities of each task's latest completion.")
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
