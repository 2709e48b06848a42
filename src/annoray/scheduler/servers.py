"""Server and pre-annotation requests: checked whole before anything is queued for the scheduler."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from annoray.platform.access.licenses import missing_scope, needed_scopes
from annoray.platform.access.roles import may_serve, require_server_of
from annoray.platform.errors import Conflict, ErrorDetail, Errors, Forbidden, InvalidInput
from annoray.platform.labeling.config import ModelKind
from annoray.platform.labeling.projects import project_config
from annoray.platform.labeling.selection import has_no_completion
from annoray.platform.models.catalog import EMBEDDINGS
from annoray.platform.settings import ResourceSpec, Settings
from annoray.platform.store.repositories import ModelRepository, ProjectRepository, RuleRepository, ServerRepository
from annoray.platform.store.tables import JobStatus, PreannotationJob, PreannotationServer, Project, ServerStatus, Task, User
from annoray.trainers.engines import ENGINES


@dataclass
class ServerRequest:
    """The models to serve (or a project whose config names them), how many replicas, and a name."""

    project: Project | None = None
    models: list[str] | None = None
    name: str | None = None
    replicas: int = 1
    max_replicas: int | None = None
    autoscaling: dict[str, float] | None = None  # Serve's: target_ongoing_requests, upscale_delay_s, downscale_delay_s


def replica_spec(settings: Settings, kinds: list[str], engines: list[str | None] = ()) -> ResourceSpec:  # type: ignore[assignment]
    """A replica's spec: Visual NER's for a Visual NER model, Spark NLP's (its JVM counted) for a Spark NLP model."""
    if ModelKind.VISUAL_NER.value in kinds:
        return settings.servers.resources["visual_ner"]
    if any(e and e.startswith("sparknlp.") for e in engines):
        return settings.servers.resources.get("sparknlp", settings.servers.resources["text"])
    return settings.servers.resources["text"]


def spark_jars(settings: Settings, engine: str | None) -> list[str]:
    """The jars a replica's local Spark loads for a model of ``engine`` (none for spaCy models)."""
    if not engine or not engine.startswith("sparknlp."):
        return []
    config = settings.sparknlp
    return [str(config.jar)] + ([str(config.healthcare_jar)] if engine == "sparknlp.assertion.v1" and config.healthcare_jar else [])


def request_server(session: Session, settings: Settings, user: User | None, request: ServerRequest, *,
                   why_never: Callable[..., str | None] = lambda resources, replicas=0: None) -> PreannotationServer:
    """Check the request whole (models, rules, replicas, cluster, licenses), then queue the server.

    Raises `InvalidInput` (no model, over five, unknown models or rules, replicas), `Forbidden` (a model not the
    project's, imported or shared; no project, from a user who is not an admin) or `Conflict` (the cluster can never
    hold it, no license grants a scope it needs, the name is taken).

    Args:
        why_never: why ``replicas`` replicas of these resources can never run on the cluster (the scheduler knows).
    """
    project = request.project
    if project is None and user is not None and not user.is_admin:
        raise Forbidden(Errors.E822)
    config = project_config(project) if project else None
    names = list(dict.fromkeys(request.models if request.models is not None else (config.models if config else [])))
    rules = list(config.rules) if config else []
    errors = []
    if not names:
        errors.append(ErrorDetail(Errors.E801, field="models"))
    limit = settings.labeling_config.max_models
    if len(names) > limit:
        errors.append(ErrorDetail(Errors.E802.format(limit=limit, count=len(names), models=", ".join(names)), field="models"))
    catalog = ModelRepository(session)
    models = []
    for name in names:
        model = catalog.by_name(name)
        if model is not None and not may_serve(user, project.id if project else None, model):
            raise Forbidden(Errors.E821.format(name=name))
        if model is None or model.kind == EMBEDDINGS or not model.uri:
            trained = [m.name for m in catalog.all() if m.kind != EMBEDDINGS]
            errors.append(ErrorDetail(Errors.E803.format(name=name, available=", ".join(trained) or "none"), field="models"))
        elif model.engine and model.engine.startswith("sparknlp.") and (why := ENGINES[model.engine].unavailable(settings)):
            errors.append(ErrorDetail(Errors.E817.format(name=name, why=why), field="models"))
        else:
            models.append(model)
    known = {r.name for r in RuleRepository(session).by_names(rules)}
    if unknown := [r for r in rules if r not in known]:
        available = ", ".join(r.name for r in RuleRepository(session).all()) or "none"
        errors += [ErrorDetail(Errors.E804.format(name=r, available=available), field="rules") for r in unknown]
    max_replicas = request.max_replicas or request.replicas
    if request.replicas > max_replicas:
        errors.append(ErrorDetail(Errors.E814.format(replicas=request.replicas, max_replicas=max_replicas), field="replicas"))
    if errors:
        raise InvalidInput("cannot deploy the server", errors)
    kinds = [m.kind for m in models]
    spec = replica_spec(settings, kinds, [m.engine for m in models])
    refusals = []
    if why := why_never(spec.model_dump(), max_replicas):
        refusals.append(ErrorDetail(Errors.E805.format(why=why), field="replicas"))
    scopes = needed_scopes("inference", visual=ModelKind.VISUAL_NER.value in kinds,
                           model_type=project.model_type if project else "open_source")
    if missing := missing_scope(session, scopes, datetime.now(UTC)):
        refusals.append(ErrorDetail(Errors.E707.format(scope=missing), field="models"))
    name = request.name or f"{project.name if project else 'models'}-{datetime.now(UTC):%Y%m%d%H%M%S%f}"
    if (taken := ServerRepository(session).by_name(name)) is not None:
        refusals.append(ErrorDetail(Errors.E806.format(name=name, server_id=taken.id), field="name"))
    if refusals:
        raise Conflict(refusals[0].message, refusals)
    return ServerRepository(session).add(PreannotationServer(
        name=name, project_id=project.id if project else None, models=[m.name for m in models],
        status=ServerStatus.QUEUED, reason="queued for the scheduler", replicas=request.replicas, max_replicas=max_replicas,
        resources=spec.model_dump(), scopes=list(scopes), rules=rules, language=models[0].language,
        autoscaling=request.autoscaling or None,
        requested_by=user.id if user else None,
    ))


def server_models(session: Session, server: PreannotationServer) -> list[dict[str, Any]]:
    """The models a server holds and the labels each predicts (what a user checks before pre-annotating)."""
    catalog = ModelRepository(session)
    out = []
    for name in server.models:
        model = catalog.by_name(name)
        out.append({"name": name, "kind": model.kind if model else None, "labels": list(model.labels) if model else []})
    return out


def request_preannotation(session: Session, project: Project, server: PreannotationServer, task_ids: list[int] | None,
                          user: User | None, entities_from: str = "models") -> PreannotationJob:
    """Queue a pre-annotation job over the given tasks of the project (default: those with no completion; with
    ``entities_from="completion"``, those with one, whose latest completion's entities the server's relation model
    reads)."""
    if server.status not in (ServerStatus.QUEUED, ServerStatus.DEPLOYING, ServerStatus.RUNNING):
        raise Conflict(Errors.E807.format(server_id=server.id, status=server.status.value))
    marked = entities_from == "completion"
    if marked:
        kinds = ModelRepository(session).kinds()
        if project_config(project).relation is None:
            raise InvalidInput("cannot propose relations", [ErrorDetail(Errors.E824.format(project_id=project.id), field="entities_from")])
        if ModelKind.RELATION.value not in {kinds.get(m) for m in server.models}:
            raise InvalidInput("cannot propose relations", [ErrorDetail(
                Errors.E825.format(server_id=server.id, models=", ".join(server.models)), field="server_id")])
    if task_ids is not None:
        found = set(session.scalars(select(Task.id).where(Task.project_id == project.id, Task.id.in_(task_ids))))
        errors = [ErrorDetail(Errors.E808.format(task_id=t, project_id=project.id), field="task_ids")
                  for t in dict.fromkeys(task_ids) if t not in found]
        if marked and not errors:
            unmarked = found - set(session.scalars(select(Task.id).where(Task.id.in_(found), ~has_no_completion())))
            errors = [ErrorDetail(Errors.E826.format(task_id=t), field="task_ids") for t in sorted(unmarked)]
        if errors:
            raise InvalidInput("cannot pre-annotate these tasks", errors)
        total = len(found)
    else:
        total = session.scalar(select(func.count()).select_from(Task).where(
            Task.project_id == project.id, ~has_no_completion() if marked else has_no_completion())) or 0
    job = PreannotationJob(project_id=project.id, server_id=server.id, status=JobStatus.QUEUED, entities_from=entities_from,
                           reason="queued for the scheduler", task_ids=sorted(set(task_ids)) if task_ids is not None else None,
                           total=total, requested_by=user.id if user else None)
    session.add(job)
    session.flush()
    return job



def deploy_server(writes: sessionmaker[Session], settings: Settings, user: User | None, project_id: int | None,
                  request: ServerRequest, *, why_never: Callable[..., str | None] = lambda resources, replicas=0: None,
                  ) -> PreannotationServer:
    """``request_server`` as a service, in a short transaction of its own (the project read again inside it). The
    caller wakes the scheduler."""
    with writes.begin() as session:
        project = ProjectRepository(session).get(project_id) if project_id is not None else None
        return request_server(session, settings, user, replace(request, project=project), why_never=why_never)


def start_preannotation(writes: sessionmaker[Session], user: User, project_id: int, server_id: int,
                        task_ids: list[int] | None, entities_from: str = "models") -> PreannotationJob:
    """Queue a pre-annotation job with a server the project may use (its own or a shared one), in a short transaction
    of its own. The caller wakes the scheduler."""
    with writes.begin() as session:
        server = ServerRepository(session).get(server_id)
        require_server_of(user, project_id, server)
        return request_preannotation(session, ProjectRepository(session).get(project_id), server, task_ids, user,
                                     entities_from)


def deploy_for_label_studio(session: Session, settings: Settings, user: User, project: Project, *,
                            why_never: Callable[..., str | None] = lambda resources, replicas=0: None) -> PreannotationServer:
    """A server queued from the project's config, in the caller's transaction, when Label Studio asks a project with none
    for predictions (the seeds' Deploy button); refused (E1006) when the config names no model yet."""
    if not project_config(project).models:
        raise Conflict(Errors.E1006.format(project_id=project.id))
    server = request_server(session, settings, user, ServerRequest(project=project), why_never=why_never)
    session.flush()
    return server
