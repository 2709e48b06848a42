"""Where the scheduler becomes a Ray actor: its options are applied here and nowhere else."""

from __future__ import annotations

from typing import Any

from annoray.platform.settings import Settings


def connect_ray(settings: Settings) -> None:
    """Join the configured Ray cluster, or start a local one (the embedded default)."""
    import ray

    if not ray.is_initialized():
        # "local" starts a Ray of our own: without it, ray.init() joins any Ray already running on the machine.
        ray.init(address=settings.scheduler.ray_address or "local", namespace=settings.scheduler.namespace,
                 include_dashboard=False, log_to_driver=False)


def start_scheduler(settings: Settings) -> Any:
    """The named, detached scheduler actor: reconnects to a running one or starts it; returns its handle."""
    import ray

    from annoray.scheduler.scheduler import Scheduler

    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    connect_ray(settings)
    actor = ray.remote(Scheduler).options(
        name=settings.scheduler.name, namespace=settings.scheduler.namespace, lifetime="detached",
        get_if_exists=True, max_restarts=-1, max_task_retries=-1, max_concurrency=64, num_cpus=0,
        scheduling_strategy=NodeAffinitySchedulingStrategy(head_node_id(), soft=False),
    ).remote(settings)
    ray.get(actor.ping.remote())
    return actor


def head_node_id() -> str:
    """The head node outlives workers an autoscaler removes, so the scheduler lives there."""
    import ray

    for node in ray.nodes():
        if node["Alive"] and "node:__internal_head__" in node["Resources"]:
            return node["NodeID"]
    return ray.get_runtime_context().get_node_id()


def stop_scheduler(settings: Settings) -> None:
    import ray

    try:
        actor = ray.get_actor(settings.scheduler.name, namespace=settings.scheduler.namespace)
    except ValueError:
        return
    ray.kill(actor, no_restart=True)
