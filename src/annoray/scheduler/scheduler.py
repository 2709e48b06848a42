"""The scheduler: the one process that starts, watches and cancels training jobs."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from annoray.platform.errors import Errors
from annoray.platform.models import JobStatus
from annoray.platform.repositories import TrainingJobRepository, TrainingLogRepository
from annoray.platform.settings import Settings
from annoray.scheduler.runner import cancel_job, fail_job, job_of_run, log_line, run_training_job
from annoray.trainers.log import epoch_text

logger = logging.getLogger(__name__)


class Scheduler:
    """Starts queued training jobs as Ray tasks, records their progress, ends them, cancels them.

    Guarantees:
    - The database is the only state that matters: a job is ``queued`` until this scheduler moves
      it to ``running`` (a conditional update, so two schedulers never start one job twice), and
      it ends ``succeeded``, ``failed`` (with the reason) or ``cancelled`` exactly once.
    - A restarted scheduler reloads from the database: queued jobs are started, and jobs left
      ``running`` by its previous life are relaunched, resuming from their last Ray Train checkpoint.
    - Progress reports are idempotent: a report for an epoch seen before only logs again.
    """

    def __init__(self, settings: Settings):
        from annoray.platform.db import create_db_engine, session_factory

        self.settings = settings
        self.engine = create_db_engine(settings.resolved_database_url)
        self.sessions = session_factory(self.engine, write=True)
        self.running: dict[int, Any] = {}  # job id -> ObjectRef of its runner task
        self.lock = threading.RLock()
        self.stopped = threading.Event()
        self._recover()
        self.watcher = threading.Thread(target=self._watch, name="annoray-scheduler-watch", daemon=True)
        self.watcher.start()

    def ping(self) -> str:
        return "ok"

    def wake(self) -> list[int]:
        """Start every queued job; returns the ids started."""
        with self.sessions() as session:
            queued = [j.id for j in TrainingJobRepository(session).with_status(JobStatus.QUEUED, JobStatus.WAITING)]
        return [job_id for job_id in queued if self._launch(job_id)]

    def cancel(self, job_id: int, username: str) -> str:
        """Stop a job wherever it is; its Ray Train run is killed with the task that owns it."""
        with self.lock:
            cancel_job(self.sessions, job_id, username, (JobStatus.QUEUED, JobStatus.WAITING, JobStatus.RUNNING))
            ref = self.running.pop(job_id, None)
        if ref is not None:
            import ray

            ray.cancel(ref, force=True)
        with self.sessions() as session:
            return TrainingJobRepository(session).get(job_id).status.value

    def running_jobs(self) -> list[int]:
        with self.lock:
            return sorted(self.running)

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

    def shutdown(self) -> None:
        self.stopped.set()

    def _launch(self, job_id: int) -> bool:
        import ray

        with self.lock:
            if job_id in self.running:
                return False
            with self.sessions.begin() as session:
                if not TrainingJobRepository(session).transition(
                    job_id, (JobStatus.QUEUED, JobStatus.WAITING), JobStatus.RUNNING,
                    reason=None, started_at=datetime.now(UTC),
                ):
                    return False
            me = ray.get_runtime_context().current_actor
            task = ray.remote(run_training_job).options(num_cpus=0, max_retries=0, name=f"training-job-{job_id}")
            self.running[job_id] = task.remote(self.settings, job_id, me)
        log_line(self.sessions, job_id, "launch", "launched by the scheduler", {})
        return True

    def _recover(self) -> None:
        with self.sessions.begin() as session:
            repo = TrainingJobRepository(session)
            for job in repo.with_status(JobStatus.RUNNING):
                repo.transition(job.id, (JobStatus.RUNNING,), JobStatus.QUEUED, reason="scheduler restarted; relaunching")
                TrainingLogRepository(session).append(
                    job.id, "restart", "the scheduler restarted; relaunching from the last checkpoint", {})

    def _watch(self) -> None:
        """End jobs whose runner task died without ending them (a killed process, a lost node)."""
        import ray

        while not self.stopped.is_set():
            with self.lock:
                refs = {ref: job_id for job_id, ref in self.running.items()}
            if not refs:
                self.stopped.wait(0.5)
                continue
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
            for ref in ready:
                job_id = refs[ref]
                with self.lock:
                    if self.running.get(job_id) is ref:
                        del self.running[job_id]
                try:
                    ray.get(ref)
                except Exception as exc:  # the runner already ended the job if it could; this catches the rest
                    fail_job(self.sessions, job_id, Errors.E609.format(why=f"the training process died: {type(exc).__name__}: {str(exc)[:300]}"))
