"""Training runs, as the scheduler sees them: a pass's decisions written, runs launched on their runner actors,
their progress recorded, their ends taken out of the ledger, and runs cancelled or taken down."""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from annoray.platform.errors import Errors, describe
from annoray.platform.lifecycle import PENDING, JobStatus
from annoray.platform.models.training_jobs import cancel_job, fail_job, log_line, preempt_job, record_epoch, requeue_or_fail
from annoray.platform.resources import Resources
from annoray.platform.store.repositories import TRAINING, LicenseRepository, TrainingJobRepository, TrainingLogRepository
from annoray.platform.store.tables import TrainingJob
from annoray.scheduler.ledger import Allocation, SchedulerState, ray_nodes
from annoray.scheduler.placement import Outcome, Pending, Placement
from annoray.scheduler.runner import innermost, job_of_run
from annoray.trainers.log import epoch_text

logger = logging.getLogger(__name__)


class PendingTrainings:
    """The trainings waiting to start, oldest first, kept between passes so that a pass reads and orders what
    changed, not the whole queue.

    Read whole when the scheduler starts; then only the jobs queued since (those of an id above the highest seen,
    less ``LATE`` ids, for a transaction that took an id before another and committed after it) and the trainings
    that stopped running, which may be queued again among the old ones (a lost node, a failure within the budget).
    Every ``CHECK_SECONDS`` the ids still pending are read (ids only), to forget jobs that left the queue without
    this scheduler (a project deleted, a cancel while it was down).
    """

    CHECK_SECONDS = 5.0
    LATE = 100

    def __init__(self) -> None:
        self.jobs: dict[int, TrainingJob] = {}
        self.since: dict[int, datetime] = {}  # when each joined the queue: its creation, or when it was queued again
        self.order: list[Pending] = []  # oldest first, by (created_at, id)
        self.keys: list[tuple[datetime, int]] = []  # the sort key of each of ``order``
        self.seen = 0
        self.running: set[int] = set()
        self.whole = True  # read the whole queue on the next refresh
        self.check_at = 0.0
        self.reordered = False  # a job left, or joined among the old ones, since the last refresh

    def refresh(self, session: Any, running: set[int]) -> list[int] | None:
        """Read what changed: the ids of the jobs that joined (all at the young end), or None when the queue was read
        whole, lost a job or gained one among the old ones since the last pass (its order is then to be compared)."""
        repo = TrainingJobRepository(session)
        stopped, self.running = self.running - running, set(running)
        pending = None
        if not self.whole and time.monotonic() >= self.check_at:
            pending = repo.ids_with_status(*PENDING)
            for gone in set(self.jobs) - pending:
                self.remove(gone)
            self.whole = any(i <= self.seen - self.LATE for i in pending - set(self.jobs) - stopped)  # none, unless a bug
            self.check_at = time.monotonic() + self.CHECK_SECONDS
        if self.whole:
            self.jobs, self.order, self.keys, self.reordered, self.since = {}, [], [], True, {}
            self.check_at = time.monotonic() + self.CHECK_SECONDS
            rows = repo.to_schedule(*PENDING)
        else:  # the ids first (those just read, if they were), then the rows of the new ones only
            recent = {i for i in pending if i > self.seen - self.LATE} if pending is not None else \
                repo.ids_with_status(*PENDING, after=max(0, self.seen - self.LATE))
            fresh = recent - set(self.jobs)
            rows = [*(repo.to_schedule(*PENDING, after=min(fresh) - 1) if fresh else []),
                    *(repo.to_schedule(*PENDING, ids=stopped) if stopped else [])]
        self.whole = False
        joined = [self._add(job) for job in rows if job.id not in self.jobs]
        reordered, self.reordered = self.reordered, False
        return None if reordered else joined

    def _add(self, job: TrainingJob) -> int:
        self.jobs[job.id] = job
        # a job that ran before (preempted, or its run lost) waits from now, not from its creation: aging must not put
        # a preempted job straight back ahead of the job that preempted it
        self.since[job.id] = datetime.now(UTC) if job.started_at is not None else job.created_at
        key = (job.created_at, job.id)
        at = bisect.bisect(self.keys, key)
        self.reordered |= at < len(self.keys)
        self.keys.insert(at, key)
        self.order.insert(at, Pending(TRAINING, job.id, Resources.of(job.resources), (job.project_id, job.kind), tuple(job.scopes)))
        self.seen = max(self.seen, job.id)
        return job.id

    def remove(self, job_id: int) -> None:
        job = self.jobs.pop(job_id, None)
        self.since.pop(job_id, None)
        if job is not None:
            at = bisect.bisect_left(self.keys, (job.created_at, job.id))
            del self.keys[at], self.order[at]
            self.reordered = True

    def recheck(self) -> None:
        """Read the ids still pending on the next refresh (a launch found its job gone)."""
        self.check_at = 0.0


class TrainingRuns:
    def __init__(self, state: SchedulerState):
        self.state = state
        self.pending = PendingTrainings()

    def record(self, decisions: list[tuple[Pending, Placement]]) -> None:
        """Write this pass's new waits (with what they wait for) and refusals in one transaction, each kind of change
        in one statement for all its jobs."""
        jobs = self.pending.jobs
        changes = [(jobs[want.holder_id], placement) for want, placement in decisions
                   if placement.outcome is Outcome.NEVER or (placement.outcome is Outcome.WAIT and (
                       jobs[want.holder_id].status is not JobStatus.WAITING or jobs[want.holder_id].reason != placement.reason))]
        if not changes:
            return
        with self.state.sessions.begin() as session:
            now = datetime.now(UTC)  # decisions are timed when written: a job may have been created after the pass began
            waits = [(job, placement) for job, placement in changes if placement.outcome is Outcome.WAIT]
            TrainingJobRepository(session).wait_all([(job.id, placement.reason or "", job.decided_at is None) for job, placement in waits], now)
            for job, placement in waits:  # as written: the next pass writes only what changes again
                job.status, job.reason, job.decided_at = JobStatus.WAITING, placement.reason, job.decided_at or now
            repo = TrainingJobRepository(session)
            for job, placement in changes:
                if placement.outcome is not Outcome.NEVER:
                    continue
                first = {"decided_at": now} if job.decided_at is None else {}
                if repo.transition(job.id, PENDING, JobStatus.FAILED, error=placement.reason, reason=None, finished_at=now, **first):
                    TrainingLogRepository(session).append(job.id, "failed", f"failed before it started: {placement.reason}",
                                                          {"error": placement.reason, "epoch": 0})
                self.pending.remove(job.id)

    def launch(self, job: TrainingJob, placement: Placement, demand: Resources, progress: Any) -> bool:
        """Start the job's runner (named, idle), then move the job to running with its seats and its launch line in
        one transaction, then start the run (``progress`` is the scheduler's own handle, which the run reports to).

        In that order a scheduler killed at any point loses nothing and launches nothing twice: before the commit it
        leaves an idle runner of a job still queued, which the next scheduler's watchdog ends; after it, a runner the
        next scheduler finds by name and reattaches to, starting the run if it had not started."""
        import ray

        from annoray.scheduler.factory import end_stale_runner, start_training_runner

        node_id = placement.node_id or ""
        if end_stale_runner(self.state.settings, job.id):  # an earlier launch's: gone by a later pass, never waited for
            self.pending.recheck()
            return False
        runner = start_training_runner(self.state.settings, job.id, progress, node_id)
        seats = "".join(f"; seat of {scope} from license {license_id}" for scope, license_id in placement.leases)
        with self.state.sessions.begin() as session:
            now = datetime.now(UTC)
            moved = TrainingJobRepository(session).transition(
                job.id, PENDING, JobStatus.RUNNING, reason=None, started_at=now, decided_at=job.decided_at or now,
                node_id=node_id,
            )
            launched = moved and LicenseRepository(session).lease_all(placement.leases, TRAINING, job.id, now)
            if launched:
                TrainingLogRepository(session).append(
                    job.id, "launch", f"placed by the scheduler on node {node_id} ({demand.describe()}){seats}",
                    {"node_id": node_id, **demand.as_dict(), "leases": [list(lease) for lease in placement.leases]})
            else:
                session.rollback()  # cancelled meanwhile, or a license went away: the next pass decides again
        if not launched:
            ray.kill(runner, no_restart=True)
            self.pending.recheck()
            return False
        self.pending.remove(job.id)
        self.state.ledger.trainings[job.id] = Allocation(node_id, demand, runner.done.remote(), placement.leases, runner)
        return True

    def cancel(self, job_id: int, username: str) -> str:
        """Stop a job wherever it is: a running one is aborted through its Train controller."""
        with self.state.lock:
            cancel_job(self.state.sessions, job_id, username)
            self.pending.remove(job_id)
            allocation = self.state.ledger.trainings.pop(job_id, None)
        if allocation is not None:
            self.end(job_id, allocation, abort=True)
        self.state.kick.set()
        with self.state.reads() as session:
            return TrainingJobRepository(session).get(job_id).status.value

    def preempt(self, chosen: list[tuple[Any, Any]]) -> list[tuple[int, Allocation]]:
        """Under the lock: queue again the running trainings a pass chose to preempt (`admission.Preemption`s, each
        for the ticket it lets start), each with who preempted it and why in its log, and take them out of the ledger
        so the next pass counts their room free. Returns their runs, for `stop` once the lock is let go."""
        stopping = []
        for ticket, preemption in chosen:
            by = {"id": ticket.job.holder_id, "team": ticket.team, "priority": ticket.priority}
            if ticket.job.holder_kind != TRAINING:
                by["kind"] = ticket.job.holder_kind
            for victim in preemption.victims:
                if victim.holder_kind != TRAINING:
                    continue  # a server: `ServerDeployments.preempt`
                allocation = self.state.ledger.trainings.get(victim.holder_id)
                if allocation is None or not preempt_job(self.state.sessions, victim.holder_id, by, preemption.why):
                    continue  # it ended meanwhile: whoever ends it takes it out of the ledger
                del self.state.ledger.trainings[victim.holder_id]
                stopping.append((victim.holder_id, allocation))
            if ticket.job.holder_kind != TRAINING:  # a server preempting: its view says why it waited, not a log
                continue
            log_line(self.state.sessions, ticket.job.holder_id, "preempting",
                     "preempted " + ", ".join(f"{v.holder_kind} {v.holder_id} of team '{v.team}'" for v in preemption.victims)
                     + f" on node {preemption.node_id} "
                     + ("for its higher priority" if preemption.why == "priority" else "to reclaim its team's quota"),
                     {"victims": [v.holder_id for v in preemption.victims], "why": preemption.why,
                      "node_id": preemption.node_id})
        return stopping

    def stop(self, stopping: list[tuple[int, Allocation]]) -> None:
        """Abort the preempted runs (their last checkpoints stay for the resume); called with the lock let go."""
        for job_id, allocation in stopping:
            self.end(job_id, allocation, abort=True)
        if stopping:
            self.state.kick.set()

    def epoch(self, run: str, report: dict[str, Any]) -> None:
        """A training worker finished an epoch (called by Ray Train's controller; see `record_epoch`)."""
        record_epoch(self.state.sessions, job_of_run(run), report, epoch_text(report))

    def worker_failed(self, run: str, error: str, node_id: str | None = None) -> None:
        """A training worker died (or ran out of memory); Ray Train restarts it from the last checkpoint while the budget
        lasts. A training that raised ends its run at once instead (`ray_train.TrainingCrashed`).

        A worker that died with its node is not a failure of its own: the node's loss is, and the pass that sees
        the node gone counts it once (E613) and queues the run again. Nor is one whose run the scheduler already
        took down (a lost node seen first, a cancel), nor one of an earlier launch on another node (``node_id``: where
        the reporting launch placed its worker), whose report reached the scheduler after the job was launched again.
        """
        job_id = job_of_run(run)
        with self.state.lock:
            allocation = self.state.ledger.trainings.get(job_id)
        earlier = allocation is not None and node_id is not None and bool(allocation.node_id) and node_id != allocation.node_id
        if allocation is None or earlier or allocation.node_id not in {n["NodeID"] for n in ray_nodes()}:
            where = (f"of an earlier launch, on node {node_id}" if earlier else f"with its node {allocation.node_id}"
                     if allocation else "after its run was taken down")
            with self.state.sessions.begin() as session:
                TrainingLogRepository(session).append(job_id, "worker_lost", f"worker lost {where} ({error})")
            self.state.kick.set()
            return
        with self.state.sessions.begin() as session:
            job = TrainingJobRepository(session).get(job_id)
            job.attempts += 1
            epoch = (job.progress or {}).get("epoch", 0)
            TrainingLogRepository(session).append(
                job_id, "attempt",
                f"worker failed after epoch {epoch} ({error}); failure {job.attempts} of a budget of "
                f"{self.state.settings.training.max_failures} restarts, resuming from the last checkpoint if within it",
                {"error": error, "epoch": epoch, "failures": job.attempts})

    def ended(self, job_id: int, ref: Any) -> None:
        """A run ended: its job is ended or queued again by the runner, unless the runner itself died."""
        import ray
        from ray.exceptions import RayActorError

        with self.state.lock:
            allocation = self.state.ledger.trainings.get(job_id)
            if allocation is None or allocation.ref is not ref:
                return  # cancelled, lost or relaunched meanwhile: whoever took it out of the ledger handled it
            del self.state.ledger.trainings[job_id]
        try:
            ray.get(ref)
        except RayActorError as exc:  # the runner died with its run: a failure within the budget, like a lost node
            why = f"lost its runner ({describe(exc)})"
            self._record(lambda: requeue_or_fail(self.state.sessions, job_id, self.state.settings.training.max_failures,
                                                 lambda what: Errors.E617.format(why=why, what=what),
                                                 {"node_id": allocation.node_id}), job_id, allocation)
            self.state.kick.set()
        except Exception as exc:  # the runner already ended the job if it could; this catches the rest
            why = Errors.E609.format(why=f"the training process died: {describe(innermost(exc))}")
            self._record(lambda: fail_job(self.state.sessions, job_id, why), job_id, allocation)
        self.end(job_id, allocation)

    def _record(self, write: Callable[[], object], job_id: int, allocation: Allocation) -> None:
        """Write a run's end; when the database is away, the run goes back in the ledger and its end is handled again
        on the next tick."""
        try:
            write()
        except Exception:
            with self.state.lock:
                self.state.ledger.trainings.setdefault(job_id, allocation)
            raise

    def end(self, job_id: int, allocation: Allocation, *, abort: bool = False) -> None:
        """Take a run down: abort it through its Train controller first when asked (Ray Train then removes its
        placement group), then end its runner; a group a killed run leaves is swept by the next pass."""
        import ray

        if allocation.runner is None:
            return
        if abort:
            try:
                ray.get(allocation.runner.cancel.remote(), timeout=30)
            except Exception:  # the runner died meanwhile, or the abort hung: killing it is enough
                logger.warning("training %s did not abort cleanly; killing its runner", job_id)
        ray.kill(allocation.runner, no_restart=True)
