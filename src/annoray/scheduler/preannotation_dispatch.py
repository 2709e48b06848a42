"""The scheduler's side of pre-annotation jobs (their Ray tasks' body is ``preannotation.py``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from annoray.platform.errors import Errors, describe
from annoray.platform.store.repositories import PreannotationJobRepository, ServerRepository
from annoray.platform.store.tables import JobStatus, ServerStatus
from annoray.scheduler.ledger import SchedulerState
from annoray.scheduler.preannotation import database_unreachable


class PreannotationDispatch:
    """The scheduler's side of pre-annotation jobs: started once their server runs, taken out when they end, failed
    with their server, queued again after a restart (their tasks died with the scheduler; a job resumes where it stopped)."""

    def __init__(self, state: SchedulerState):
        self.state = state
        self.running: dict[int, Any] = {}  # pre-annotation job id -> its task's reference

    def dispatch(self) -> None:
        """Start queued jobs whose server runs; fail those whose server is gone or failed."""
        from annoray.scheduler.factory import start_preannotation_job

        with self.state.reads() as session:  # most passes have none: they take no write lock
            if not PreannotationJobRepository(session).with_status(JobStatus.QUEUED):
                return
        with self.state.sessions.begin() as session:
            jobs = PreannotationJobRepository(session)
            queued = jobs.with_status(JobStatus.QUEUED)
            servers = {s.id: s.status for s in ServerRepository(session).all()} if queued else {}
            for job in queued:
                status = servers.get(job.server_id or 0)
                if status is None or status is ServerStatus.FAILED:
                    jobs.transition(job.id, (JobStatus.QUEUED,), JobStatus.FAILED, reason=None, finished_at=datetime.now(UTC),
                                    error=Errors.E809 if status is None else Errors.E807.format(server_id=job.server_id, status=status.value))
                elif status is not ServerStatus.RUNNING:
                    reason = f"waiting for server {job.server_id} to be running (it is {status.value})"
                    if job.reason != reason:
                        jobs.set(job.id, reason=reason)
                elif jobs.transition(job.id, (JobStatus.QUEUED,), JobStatus.RUNNING, reason=None, started_at=datetime.now(UTC)):
                    self.running[job.id] = start_preannotation_job(self.state.settings, job.id)

    def ended(self, job_id: int, ref: Any) -> None:
        import ray

        try:
            ray.get(ref)
        except Exception as exc:  # the task ends its job itself when it can; this catches a task that died
            cause = getattr(exc, "cause", None) or exc
            with self.state.sessions.begin() as session:  # raises while the database is down: retried next tick
                if database_unreachable(cause):
                    PreannotationJobRepository(session).transition(
                        job_id, (JobStatus.RUNNING,), JobStatus.QUEUED,
                        reason=f"the database was unreachable ({describe(cause, 120)}); resuming where it stopped")
                else:
                    PreannotationJobRepository(session).transition(
                        job_id, (JobStatus.RUNNING,), JobStatus.FAILED, reason=None, finished_at=datetime.now(UTC),
                        error=Errors.E815.format(why=describe(exc)))
        with self.state.lock:  # only once its end is written: a write that failed is tried again on the next tick
            if self.running.get(job_id) is ref:
                del self.running[job_id]
        self.state.kick.set()

    def fail_for_server(self, session: Session, server_id: int) -> None:
        """The server is being deleted: its jobs fail (E809) and their tasks stop."""
        import ray

        jobs = PreannotationJobRepository(session)
        for job in jobs.for_server(server_id, JobStatus.QUEUED, JobStatus.RUNNING):
            jobs.transition(job.id, (JobStatus.QUEUED, JobStatus.RUNNING), JobStatus.FAILED, reason=None,
                            error=Errors.E809, finished_at=datetime.now(UTC))
            if (ref := self.running.pop(job.id, None)) is not None:
                ray.cancel(ref, force=True)

    def wait_for_server(self, session: Session, server_id: int, why: str | None = None) -> None:
        """The server lost its replicas (their node left, or it was preempted: ``why``) and deploys again: its running
        jobs stop, queued to resume once it runs (each task keeps the one prediction it has)."""
        import ray

        jobs = PreannotationJobRepository(session)
        why = why or f"server {server_id} lost its node and deploys again"
        for job in jobs.for_server(server_id, JobStatus.RUNNING):
            jobs.transition(job.id, (JobStatus.RUNNING,), JobStatus.QUEUED, reason=f"{why}; resuming where it stopped")
            with self.state.lock:
                ref = self.running.pop(job.id, None)
            if ref is not None:
                ray.cancel(ref, force=True)

    def requeue_after_restart(self, session: Session) -> None:
        jobs = PreannotationJobRepository(session)
        for job in jobs.with_status(JobStatus.RUNNING):
            jobs.transition(job.id, (JobStatus.RUNNING,), JobStatus.QUEUED, reason="scheduler restarted; resuming")
