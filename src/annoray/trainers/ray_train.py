"""The Ray Train entry point: one `DataParallelTrainer` run per training job.

The worker gets its examples in the run's config (it never touches the database), reports
every epoch with a checkpoint, and ends with a checkpoint holding the trained model. Every checkpoint holds the
reports sent so far, and the run's result all of them: a report the scheduler missed (it was down when the run
ended) is not lost.
``FailureConfig`` restarts a killed worker, which resumes from the last checkpoint; a training that raises ends the
run at once (`TrainingCrashed`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from annoray.platform.errors import describe
from annoray.platform.settings import Settings
from annoray.trainers.engines import CHECKPOINT_DIR, MODEL_DIR, EngineConfig, get_engine
from annoray.trainers.metrics import reference

FINAL = "final"
CRASHED = "crashed"  # in the final report of a run whose training raised: the error, as `describe` words it
EPOCHS_FILE = "epochs.json"  # in every checkpoint: the epoch reports sent so far


class TrainingCrashed(Exception):
    """The training raised (its data, its config): the run ends at once, without a second worker that would raise it
    again. A killed worker, a lost node or a worker out of memory are tried again, within the run's budget."""


@dataclass
class TrainingRun:
    """What a run needs: the engine, its config and parameters, the split examples, where Ray keeps its state."""

    name: str
    engine: str
    engine_config: dict[str, Any]
    params: dict[str, Any]
    train: list[Any]
    dev: list[Any]
    storage_path: str
    resources: dict[str, float] = field(default_factory=lambda: {"CPU": 1.0})  # of the worker, in Ray's names
    max_failures: int = 2
    node_id: str | None = None  # the node the scheduler placed the worker on
    baseline: dict[str, str] | None = None  # {model, engine, store}: a stored model to score on the same held-out split


@dataclass
class RunResult:
    metrics: dict[str, Any]  # the trained model on the held-out split
    baseline: dict[str, Any] | None = None  # {model, metrics} or {model, error}: the baseline on the same split
    epochs: list[dict[str, Any]] = field(default_factory=list)  # every epoch's report, as Ray Train's controller sent it


def train_env(settings: Settings) -> dict[str, str]:
    """The variables Ray Train reads in the process that starts a run and gives its controller and workers as their
    runtime_env. Set for the whole job where annoray starts Ray (`scheduler.factory.connect_ray`), they make those
    processes' runtime_env the job's own, so Ray can hand them idle worker processes instead of starting new ones."""
    return {"RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S": str(settings.training.start_timeout_s),
            "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": str(settings.training.poll_interval_s),
            # the scheduler watches nodes itself (a lost node's run is queued again): no watcher actor per run
            "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
            "RAY_WARN_BLOCKING_GET_INSIDE_ASYNC": "0"}  # what Ray Train gives its controller when the variable is unset


def train_loop_per_worker(config: dict[str, Any]) -> None:
    import ray.train

    from annoray.trainers.threads import use_cpus

    threads = use_cpus(config.get("cpus", 1))
    work = Path(tempfile.mkdtemp(prefix="annoray-train-"))
    reported: list[dict[str, Any]] = []
    try:
        _train(config, work, reported, {"pid": os.getpid(), "node": ray.util.get_node_ip_address(), "threads": threads})
    except MemoryError:
        raise  # Ray Train tries again on a fresh worker, within the run's budget
    except Exception as exc:  # the training's own error (its data, its config): a second worker would raise it again
        with tempfile.TemporaryDirectory() as d:  # the run's result is its last checkpoint's report
            (Path(d) / EPOCHS_FILE).write_text(json.dumps(reported))
            ray.train.report({FINAL: True, CRASHED: describe(exc, 1000), "epochs": reported},
                             checkpoint=ray.train.Checkpoint.from_directory(d))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _train(config: dict[str, Any], work: Path, reported: list[dict[str, Any]], worker: dict[str, Any]) -> None:
    """Train from the last checkpoint (if any), report every epoch with a checkpoint, end with the trained model."""
    import ray.train
    from ray.train import Checkpoint

    from annoray.platform.models.training import TrainingParams

    previous = ray.train.get_checkpoint()
    if previous is not None:
        with previous.as_directory() as d:
            if (Path(d) / CHECKPOINT_DIR).exists():
                shutil.copytree(Path(d) / CHECKPOINT_DIR, work / CHECKPOINT_DIR)
            if (Path(d) / EPOCHS_FILE).exists():
                reported[:] = json.loads((Path(d) / EPOCHS_FILE).read_text())
    engine = get_engine(config["engine"])(EngineConfig(**config["engine_config"]))
    params = TrainingParams(**config["params"])
    metrics: dict[str, Any] = {}
    began = time.perf_counter()
    for report in engine.train(train=config["train"], dev=config["dev"], params=params, output_dir=work):
        metrics = report.metrics
        with tempfile.TemporaryDirectory() as d:
            shutil.copytree(work / CHECKPOINT_DIR, Path(d) / CHECKPOINT_DIR)
            # the epoch as a user waits for it: training, scoring, and persisting its checkpoint
            wall = round(time.perf_counter() - began, 3)
            reported.append(asdict(report) | {"worker": worker, "wall_seconds": wall})
            (Path(d) / EPOCHS_FILE).write_text(json.dumps(reported))
            ray.train.report(reported[-1], checkpoint=Checkpoint.from_directory(d))
        began = time.perf_counter()
    if not metrics and config["dev"]:  # resumed after the last epoch's checkpoint: score the finished model
        metrics = engine.evaluate(work / MODEL_DIR, config["dev"])
    if metrics and (guess := reference(config["train"], config["dev"], engine.config.labels, multiple=engine.config.multiple)):
        metrics = metrics | {"reference": guess}
    baseline = score_baseline(config["baseline"], config["engine_config"], config["dev"]) if config.get("baseline") else None
    with tempfile.TemporaryDirectory() as d:
        shutil.copytree(work / MODEL_DIR, Path(d) / MODEL_DIR)
        (Path(d) / EPOCHS_FILE).write_text(json.dumps(reported))
        ray.train.report({FINAL: True, "metrics": metrics, "baseline": baseline, "epochs": reported},
                         checkpoint=Checkpoint.from_directory(d))


def score_baseline(baseline: dict[str, str], engine_config: dict[str, Any], dev: list[Any]) -> dict[str, Any]:
    """The stored model ``baseline["model"]`` scored on the held-out examples the new model was scored on."""
    from annoray.trainers.store import ModelStore

    if not dev:
        return {"model": baseline["model"], "error": "no held-out examples to score it on"}
    try:
        with tempfile.TemporaryDirectory() as d:
            path = ModelStore(baseline["store"]).get(baseline["model"], Path(d) / "model")
            engine = get_engine(baseline["engine"])(EngineConfig(**engine_config))
            return {"model": baseline["model"], "metrics": engine.evaluate(path, dev)}
    except Exception as exc:  # the deploy then falls back on the baseline's own benchmark
        return {"model": baseline["model"], "error": describe(exc)}


def run_training(run: TrainingRun, model_dir: Path, progress: Any = None, owner: Any = None) -> RunResult:
    """Run one training on the connected Ray cluster, copy the trained model to ``model_dir``, return its metrics
    (and the baseline's, scored on the same held-out split, when the run names one).

    Args:
        progress: an actor handle whose ``epoch.remote(run_name, report)`` receives each epoch's
            `EpochReport` as a dict and ``worker_failed.remote(run_name, error, node_id)`` each failure of a
            worker (with the node this launch placed it on); Ray Train calls them from its controller process, not this one.
        owner: an actor handle whose ``attach_controller.remote(controller)`` receives the run's Train controller
            as soon as it starts, so that whoever owns the run can abort it (Ray Train then removes its placement group).

    Raises the run's error (a `ray.train.TrainingFailedError`) when the retries are spent: a `ray.train.ControllerError`
    at once when the worker group cannot start or the controller fails (whoever launched the run decides whether to
    try again; the controller does not retry on its own), a `ray.train.WorkerGroupError` when the workers failed
    more than ``max_failures`` times.
    """
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig, UserCallback
    from ray.train.v2._internal.callbacks import DatasetsCallback
    from ray.train.v2._internal.callbacks.placement_group_callback import PlacementGroupCleanerCallback
    from ray.train.v2._internal.execution.callback import ControllerCallback
    from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer

    class Progress(UserCallback):
        def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
            if metrics and FINAL not in metrics[0]:
                progress.epoch.remote(run.name, metrics[0])

        def after_exception(self, run_context: Any, worker_exceptions: dict[int, Exception]) -> None:
            for rank, error in worker_exceptions.items():
                progress.worker_failed.remote(run.name, f"worker {rank}: {describe(error, 1000)}", run.node_id)

    class Owner(ControllerCallback):
        # Ray Train's public callbacks see no controller; this developer hook runs inside it once it has started.
        def after_controller_start(self, train_run_context: Any) -> None:
            owner.attach_controller.remote(ray.get_runtime_context().current_actor)

    class Trainer(DataParallelTrainer):
        # Two of Ray Train's own callbacks start an actor process per run that annoray has no use for: the Ray
        # Datasets manager (the examples come in the run's config) and the placement group cleaner (it needs the
        # state API, so the dashboard, which annoray does not start; the scheduler sweeps what a dead controller
        # left: `scheduler.reservations`). `benchmarks/train_start.py` measures what they cost.
        def _create_default_callbacks(self) -> list[Any]:
            return [c for c in super()._create_default_callbacks()
                    if not isinstance(c, DatasetsCallback | PlacementGroupCleanerCallback)]

    callbacks: list[Any] = ([Progress()] if progress is not None else []) + ([Owner()] if owner is not None else [])
    trainer = Trainer(
        train_loop_per_worker,
        train_loop_config={
            "engine": run.engine, "engine_config": run.engine_config, "params": run.params,
            "train": run.train, "dev": run.dev, "baseline": run.baseline, "cpus": run.resources.get("CPU", 1.0),
        },
        scaling_config=ScalingConfig(
            num_workers=1, resources_per_worker=run.resources,
            label_selector={"ray.io/node-id": run.node_id} if run.node_id else None,
        ),
        run_config=RunConfig(
            name=run.name, storage_path=run.storage_path,
            failure_config=FailureConfig(max_failures=run.max_failures, controller_failure_limit=0),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            callbacks=callbacks or None,
        ),
    )
    result = trainer.fit()
    if (result.metrics or {}).get(CRASHED):
        raise TrainingCrashed(result.metrics[CRASHED])
    with result.checkpoint.as_directory() as d:
        shutil.copytree(Path(d) / MODEL_DIR, model_dir, dirs_exist_ok=True)
    return RunResult(dict(result.metrics.get("metrics") or {}), result.metrics.get("baseline"), list(result.metrics.get("epochs") or []))
