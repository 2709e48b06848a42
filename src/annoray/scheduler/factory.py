"""Where the scheduler becomes a Ray actor: its options are applied here and nowhere else."""

from __future__ import annotations

from typing import Any

from annoray.platform.resources import Resources
from annoray.platform.settings import Settings


def connect_ray(settings: Settings) -> None:
    """Join the configured Ray cluster, or start a local one (the embedded default)."""
    import ray

    from annoray.trainers.ray_train import train_env

    if not ray.is_initialized():
        # "local" starts a Ray of our own: without it, ray.init() joins any Ray already running on the machine.
        ray.init(address=settings.scheduler.ray_address or "local", namespace=settings.scheduler.namespace,
                 include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": train_env(settings)})


def scheduler_actor(scheduler: type, settings: Settings) -> Any:
    """The named, detached scheduler actor of class ``scheduler`` (``start.start_scheduler`` gives it): reconnects to
    a running one or starts it; returns its handle."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    connect_ray(settings)
    actor = ray.remote(scheduler).options(
        name=settings.scheduler.name, namespace=settings.scheduler.namespace, lifetime="detached",
        get_if_exists=True, max_restarts=-1, max_task_retries=-1, max_concurrency=64, num_cpus=0,
        scheduling_strategy=NodeAffinitySchedulingStrategy(head_node_id(), soft=False),
    ).remote(settings)
    ray.get(actor.ping.remote())
    return actor


def runner_name(settings: Settings, job_id: int) -> str:
    """The name of a training job's runner actor: found again by a restarted scheduler."""
    return f"{settings.scheduler.name}-training-{job_id}"


def start_training_runner(settings: Settings, job_id: int, progress: Any, node_id: str) -> Any:
    """Start the detached actor that runs one training job, on this (the scheduler's) node, and return its handle
    (``end_stale_runner`` said none of an earlier launch is left)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from annoray.scheduler.runner import TrainingRunner

    # The runner (and the Train controller it starts) stay on the scheduler's node; only the worker moves.
    return ray.remote(TrainingRunner).options(
        name=runner_name(settings, job_id), namespace=settings.scheduler.namespace, lifetime="detached",
        num_cpus=0, max_restarts=0, max_concurrency=4,
        scheduling_strategy=NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False),
    ).remote(settings, job_id, progress, node_id)


def end_stale_runner(settings: Settings, job_id: int) -> bool:
    """Kill a runner an earlier launch of the job left, without waiting for it to go (its name is taken until then);
    whether there was one. The job is launched on a later pass, once Ray has let it go."""
    import ray

    stale = find_training_runner(settings, job_id)
    if stale is not None:
        ray.kill(stale, no_restart=True)
    return stale is not None


def find_training_runner(settings: Settings, job_id: int) -> Any | None:
    import ray

    try:
        return ray.get_actor(runner_name(settings, job_id), namespace=settings.scheduler.namespace)
    except ValueError:
        return None


def training_runner_ids(settings: Settings) -> set[int]:
    """The job ids of this scheduler's live runners, in Ray's own view: one call to the GCS, whatever their number."""
    import ray

    prefix = runner_name(settings, 0)[:-1]
    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
             if a["namespace"] == settings.scheduler.namespace and a["name"].startswith(prefix)]
    return {int(job_id) for name in names if (job_id := name[len(prefix):]).isdigit()}


def training_runners(settings: Settings) -> dict[int, Any]:
    """Every live runner of this scheduler's jobs, by job id, with its handle."""
    runners = {job_id: find_training_runner(settings, job_id) for job_id in training_runner_ids(settings)}
    return {job_id: runner for job_id, runner in runners.items() if runner is not None}


def _wait_until_gone(settings: Settings, job_id: int, timeout_s: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while find_training_runner(settings, job_id) is not None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the runner of training {job_id} did not end in {timeout_s:g} s")
        time.sleep(0.1)


def head_node_id() -> str:
    """The head node outlives workers an autoscaler removes, so the scheduler lives there."""
    import ray

    for node in ray.nodes():
        if node["Alive"] and "node:__internal_head__" in node["Resources"]:
            return node["NodeID"]
    return ray.get_runtime_context().get_node_id()


def stop_scheduler(settings: Settings) -> None:
    """End the scheduler and the runs it owns, and give their reservations back to Ray."""
    import ray

    from annoray.scheduler.reservations import remove_orphaned_reservations

    try:
        actor = ray.get_actor(settings.scheduler.name, namespace=settings.scheduler.namespace)
    except ValueError:
        actor = None
    if actor is not None:
        ray.kill(actor, no_restart=True)
    runners = training_runners(settings)
    try:  # aborted through their controllers, the runs remove their own placement groups
        ray.get([runner.cancel.remote() for runner in runners.values()], timeout=30)
    except Exception:  # a run that did not abort in time is killed; the next pass of any scheduler sweeps what it left
        pass
    for runner in runners.values():
        ray.kill(runner, no_restart=True)
    for job_id in runners:
        _wait_until_gone(settings, job_id)
    remove_orphaned_reservations()


def server_app(*, store: str, models: list[dict[str, Any]], rules: list[dict[str, Any]], language: str, replicas: int,
               max_replicas: int, replica: Resources, spread: dict[str, int], max_models: int,
               autoscaling: dict[str, float] | None = None, max_batch_size: int = 8) -> Any:
    """The Serve application of one pre-annotation server: its replicas kept to the nodes the scheduler chose, at most
    as many on each as it holds room for there (``spread``: node id -> replicas), and autoscaled between ``replicas``
    and ``max_replicas`` by Serve with ``autoscaling``'s options (target ongoing requests, up and down delays)."""
    from ray import serve

    from annoray.serve_apps.server import DEPLOYMENT, PreannotationReplica

    actor: dict[str, Any] = replica.actor_options()
    nodes = sorted(spread)
    if nodes:
        actor["label_selector"] = {"ray.io/node-id": nodes[0] if len(nodes) == 1 else f"in({','.join(nodes)})"}
    placement: dict[str, Any] = {"max_replicas_per_node": max(spread.values())} if len(nodes) > 1 else {}
    scaling: dict[str, Any] = {"num_replicas": replicas} if max_replicas <= replicas else {
        "num_replicas": "auto", "autoscaling_config": {"min_replicas": replicas, "max_replicas": max_replicas, **(autoscaling or {})}}
    return serve.deployment(PreannotationReplica, name=DEPLOYMENT).options(
        ray_actor_options=actor, max_ongoing_requests=max_batch_size * 2, **placement, **scaling,
    ).bind(store, models, rules, language, max_batch_size, max_models)


def start_preannotation_job(settings: Settings, job_id: int) -> Any:
    """The task that runs one pre-annotation job, on this (the scheduler's) node; returns its reference."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from annoray.scheduler.preannotation import run_preannotation_job

    return ray.remote(run_preannotation_job).options(
        num_cpus=0, max_retries=0, name=f"preannotation-job-{job_id}",
        scheduling_strategy=NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False),
    ).remote(settings, job_id)


def start_ocr_page(settings: Settings, page_id: int) -> Any:
    """The task that OCRs one page, wherever Ray finds room (spread over the cluster); returns its reference."""
    import ray

    from annoray.scheduler.documents import run_ocr_page

    return ray.remote(run_ocr_page).options(
        **settings.ocr.resources.resources().actor_options(), max_retries=0, scheduling_strategy="SPREAD",
        name=f"ocr-page-{page_id}",
    ).remote(settings, page_id)
