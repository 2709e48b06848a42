"""Training jobs' progress and ends the ways the lifecycle allows, each with its log line (and its seats returned) in
the same transaction: an epoch recorded once, failed, cancelled, queued again within the retry budget after a lost
run, or queued again after a preemption (which counts against no budget)."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from annoray.platform.errors import Errors
from annoray.platform.lifecycle import UNDER_WAY, JobStatus
from annoray.platform.store.repositories import TrainingJobRepository, TrainingLogRepository
from annoray.platform.store.tables import TrainingJob


def log_line(sessions: sessionmaker[Session], job_id: int, event: str, text: str, data: dict[str, Any] | None = None) -> None:
    with sessions.begin() as session:
        TrainingLogRepository(session).append(job_id, event, text, data)


def record_epoch(sessions: sessionmaker[Session], job_id: int, report: dict[str, Any], text: str) -> None:
    """Log an epoch's report once and move the job's progress to it.

    The same report may come twice (from the run's controller, at least once across scheduler restarts, and from the
    run's result, which holds every report) and out of order: a report already logged is dropped, progress never goes
    back. One that arrives after its job was cancelled or failed is dropped: the run was being taken down, and the
    log ends with why. One that arrives after the job succeeded is kept.
    """
    report = json.loads(json.dumps(report))  # as the log stores it
    progress = {"epoch": report["epoch"], "epochs": report["epochs"],
                "percent": round(100.0 * report["epoch"] / max(report["epochs"], 1), 1),
                "loss": report["loss"], "metrics": report.get("metrics", {})}
    with sessions.begin() as session:
        jobs, log = TrainingJobRepository(session), TrainingLogRepository(session)
        job = session.get(TrainingJob, job_id, with_for_update=True)  # ordered with a cancel's update and the twin report
        if job is None or job.status in (JobStatus.CANCELLED, JobStatus.FAILED):
            return
        if any(line.data == report for line in log.lines(job_id, event="epoch")):
            return
        if report["epoch"] >= (job.progress or {}).get("epoch", 0):
            jobs.set(job_id, progress=progress)
        log.append(job_id, "epoch", text, report)


def fail_job(sessions: sessionmaker[Session], job_id: int, reason: str, among: Collection[JobStatus] = (JobStatus.RUNNING,)) -> bool:
    """End a job as failed with the reason a user can act on, and log where it stopped; False if it had ended."""
    with sessions.begin() as session:
        job = TrainingJobRepository(session).get(job_id)
        epoch = (job.progress or {}).get("epoch", 0)
        moved = TrainingJobRepository(session).transition(
            job_id, among, JobStatus.FAILED, error=reason, reason=None, finished_at=datetime.now(UTC))
        if moved:
            where = f"after epoch {epoch}" if epoch else "before the first epoch ended"
            TrainingLogRepository(session).append(job_id, "failed", f"failed {where}: {reason}", {"error": reason, "epoch": epoch})
    return moved


def cancel_job(sessions: sessionmaker[Session], job_id: int, username: str, among: Collection[JobStatus] = UNDER_WAY) -> bool:
    """End a job as cancelled if it is still in one of ``among``; False if it had moved on."""
    reason = Errors.E611.format(username=username)
    with sessions.begin() as session:
        moved = TrainingJobRepository(session).transition(
            job_id, among, JobStatus.CANCELLED, error=reason, reason=None, finished_at=datetime.now(UTC))
        if moved:
            TrainingLogRepository(session).append(job_id, "cancelled", reason, {"by": username})
    return moved


def requeue_or_fail(sessions: sessionmaker[Session], job_id: int, budget: int, reason: Callable[[str], str],
                    data: dict[str, Any] | None = None) -> bool:
    """A running job whose run was lost counts one failure: queued again to resume from its last checkpoint while
    the budget lasts, failed with the reason beyond it. ``reason`` words the loss given what happens next.

    Returns whether the job was queued again (False also when it had already moved on).
    """
    with sessions.begin() as session:
        repo, log = TrainingJobRepository(session), TrainingLogRepository(session)
        failures = repo.get(job_id).attempts + 1
        data = (data or {}) | {"failures": failures, "budget": budget}
        if failures > budget:
            text = reason(f"failure {failures} is beyond the retry budget of {budget}")
            if repo.transition(job_id, (JobStatus.RUNNING,), JobStatus.FAILED, error=text, reason=None,
                               finished_at=datetime.now(UTC), attempts=failures):
                log.append(job_id, "failed", f"failed: {text}", {"error": text, **data})
            return False
        text = reason(f"queued again to resume from its last checkpoint (failure {failures} of a budget of {budget})")
        moved = repo.transition(job_id, (JobStatus.RUNNING,), JobStatus.QUEUED, reason=text, attempts=failures)
        if moved:
            log.append(job_id, "attempt", text, data)
        return moved


def preempted_text(by: dict[str, Any], why: str) -> str:
    """Who preempted a job or server and why, as its reason and log say it."""
    return (f"preempted by {by.get('kind', 'training')} {by['id']} of team '{by['team']}' (priority {by['priority']}) "
            + ("of a higher priority" if why == "priority" else "reclaiming its team's quota"))


def preempt_job(sessions: sessionmaker[Session], job_id: int, by: dict[str, Any], why: str) -> bool:
    """A running job stopped to make room for another (``by``: its id, team and priority; ``why``: "priority" or
    "reclaim"): queued again to resume from its last checkpoint, one more preemption counted and none of its failure
    budget. False when it had moved on (ended, or cancelled meanwhile)."""
    text = preempted_text(by, why) + ": queued again to resume from its last checkpoint"
    with sessions.begin() as session:
        repo = TrainingJobRepository(session)
        job = repo.get(job_id)
        moved = repo.transition(job_id, (JobStatus.RUNNING,), JobStatus.QUEUED, reason=text,
                                preemptions=job.preemptions + 1)
        if moved:
            epoch = (job.progress or {}).get("epoch", 0)
            TrainingLogRepository(session).append(job_id, "preempted", text, {"by": by, "why": why, "epoch": epoch,
                                                                                "at": datetime.now(UTC).isoformat()})
    return moved
