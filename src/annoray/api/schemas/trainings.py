"""Bodies of trainings, engines, training configs and the model catalog."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from annoray.api.schemas.common import RowId, Timestamp
from annoray.platform.labeling.config import ModelKind
from annoray.platform.labeling.datasets import SplitMethod
from annoray.platform.lifecycle import JobStatus
from annoray.platform.models.training import TrainingParams


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
    priority: int | None = Field(None, ge=-1000, le=1000, description="Higher first in the queue; default: the project's. "
                                 "Owners and managers may ask up to the setting scheduler.max_priority.")


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
    priority: int = Field(0, description="Higher first in the queue.")
    team: str = Field("default", description="The team whose quota it counts against (its project's).")
    preemptions: int = Field(0, description="Times it was stopped to let another job run (not failures: it resumed).")
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
