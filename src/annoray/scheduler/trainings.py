"""Training requests: checked whole before anything is queued, then one queued `TrainingJob` per kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from annoray.platform.access.licenses import missing_scope, needed_scopes
from annoray.platform.errors import Conflict, ErrorDetail, Errors, Forbidden, InvalidInput
from annoray.platform.labeling.config import ModelKind
from annoray.platform.labeling.datasets import SplitMethod
from annoray.platform.labeling.projects import project_config
from annoray.platform.labeling.training_data import SelectionQuery, build_training_data, check_kinds
from annoray.platform.models.catalog import EMBEDDINGS, EMBEDDINGS_OF
from annoray.platform.models.training import TrainingParams
from annoray.platform.settings import Settings
from annoray.platform.store.repositories import (
    ModelRepository, TrainingConfigRepository, TrainingJobRepository, TrainingLogRepository,
)
from annoray.platform.store.tables import JobStatus, Project, TrainingConfig, TrainingJob, User
from annoray.trainers.engines import ENGINES, TrainingEngine, engine_families, engine_name
from annoray.trainers.log import request_text


@dataclass
class TrainingRequest:
    """What to train and on which data; the defaults train every kind the config has with spaCy."""

    kinds: list[ModelKind] | None = None
    engine: str = "spacy"
    embeddings: str | None = None
    params: TrainingParams = field(default_factory=TrainingParams)
    split: SplitMethod = SplitMethod.RANDOM
    task_tags: tuple[str, ...] = ()
    reviewed_only: bool = False
    deploy: bool = False
    force_deploy: bool = False  # past the quality floor and the gate
    source: str = "manual"
    config: int | None = None  # the project's own training config NER trains with
    request_key: str | None = None  # the client's Idempotency-Key
    priority: int | None = None  # higher first; None: the project's


def training_scopes(kind: ModelKind, model_type: str) -> tuple[str, ...]:
    """License scopes a training of this kind leases a seat of while it runs."""
    return needed_scopes("training", visual=kind is ModelKind.VISUAL_NER, model_type=model_type)


def check_engines(settings: Settings, language: str, engine: str, kinds: list[ModelKind]) -> list[ErrorDetail]:
    """Every reason the engine cannot train these kinds in this language here."""
    errors = []
    for kind in kinds:
        cls: type[TrainingEngine] | None = ENGINES.get(engine_name(engine, kind))
        if cls is None:
            available = [f for f in engine_families() if engine_name(f, kind) in ENGINES]
            errors.append(ErrorDetail(Errors.E601.format(engine=engine, kind=kind.value, available=", ".join(available) or "none"), field="engine"))
            continue
        why = cls.unavailable(settings)
        if why:
            errors.append(ErrorDetail(Errors.E602.format(engine=cls.name, why=why), field="engine"))
        elif language not in cls.languages:
            errors.append(ErrorDetail(Errors.E603.format(language=language, engine=cls.name, supported=", ".join(cls.languages)), field="language"))
    return errors


def embeddings_path(session: Session, name: str, family: str = "spacy") -> tuple[Path | None, ErrorDetail | None]:
    """The local embeddings registered in the catalog under ``name`` for this engine family (a vectors file for spaCy,
    a WordEmbeddingsModel folder for Spark NLP)."""
    kind = EMBEDDINGS_OF.get(family, EMBEDDINGS)
    catalog = ModelRepository(session)
    model = catalog.by_name(name)
    if model is None or model.kind != kind:
        names = [m.name for m in catalog.all(kind)]
        return None, ErrorDetail(Errors.E604.format(name=name, available=", ".join(names) or "none"), field="embeddings")
    path = Path(model.uri or "")
    if not (path.is_file() if kind == EMBEDDINGS else path.is_dir()):
        return None, ErrorDetail(Errors.E605.format(path=path, name=name), field="embeddings")
    return path, None


def own_config(session: Session, project: Project, request: TrainingRequest,
               kinds: list[ModelKind]) -> tuple[dict | None, ErrorDetail | None]:
    """The project's training config the request names, as the NER job keeps it (so a later edit or delete of the
    config changes no queued job), or why it cannot train with it."""
    if request.config is None:
        return None, None
    if request.engine != "spacy":
        return None, ErrorDetail(Errors.E623.format(why=f"asks for engine '{request.engine}'"), field="engine")
    if request.embeddings:
        return None, ErrorDetail(Errors.E623.format(why="names embeddings too: the config says what the model embeds"),
                                 field="embeddings")
    if ModelKind.NER not in kinds:
        return None, ErrorDetail(Errors.E623.format(why=f"trains no NER (kinds: {', '.join(k.value for k in kinds)})"), field="kinds")
    configs = TrainingConfigRepository(session).for_project(project.id)
    found = next((c for c in configs if c.id == request.config), None)
    if found is None:
        available = ", ".join(f"{c.id} ({c.name})" for c in configs) or "none"
        return None, ErrorDetail(Errors.E622.format(config_id=request.config, available=available), field="config")
    return {"id": found.id, "name": found.name, "text": found.text, "code": found.code}, None


def add_training_config(writes: sessionmaker[Session], settings: Settings, project: Project, user: User, *, name: str, text: str,
                        code: str | None) -> TrainingConfig:
    """Check an owner's NER training config by building and training it one step (with its code, only where the
    operator allows code and an admin sends it), then keep it."""
    from annoray.trainers.custom import BadConfig, checked_apart

    if code is not None and not (settings.training.allow_custom_code and user.is_admin):
        raise Forbidden(Errors.E621)
    try:  # before the database (no transaction is open meanwhile), in a process of its own held to a memory budget
        checked_apart(text, language=project.language, code=code, memory_mb=settings.training.config_check_memory_mb,
                      timeout_s=settings.training.config_check_timeout_s)
    except BadConfig as exc:
        errors = [ErrorDetail(why if why.startswith("[E") else Errors.E620.format(where=where or "config", why=why),
                              field=where or "config") for where, why in exc.problems]
        raise InvalidInput(errors[0].message, errors) from None
    with writes.begin() as session:
        repo = TrainingConfigRepository(session)
        if repo.by_name(project.id, name) is not None:
            raise Conflict(Errors.E624.format(name=name))
        return repo.add(TrainingConfig(project_id=project.id, name=name, kind=ModelKind.NER.value, text=text, code=code,
                                       created_by=user.id))


def request_trainings(
    session: Session, sessions: sessionmaker[Session], settings: Settings, project: Project, user: User | None,
    request: TrainingRequest, *, why_never: Callable[[dict[str, float]], str | None] = lambda resources: None,
) -> tuple[list[TrainingJob], list[str]]:
    """Check the request whole (engines, language, embeddings, data, cluster), then queue one job per kind.

    Args:
        why_never: why a job of these resources can never run on the cluster (the scheduler knows).

    Raises `InvalidInput` listing every reason when anything cannot train, `Conflict` when the
    cluster can never hold a job or no license grants a scope it needs; nothing is queued then. The caller commits, then wakes the scheduler.
    """
    if request.request_key is not None:
        with sessions() as reading:
            if sent := TrainingJobRepository(reading).by_request_key(project.id, request.request_key):
                return list(sent), []  # sent again (its answer was lost): the jobs it queued then
    config = project_config(project)
    kinds = request.kinds or config.kinds
    check_kinds(config, kinds)
    errors = check_engines(settings, project.language, request.engine, kinds)
    if request.embeddings:
        with sessions() as reading:
            _, error = embeddings_path(reading, request.embeddings, request.engine)
        errors += [error] if error else []
    elif request.engine == "sparknlp" and not errors:
        errors.append(ErrorDetail(Errors.E626.format(engine=request.engine), field="embeddings"))
    with sessions() as reading:  # a read: the write transaction begins only when the jobs are inserted
        custom, error = own_config(reading, project, request, kinds)
    errors += [error] if error else []
    limit = settings.scheduler.max_priority
    if request.priority is not None and request.priority > limit and not (user and user.is_admin):
        errors.append(ErrorDetail(Errors.E520.format(priority=request.priority, limit=limit), field="priority"))
    if errors:
        raise InvalidInput("cannot train", errors)
    refusals = [ErrorDetail(Errors.E612.format(why=why), field="kinds")
                for kind in kinds if (why := why_never(settings.training.spec(kind.value, engine_name(request.engine, kind)).model_dump()))]
    scopes = {kind: training_scopes(kind, project.model_type) for kind in kinds}
    with sessions() as reading:
        missing = missing_scope(reading, [s for kind in kinds for s in scopes[kind]], datetime.now(UTC))
    refusals += [ErrorDetail(Errors.E707.format(scope=missing), field="kinds")] if missing else []
    if refusals:
        raise Conflict(refusals[0].message, refusals)
    data = build_training_data(
        sessions, project.id, config, language=project.language, kinds=kinds,
        query=SelectionQuery(request.task_tags, request.reviewed_only), split=request.split,
        validation_split=request.params.validation_split, seed=request.params.seed,
        min_examples=settings.dataset.min_examples_per_label, page_size=settings.dataset.export_page_size,
    )
    if data.errors:
        raise InvalidInput("cannot train", data.errors)
    jobs, repo, log = [], TrainingJobRepository(session), TrainingLogRepository(session)
    for kind in kinds:
        warnings = data.kind_warnings(kind)
        resources = settings.training.spec(kind.value, engine_name(request.engine, kind))
        params = ENGINES[engine_name(request.engine, kind)].params(request.params)
        job = repo.add(TrainingJob(
            project_id=project.id, kind=kind.value, engine=engine_name(request.engine, kind), source=request.source,
            status=JobStatus.QUEUED, reason="queued for the scheduler",
            params=params.model_dump(), embeddings=request.embeddings, deploy=request.deploy or request.force_deploy,
            deploy_forced=request.force_deploy,
            selection={"task_tags": list(request.task_tags), "reviewed_only": request.reviewed_only, "split": request.split.value},
            data_summary=data.kind_summary(kind), warnings=warnings,
            resources=resources.model_dump(), scopes=list(scopes[kind]), progress={"epoch": 0, "epochs": params.epochs, "percent": 0.0},
            requested_by=user.id if user else None, custom=custom if kind is ModelKind.NER else None,
            request_key=request.request_key, priority=project.priority if request.priority is None else request.priority,
        ))
        record = {
            "id": job.id, "kind": job.kind, "engine": job.engine, "source": job.source, "language": project.language,
            "params": job.params, "embeddings": job.embeddings, "resources": job.resources, "licenses": job.scopes,
            "selection": job.selection, "custom_config": job.custom["name"] if job.custom else None,
            "requested_by": user.username if user else None,
        }
        log.append(job.id, "request", request_text(record), record)
        for warning in warnings:
            log.append(job.id, "warning", f"warning: {warning}", {"message": warning})
        jobs.append(job)
    return jobs, [w.message for w in data.warnings]


def queue_trainings(
    writes: sessionmaker[Session], reads: sessionmaker[Session], settings: Settings, project: Project, user: User | None,
    request: TrainingRequest, *, why_never: Callable[[dict[str, float]], str | None] = lambda resources: None,
) -> tuple[list[TrainingJob], list[str]]:
    """``request_trainings`` as a service: the request checked through read sessions, then the jobs inserted in one
    short transaction (it begins only at the first insert). The caller wakes the scheduler."""
    with writes.begin() as session:
        return request_trainings(session, reads, settings, project, user, request, why_never=why_never)


def engines_here(settings: Settings) -> list[dict]:
    """Every training engine: its family, kind and languages, its default training parameters, and whether it can train
    here (if not, why)."""
    out = []
    for name, cls in sorted(ENGINES.items()):
        why = cls.unavailable(settings)
        out.append({"name": name, "family": cls.family, "kinds": [cls.kind.value], "languages": list(cls.languages),
                    "available": why is None, "reason": why, "defaults": cls.params(TrainingParams()).model_dump()})
    return out
