"""The scheduler: the one process that decides which training job runs where, and when."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from annoray.platform.errors import Errors
from annoray.platform.models import JobStatus, TrainingJob
from annoray.platform.repositories import TrainingJobRepository, TrainingLogRepository
from annoray.platform.settings import Settings
from annoray.scheduler.placement import Node, Outcome, Pending, Resources, place, plan
from annoray.scheduler.runner import cancel_job, fail_job, job_of_run, log_line, run_training_job
from annoray.trainers.log import epoch_text

logger = logging.getLogger(__name__)

TICK_SECONDS = 1.0
PENDING = (JobStatus.QUEUED, JobStatus.WAITING)


@dataclass
class Allocation:
    """What the ledger holds for one running job: where it runs, what it holds, its runner task."""

    node_id: str
    resources: Resources
    ref: Any


def ray_nodes() -> list[dict[str, Any]]:
    import ray

    return [n for n in ray.nodes() if n["Alive"]]


class Scheduler:
    """Allocates cluster resources to training jobs, queues what must wait, refuses what can never run.

    Guarantees:
    - The database is the only state that matters. A job is ``queued`` or ``waiting`` (with the
      reason) until this scheduler moves it to ``running`` with a conditional update, so no job
      starts twice; it ends ``succeeded``, ``failed`` (with the reason) or ``cancelled`` once.
    - Never over-commits: a job starts only on a node whose total, less what the ledger has
      allocated there, holds its whole worker bundle; its Ray Train worker is pinned to that node.
    - Fair: jobs are taken oldest first. When the oldest job that fits the cluster must wait, the
      node it can soonest use is held for it, and younger jobs only backfill other nodes, so a big
      job is never overtaken forever by small ones.
    - One training per project and kind at a time; the next one waits for it.
    - A restarted scheduler reloads from the database: the runs its previous life owned died with
      it, so jobs left ``running`` are queued again ahead of younger ones and resume from their
      last Ray Train checkpoint.
    - Progress reports are idempotent: a report for an epoch seen before only logs again.
    """

    def __init__(self, settings: Settings):
        from annoray.platform.db import create_db_engine, session_factory

        self.settings = settings
        self.engine = create_db_engine(settings.resolved_database_url)
        self.sessions = session_factory(self.engine, write=True)
        self.ledger: dict[int, Allocation] = {}
        self.lock = threading.RLock()
        self.kick = threading.Event()
        from ray.util.metrics import Gauge

        self.metrics = {
            "queue": Gauge("annoray_scheduler_queue_length", description="Training jobs queued or waiting."),
            "running": Gauge("annoray_scheduler_running_jobs", description="Training jobs holding resources."),
            "cpus": Gauge("annoray_scheduler_allocated_cpus", description="CPUs the ledger has allocated."),
        }
        self.node_types = [Resources.of(t) for t in settings.scheduler.autoscaler_node_types]
        if settings.scheduler.cluster_config:
            from annoray.scheduler.cluster_config import autoscaler_node_types

            self.node_types += autoscaler_node_types(settings.scheduler.cluster_config)
        self._recover()
        self.loop = threading.Thread(target=self._run, name="annoray-scheduler", daemon=True)
        self.loop.start()

    # --- calls from the API and from Ray Train ----------------------------------------------------------

    def ping(self) -> str:
        return "ok"

    def wake(self) -> None:
        """New jobs are queued: decide now rather than at the next tick."""
        self.kick.set()

    def tick(self) -> None:
        """One scheduling pass, oldest job first (also run every second by the scheduler's own loop)."""
        with self.lock:
            nodes = self._nodes()
            with self.sessions() as session:
                jobs = list(TrainingJobRepository(session).with_status(JobStatus.RUNNING, *PENDING))
                session.expunge_all()
            running = {(j.project_id, j.kind): j.id for j in jobs if j.status is JobStatus.RUNNING}
            pending = {j.id: j for j in jobs if j.status in PENDING}
            decisions = plan([Pending(j.id, (j.project_id, j.kind), Resources.of(j.resources)) for j in pending.values()],
                             nodes, running=running, node_types=self.node_types)
            asks = []
            for want, placement in decisions:
                job = pending[want.job_id]
                if placement.outcome is Outcome.START:
                    self._launch(job, placement.node_id or "", want.demand)
                elif placement.outcome is Outcome.NEVER:
                    fail_job(self.sessions, job.id, Errors.E612.format(why=placement.reason), frm=PENDING)
                else:
                    self._wait(job, placement.reason or "waiting")
                    if placement.scale_up:
                        asks.append({"CPU": want.demand.cpus, "memory": want.demand.memory, "GPU": want.demand.gpus})
            if self.node_types and asks:
                from ray.autoscaler.sdk import request_resources

                request_resources(bundles=[{k: v for k, v in a.items() if v} for a in asks])
            waiting = sum(1 for _, p in decisions if p.outcome is Outcome.WAIT)
            self.metrics["queue"].set(waiting)
            self.metrics["running"].set(len(self.ledger))
            self.metrics["cpus"].set(sum(a.resources.cpus for a in self.ledger.values()))

    def never_reason(self, resources: dict[str, float]) -> str | None:
        """Why a job of this size can never run on this cluster (None when it can, now or later).

        Takes no lock: it depends on node totals only, and the API may hold a database lock while asking.
        """
        nodes = [Node(n["NodeID"], Resources.of_ray(n["Resources"])) for n in ray_nodes()]
        placement = place(Resources.of(resources), nodes, node_types=self.node_types)
        return placement.reason if placement.outcome is Outcome.NEVER else None

    def cancel(self, job_id: int, username: str) -> str:
        """Stop a job wherever it is; its Ray Train run is killed with the task that owns it."""
        with self.lock:
            cancel_job(self.sessions, job_id, username, (*PENDING, JobStatus.RUNNING))
            allocation = self.ledger.pop(job_id, None)
        if allocation is not None:
            import ray

            ray.cancel(allocation.ref, force=True)
        self.kick.set()
        with self.sessions() as session:
            return TrainingJobRepository(session).get(job_id).status.value

    def epoch(self, run: str, report: dict[str, Any]) -> None:
        """A training worker finished an epoch (called by Ray Train's controller)."""
        job_id = job_of_run(run)
        progress = {"epoch": report["epoch"], "epochs": report["epochs"],
                    "percent": round(100.0 * report["epoch"] / max(report["epochs"], 1), 1),
                    "loss": report["loss"], "metrics": report.get("metrics", {})}
        with self.sessions.begin() as session:
            TrainingJobRepository(session).set(job_id, progress=progress)
            TrainingLogRepository(session).append(job_id, "epoch", epoch_text(report), report)

    def worker_failed(self, run: str, error: str) -> None:
        """A training worker died or raised; Ray Train restarts it from the last checkpoint while the budget lasts."""
        job_id = job_of_run(run)
        with self.sessions.begin() as session:
            job = TrainingJobRepository(session).get(job_id)
            job.attempts += 1
            epoch = (job.progress or {}).get("epoch", 0)
            TrainingLogRepository(session).append(
                job_id, "attempt",
                f"worker failed after epoch {epoch} ({error}); failure {job.attempts} of a budget of "
                f"{self.settings.training.max_failures} restarts, resuming from the last checkpoint if within it",
                {"error": error, "epoch": epoch, "failures": job.attempts})

    # --- views --------------------------------------------------------------------------------------------

    def ledger_view(self) -> dict[int, dict[str, Any]]:
        with self.lock:
            return {job_id: {"node_id": a.node_id, **a.resources.as_dict()} for job_id, a in self.ledger.items()}

    def cluster_view(self) -> dict[str, Any]:
        """Nodes with free/total resources as the ledger sees them, running trainings, and the queue with reasons."""
        with self.lock:
            nodes = self._nodes()
            ledger = dict(self.ledger)
        with self.sessions() as session:
            jobs = TrainingJobRepository(session).with_status(JobStatus.RUNNING, *PENDING)
            running = [{"id": j.id, "project_id": j.project_id, "kind": j.kind, "node_id": ledger[j.id].node_id,
                        "resources": ledger[j.id].resources.as_dict()} for j in jobs if j.id in ledger]
            queue = [{"id": j.id, "project_id": j.project_id, "kind": j.kind, "status": j.status.value,
                      "reason": j.reason, "resources": j.resources} for j in jobs if j.status in PENDING]
        return {
            "nodes": [{"node_id": n.node_id, "total": n.total.as_dict(), "free": n.free.as_dict()} for n in nodes.values()],
            "trainings": running,
            "queue": queue,
        }

    # --- inside ---------------------------------------------------------------------------------------

    def _nodes(self) -> dict[str, Node]:
        nodes = {n["NodeID"]: Node(n["NodeID"], Resources.of_ray(n["Resources"])) for n in ray_nodes()}
        for allocation in self.ledger.values():
            if allocation.node_id in nodes:
                nodes[allocation.node_id].used += allocation.resources
        return nodes

    def _wait(self, job: TrainingJob, reason: str) -> None:
        if job.status is JobStatus.WAITING and job.reason == reason:
            return
        with self.sessions.begin() as session:
            TrainingJobRepository(session).transition(job.id, PENDING, JobStatus.WAITING, reason=reason)

    def _launch(self, job: TrainingJob, node_id: str, demand: Resources) -> bool:
        import ray

        with self.sessions.begin() as session:
            if not TrainingJobRepository(session).transition(
                job.id, PENDING, JobStatus.RUNNING, reason=None, started_at=datetime.now(UTC),
                resources=job.resources | {"node_id": node_id},
            ):
                return False
        me = ray.get_runtime_context().current_actor
        task = ray.remote(run_training_job).options(num_cpus=0, max_retries=0, name=f"training-job-{job.id}")
        self.ledger[job.id] = Allocation(node_id, demand, task.remote(self.settings, job.id, me, node_id))
        log_line(self.sessions, job.id, "launch", f"placed by the scheduler on node {node_id} ({demand.describe()})",
                 {"node_id": node_id, **demand.as_dict()})
        return True

    def _recover(self) -> None:
        with self.sessions.begin() as session:
            repo = TrainingJobRepository(session)
            for job in repo.with_status(JobStatus.RUNNING):
                repo.transition(job.id, (JobStatus.RUNNING,), JobStatus.QUEUED, reason="scheduler restarted; relaunching")
                TrainingLogRepository(session).append(
                    job.id, "restart", "the scheduler restarted; relaunching from the last checkpoint", {})

    def _run(self) -> None:
        """Tick every second or when kicked; release the ledger of jobs whose runner has ended."""
        import ray

        while True:  # the loop lives as long as the actor
            with self.lock:
                refs = {a.ref: job_id for job_id, a in self.ledger.items()}
            if refs:
                ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0)
                for ref in ready:
                    self._ended(refs[ref], ref)
            try:
                self.tick()
            except Exception:  # a failed pass is retried on the next tick; the database is unchanged
                logger.exception("scheduling pass failed")
            self.kick.wait(TICK_SECONDS)
            self.kick.clear()

    def _ended(self, job_id: int, ref: Any) -> None:
        import ray

        with self.lock:
            allocation = self.ledger.get(job_id)
            if allocation is not None and allocation.ref is ref:
                del self.ledger[job_id]
        try:
            ray.get(ref)
        except Exception as exc:  # the runner already ended the job if it could; this catches the rest
            fail_job(self.sessions, job_id, Errors.E609.format(
                why=f"the training process died: {type(exc).__name__}: {str(exc)[:300]}"))
