"""Recovery: reattaching to the runs a previous life of the scheduler launched, the watchdog that keeps the running
jobs, the ledger and Ray's own view in agreement, and runs lost with a node."""

from __future__ import annotations

import logging
from typing import Any

from annoray.platform.errors import Errors
from annoray.platform.models.training_jobs import requeue_or_fail
from annoray.platform.resources import Resources
from annoray.platform.store.repositories import TRAINING, LicenseRepository, TrainingJobRepository, TrainingLogRepository
from annoray.platform.store.tables import JobStatus, TrainingJob
from annoray.scheduler.ledger import Allocation, SchedulerState
from annoray.scheduler.training_runs import TrainingRuns

logger = logging.getLogger(__name__)


class Recovery:
    WATCH_SECONDS = 1.0  # Ray's view is read at most this often, however often passes are kicked

    def __init__(self, state: SchedulerState, runs: TrainingRuns):
        self.state, self.runs = state, runs
        self.watch_at = 0.0
        self.strays: list[tuple[int, Any]] = []  # runners to end once the pass has let go of the lock

    def reattach(self) -> None:
        """Ledger again every running job whose runner is alive, with its seats, and return every other seat; the
        watchdog's first pass queues again, within their budget, the running jobs whose run is gone."""
        from annoray.scheduler.factory import training_runners

        ledger = self.state.ledger.trainings
        runners = training_runners(self.state.settings)
        with self.state.sessions.begin() as session:
            leases = LicenseRepository(session).seats_by_holder(TRAINING)
            for job in TrainingJobRepository(session).with_status(JobStatus.RUNNING):
                if (runner := runners.get(job.id)) is None:
                    continue
                node_id = job.node_id or ""
                ledger[job.id] = Allocation(node_id, Resources.of(job.resources), runner.done.remote(),
                                            leases.get(job.id, ()), runner)
                TrainingLogRepository(session).append(
                    job.id, "restart", f"the scheduler restarted; reattached to the run on node {node_id}", {"node_id": node_id})
            LicenseRepository(session).release_all_but(TRAINING, list(ledger))

    def watch(self, running: list[TrainingJob]) -> set[int]:
        """The watchdog, under the lock at the start of a pass: a running job with no live runner in Ray's own view
        is queued again within its budget (or fails), a live runner whose job this scheduler does not hold is noted
        for ``end_strays`` (outside the lock: an abort may take 30 s), and placement groups that dead runs left behind go back to Ray. Returns the ids of the jobs it took back
        (none when it looked less than ``WATCH_SECONDS`` ago)."""
        import time

        from annoray.scheduler.factory import find_training_runner, training_runner_ids
        from annoray.scheduler.reservations import remove_orphaned_reservations

        if time.monotonic() < self.watch_at:
            return set()
        self.watch_at = time.monotonic() + self.WATCH_SECONDS
        ledger = self.state.ledger.trainings
        live = training_runner_ids(self.state.settings)
        lost = [job for job in running if job.id not in live]
        for job in lost:
            allocation = ledger.pop(job.id, None)
            why = "had no live run: its runner " + ("died" if allocation is not None else "never started")
            requeue_or_fail(self.state.sessions, job.id, self.state.settings.training.max_failures,
                            lambda what, why=why: Errors.E617.format(why=why, what=what),
                            {"node_id": allocation.node_id if allocation else None})
        for job_id in live - set(ledger):
            if (runner := find_training_runner(self.state.settings, job_id)) is not None:
                self.strays.append((job_id, runner))
        for orphan in remove_orphaned_reservations():
            logger.warning("gave back %s on node %s: its run died without removing it",
                           orphan.describe(), ", ".join(orphan.node_ids) or "none")
        if lost:
            self.state.kick.set()
        return {job.id for job in lost}

    def end_strays(self) -> None:
        """End the runners the watchdog found holding no job of this scheduler's; called with the lock let go."""
        strays, self.strays = self.strays, []
        for job_id, runner in strays:
            logger.warning("ending the runner of training %s: this scheduler does not hold that job", job_id)
            self.runs.end(job_id, Allocation("", Resources(), runner=runner), abort=True)

    def lost_nodes(self, alive: set[str]) -> None:
        """Runs on a node that left the cluster go back to the queue while their retry budget lasts, else fail."""
        with self.state.lock:
            ledger = self.state.ledger.trainings
            lost = {job_id: a for job_id, a in ledger.items() if a.node_id not in alive}
            for job_id in lost:
                del ledger[job_id]
        for job_id, allocation in lost.items():
            self.runs.end(job_id, allocation)  # its runner waits for a worker that cannot come back there
            requeue_or_fail(self.state.sessions, job_id, self.state.settings.training.max_failures,
                            lambda what, node=allocation.node_id: Errors.E613.format(node=node, what=what),
                            {"node_id": allocation.node_id})
        if lost:
            self.state.kick.set()
