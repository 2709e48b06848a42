"""One training job from start to catalog entry: the body of the Ray task the scheduler launches per job.

It reads the job's data from the store and hands it to the Ray Train run in the run's config (the
training worker never touches the database), then writes the model to the model store, enters it
in the catalog and ends the job; every step is a line of the job's log.
"""

from __future__ import annotations

import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from annoray.platform.errors import Errors, InvalidInput, describe
from annoray.platform.labeling.config import ModelKind
from annoray.platform.labeling.datasets import SplitMethod
from annoray.platform.labeling.projects import project_config
from annoray.platform.labeling.training_data import SelectionQuery, build_training_data
from annoray.platform.models.catalog import model_base_name, next_model_name
from annoray.platform.models.deploy import deploy_trained_model, incumbent
from annoray.platform.models.training import TrainingParams
from annoray.platform.models.training_jobs import fail_job, log_line, record_epoch, requeue_or_fail
from annoray.platform.resources import Resources
from annoray.platform.settings import Settings
from annoray.platform.store.repositories import ModelRepository, ProjectRepository, TrainingJobRepository, TrainingLogRepository
from annoray.platform.store.tables import CatalogModel, JobStatus, Project, TrainingJob
from annoray.trainers.engines import ENGINES, EngineConfig
from annoray.trainers.log import data_text, deploy_text, epoch_text, library_versions, metrics_text, start_text
from annoray.trainers.ray_train import RunResult, TrainingCrashed, TrainingRun, run_training, train_env
from annoray.trainers.store import ModelNameTaken, ModelStore, resolve_filesystem


def run_name(job_id: int) -> str:
    return f"training-{job_id}"


def job_of_run(name: str) -> int:
    return int(name.rsplit("-", 1)[1])


class JobFailed(Exception):
    """A failure whose message is already the reason a user reads."""


class RunLost(Exception):
    """The Ray Train run could not start or lost its controller: the job goes back to the queue within its budget."""


def run_training_job(settings: Settings, job_id: int, progress: Any, node_id: str | None = None, owner: Any = None) -> None:
    """Train, store and catalog one job that the scheduler has already moved to ``running``.

    Args:
        owner: the actor that owns the run (a `TrainingRunner`), told the run's Train controller so it can abort it.
    """
    from annoray.platform.store.db import create_db_engine, session_factory

    engine = create_db_engine(settings.resolved_database_url)
    sessions = session_factory(engine, write=True)
    try:
        _run(settings, sessions, session_factory(engine), job_id, progress, node_id, owner)
    except JobFailed as exc:
        fail_job(sessions, job_id, str(exc))
    except RunLost as exc:
        why = str(exc)
        requeue_or_fail(sessions, job_id, settings.training.max_failures,
                        lambda what: Errors.E617.format(why=why, what=what), {"node_id": node_id})
    except Exception as exc:  # the job ends failed with the reason rather than the task dying unexplained
        fail_job(sessions, job_id, explain_failure(exc, kind="", budget=settings.training.max_failures))
        raise
    finally:
        engine.dispose()


def _run(settings: Settings, sessions: sessionmaker[Session], reads: sessionmaker[Session], job_id: int, progress: Any,
         node_id: str | None, owner: Any) -> None:
    with reads() as session:
        job = TrainingJobRepository(session).get(job_id)
        project = ProjectRepository(session).get(job.project_id)
        session.expunge_all()
    kind = ModelKind(job.kind)
    config = project_config(project)
    params = TrainingParams(**job.params)
    try:
        data = build_training_data(
            reads, project.id, config, language=project.language, kinds=[kind],
            query=SelectionQuery(tuple(job.selection.get("task_tags", ())), job.selection.get("reviewed_only", False)),
            split=SplitMethod(job.selection.get("split", "random")), validation_split=params.validation_split,
            seed=params.seed, min_examples=settings.dataset.min_examples_per_label,
            page_size=settings.dataset.export_page_size,
        )
    except InvalidInput as exc:
        raise JobFailed(Errors.E606.format(why="; ".join(e.message for e in exc.errors) or exc.detail)) from None
    if data.errors:
        raise JobFailed(Errors.E606.format(why="; ".join(e.message for e in data.errors)))
    dataset = data.datasets[kind]
    used = data.kind_summary(kind)
    with sessions.begin() as session:
        TrainingJobRepository(session).set(job_id, data_summary=used, warnings=data.kind_warnings(kind))
        TrainingLogRepository(session).append(job_id, "data", data_text(used), used)

    embeddings = None
    if job.embeddings:
        from annoray.scheduler.trainings import embeddings_path

        with reads() as session:
            embeddings, error = embeddings_path(session, job.embeddings, job.engine.split(".", 1)[0])
        if error:
            raise JobFailed(error.message)
    demand = Resources.of(job.resources)
    worker, spark = demand.to_ray(), None
    if job.engine.startswith("sparknlp."):
        worker, spark = spark_share(settings, demand, node_id, embeddings)
    engine_config = EngineConfig(language=project.language, labels=list(dataset.group.labels),
                                 multiple=dataset.group.multiple, directed=dataset.group.directed, embeddings=embeddings,
                                 custom=job.custom, spark=spark)
    baseline = None
    if job.deploy:  # the model a deploy would replace is scored on this run's held-out split too
        with reads() as session:
            current = incumbent(config, kind, ModelRepository(session).trained_for(project.id))
            model = ModelRepository(session).by_name(current) if current else None
            if model is not None and model.engine:
                baseline = {"model": model.name, "engine": model.engine, "store": settings.resolved_model_store}
    run = TrainingRun(
        name=run_name(job_id), engine=job.engine, engine_config=engine_config.model_dump(mode="json"),
        params=job.params, train=dataset.train, dev=dataset.test, storage_path=settings.resolved_training_storage,
        resources=worker,
        max_failures=settings.training.max_failures, node_id=node_id, baseline=baseline,
    )
    start = {"run": run.name, "attempt": job.attempts, "max_failures": run.max_failures, "node_id": node_id,
             "resources": job.resources,
             "versions": library_versions(ENGINES[job.engine].versions())}
    log_line(sessions, job_id, "start", start_text(start), start)
    with tempfile.TemporaryDirectory(prefix="annoray-model-") as tmp:
        model_dir = Path(tmp) / "model"
        try:
            result = run_training(run, model_dir, progress=progress, owner=owner)
        except Exception as exc:
            if lost := run_lost(exc, start_timeout_s=settings.training.start_timeout_s):
                raise RunLost(lost) from exc
            raise JobFailed(explain_failure(exc, kind=kind.value, budget=run.max_failures)) from exc
        for report in result.epochs:  # those the scheduler missed, down when the controller sent them
            record_epoch(sessions, job_id, report, epoch_text(report))
        log_line(sessions, job_id, "metrics", metrics_text(result.metrics), {"metrics": result.metrics})
        _register(settings, sessions, job, project.name, dataset.group, model_dir, result, engine_config, len(dataset.test))
    _drop_checkpoints(run)


def spark_share(settings: Settings, demand: Resources, node_id: str | None,
                embeddings: Path | None) -> tuple[dict[str, float], dict[str, Any]]:
    """A Spark NLP job's resources shared out (`ExecutorPlan`): the Ray Train worker, the Spark driver, keeps its half,
    the Spark executors get the rest, on the same node. Returns the worker's Ray resources and the engine's Spark config."""
    import ray

    from annoray.platform.models.catalog import embeddings_dimension
    from annoray.trainers.spark import ExecutorPlan

    plan = ExecutorPlan.of(demand.cpus, demand.as_dict()["memory_gb"])
    driver = Resources.of({"cpus": plan.driver_cpus, "memory_gb": plan.driver_memory_gb})
    node_ip = next((n["NodeManagerAddress"] for n in ray.nodes() if n["NodeID"] == node_id), None) if node_id else None
    config = settings.sparknlp
    spark = {"jar": str(config.jar), "graphs": str(config.graphs) if config.graphs else None,
             "healthcare_jar": str(config.healthcare_jar) if config.healthcare_jar else None,
             "cpus": demand.cpus, "memory_gb": demand.as_dict()["memory_gb"], "node_ip": node_ip,
             "dim": embeddings_dimension(embeddings) if embeddings else None}
    return driver.to_ray(), spark


def _drop_checkpoints(run: TrainingRun) -> None:
    """The model is in the store: the run's checkpoints are no longer needed (a failed run keeps them)."""
    filesystem, base = resolve_filesystem(run.storage_path)
    try:
        filesystem.delete_dir(f"{base}/{run.name}")
    except (FileNotFoundError, OSError):
        pass


def _register(settings: Settings, sessions: sessionmaker[Session], job: TrainingJob, project_name: str,
              group: Any, model_dir: Path, result: RunResult, engine_config: EngineConfig, held_out: int) -> None:
    """Store the model under the next free versioned name, enter it in the catalog, end the job succeeded and,
    when it asked to, deploy the model: all in one transaction."""
    metrics = result.metrics
    try:
        store = ModelStore(settings.resolved_model_store)
    except OSError as exc:
        raise JobFailed(Errors.E628.format(uri=settings.resolved_model_store, why=describe(exc))) from exc
    base = model_base_name(ModelKind(job.kind), group, project_name, job.source)
    for _ in range(20):  # another job may take the same name between our read and our write
        with sessions() as session:
            name = next_model_name(base, ModelRepository(session).names_starting(base))
        try:
            uri = store.put(model_dir, name)
        except ModelNameTaken:
            continue
        except OSError as exc:
            raise JobFailed(Errors.E628.format(uri=store.uri(name), why=describe(exc))) from exc
        try:
            with sessions.begin() as session:
                ModelRepository(session).add(CatalogModel(
                    name=name, kind=job.kind, labels=list(group.labels), language=engine_config.language,
                    embeddings=job.embeddings, engine=job.engine, source=job.source, project_id=job.project_id,
                    training_job_id=job.id, uri=uri, metrics=metrics,
                ))
                moved = TrainingJobRepository(session).transition(
                    job.id, (JobStatus.RUNNING,), JobStatus.SUCCEEDED, model=name, metrics=metrics, reason=None,
                    finished_at=datetime.now(UTC))
                if not moved:
                    session.rollback()
                    return
                TrainingLogRepository(session).append(job.id, "model", f"model '{name}' saved to {uri}", {"name": name, "uri": uri})
                if job.deploy:
                    _deploy(session, settings, job, name, result, held_out)
            return
        except IntegrityError:
            continue
    raise JobFailed(Errors.E609.format(why=f"no free model name after '{base}'"))


def _deploy(session: Session, settings: Settings, job: TrainingJob, name: str, result: RunResult, held_out: int) -> None:
    project = session.get(Project, job.project_id, with_for_update=True)  # two kinds ending at once must not lose a rewrite
    decision = deploy_trained_model(session, settings, project, job, name, result.metrics, result.baseline, held_out=held_out)
    TrainingJobRepository(session).set(job.id, deployment=decision)
    TrainingLogRepository(session).append(job.id, "deploy", deploy_text(decision), decision)


def run_lost(exc: BaseException, *, start_timeout_s: float) -> str | None:
    """Why the run failed around its training rather than in it (its worker group could not start, its Train
    controller failed or died), or None when the training itself failed."""
    from ray.exceptions import RayActorError
    from ray.train import ControllerError
    from ray.train.v2._internal.exceptions import WorkerGroupStartupTimeoutError

    if isinstance(exc, ControllerError) and isinstance(exc.controller_failure, WorkerGroupStartupTimeoutError):
        return (f"could not start: Ray did not place its worker group within {start_timeout_s:g} s "
                "(something outside the scheduler holds the resources it was given)")
    if isinstance(exc, ControllerError | RayActorError):
        return f"lost its Train controller ({describe(innermost(exc))})"
    return None


def explain_failure(exc: BaseException, *, kind: str, budget: int) -> str:
    """The reason a user reads for a training that raised: out of memory, workers killed too often, or a crash."""
    from ray.exceptions import OutOfMemoryError, RayActorError, WorkerCrashedError

    if isinstance(exc, TrainingCrashed):  # its message is the training's own error, as describe() words it
        return Errors.E609.format(why=str(exc)[:300])
    inner = innermost(exc)
    short = describe(inner)
    # an actor the memory monitor killed is an ActorDiedError whose message alone says why
    if isinstance(inner, OutOfMemoryError | MemoryError) or (isinstance(inner, RayActorError) and "low on memory" in str(inner)):
        return Errors.E608.format(why=short, kind=kind or "training")
    if isinstance(inner, RayActorError | WorkerCrashedError):
        return Errors.E607.format(count=budget + 1, budget=budget, why=short)
    return Errors.E609.format(why=short)


def innermost(exc: BaseException) -> BaseException:
    """The error that started it: a worker's own exception rather than Ray Train's wrappers around it."""
    failures = getattr(exc, "worker_failures", None)  # ray.train's WorkerGroupError: rank -> exception
    if failures:
        exc = next(iter(failures.values()))
    exc = getattr(exc, "controller_failure", None) or exc  # ray.train's ControllerError
    exc = getattr(exc, "health_check_failure", None) or exc  # ray.train's WorkerHealthCheckFailedError: the worker's death
    cause = getattr(exc, "cause", None)  # a RayTaskError keeps the exception the task raised
    if isinstance(cause, BaseException):
        exc = cause
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


class TrainingRunner:
    """Owns one training job's Ray Train run, as a detached actor of its own (see `factory.start_training_runner`).

    The scheduler creates it before the job is running in the database and starts the run with the first call of
    `done`, once it is: so a runner whose job is running is a run under way (or one to start), and it outlives the
    scheduler that created it: a restarted scheduler finds it by name and reattaches (its `done` starting the run if
    the scheduler died first) instead of launching the job twice; a runner whose job is not running is a stray that
    the watchdog ends. The Train controller is a child of this actor; `cancel` aborts it so Ray Train returns its
    placement group.
    """

    def __init__(self, settings: Settings, job_id: int, progress: Any, node_id: str | None):
        import os

        import ray

        # Ray Train hands RAY_TRAIN_* variables of the process that starts a run on to its controller. Set here, not
        # as the actor's runtime_env, so that the runner can take an idle worker process instead of starting one (the
        # job that started Ray has the same already: `factory.connect_ray`).
        os.environ.update(train_env(settings))
        self.job_id = job_id
        self.controller: Any = None
        self.error: BaseException | None = None
        me = ray.get_runtime_context().current_actor
        self.thread = threading.Thread(target=self._train, args=(settings, job_id, progress, node_id, me),
                                       name=f"training-job-{job_id}", daemon=True)
        self.starting = threading.Lock()

    def _train(self, *args: Any) -> None:
        try:
            run_training_job(*args)
        except BaseException as exc:  # done() raises it in the scheduler, which ends the job if the runner could not
            self.error = exc

    def attach_controller(self, controller: Any) -> None:
        """The run's Train controller, sent by the controller itself once it has started."""
        self.controller = controller

    def done(self) -> None:
        """Start the run unless it has started; return when it has ended (the job is ended or queued again); raise what
        the runner could not handle."""
        with self.starting:
            if self.thread.ident is None:
                self.thread.start()
        self.thread.join()
        if self.error is not None:
            raise self.error

    def cancel(self, timeout_s: float = 10.0) -> None:
        """Abort the run through its controller, which shuts its workers down and removes its placement group."""
        import ray

        if self.controller is None or not self.thread.is_alive():
            return
        try:
            ray.get(self.controller.abort.remote(), timeout=timeout_s)
        except Exception:  # the controller exits as it aborts; what it left is swept by the scheduler
            pass
        self.thread.join(timeout_s)
