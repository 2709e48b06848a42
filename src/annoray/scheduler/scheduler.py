"""The scheduler: the one process that decides which training and which pre-annotation server runs where, and when."""

from __future__ import annotations

import logging
from collections import deque
from datetime import UTC, datetime
from typing import Any

from annoray.platform.access.licenses import seat_pool
from annoray.platform.lifecycle import JobStatus, ServerStatus
from annoray.platform.models.training_jobs import preempted_text
from annoray.platform.resources import Resources
from annoray.platform.settings import Settings
from annoray.platform.store.repositories import (
    SERVER, TRAINING, LicenseRepository, ServerRepository, TrainingJobRepository,
)
from annoray.scheduler.active_learning import queue_due_trainings
from annoray.scheduler.admission import Quotas
from annoray.scheduler.cluster_view import cluster_view
from annoray.scheduler.ledger import SchedulerState, ray_nodes
from annoray.scheduler.ocr_dispatch import OcrDispatch
from annoray.scheduler.placement import Node, Outcome, Pending, Placement, Planner, place, place_replicas
from annoray.scheduler.preannotation_dispatch import PreannotationDispatch
from annoray.scheduler.recovery import Recovery
from annoray.scheduler.serving import ServerDeployments, replica_of, undeploy
from annoray.scheduler.sharing import fair_decisions, read_sharing, shared
from annoray.scheduler.training_runs import TrainingRuns

logger = logging.getLogger(__name__)

TICK_SECONDS = 1.0


class Scheduler:
    """Allocates cluster resources and license seats to trainings and pre-annotation servers, queues what must wait,
    refuses what can never run.

    Guarantees:
    - The database is the only state that matters. A job is ``queued`` or ``waiting`` (with the
      reason) until this scheduler moves it to ``running`` with a conditional update, so no job
      starts twice; it ends ``succeeded``, ``failed`` (with the reason) or ``cancelled`` once.
    - Never over-commits: a training or server starts only on a node whose total, less what the ledger has
      allocated there, holds its whole bundle (a server: every replica it may scale to); it is pinned to that node.
    - License seats are leased in the transaction that moves a job or server to running (or deploying),
      re-counted there under the license's row lock, and returned in the transaction that moves it out; seats
      held by anything this scheduler does not run are returned on every pass. A request needing a scope no
      unexpired license grants is refused; one whose seats are all leased waits, oldest first.
    - Fair: trainings and servers are taken oldest first. When the oldest that fits the cluster must wait, the
      node it can soonest use is held for it, and younger ones only backfill other nodes, so a big job is never
      overtaken forever by small ones.
    - Shared by teams (`sharing`): once a team exists or a training has a priority, the queue goes by priority, then
      jobs within their team's quota before borrowers, then the team furthest below its share, then first come; no
      team holds beyond its quota and borrowing limit or its seats. A job left waiting for room preempts borrowing
      trainings of a lower priority, or of other teams (of no higher priority) when its team reclaims its quota: each
      is queued again (no failure counted) and aborted, to resume from its checkpoint; servers only by a setting.
    - One training per project and kind at a time; the next one waits for it.
    - Runs outlive the scheduler: each training's Ray Train run is owned by a detached runner actor named after
      its job, which the scheduler does not take down with it and creates before the job is ``running`` (so a
      scheduler killed mid-launch leaves either a stray runner of a queued job, which the watchdog ends, or a
      runner to reattach to: never a running job with none). A restarted scheduler reloads from the database
      and reattaches to every ``running`` job whose runner is alive, with its seats; it never launches a job whose
      run is still alive, so no job trains twice. Servers whose Serve app survived are reattached the same way.
    - Nothing stays ``running`` without a live run: every pass compares the running jobs with Ray's own view of
      their runners. A run that could not start (its worker group timed out waiting for resources), lost its
      Train controller or its runner, or whose node left the cluster counts one failure against the job's
      retry budget: the job is queued again, to resume from its last checkpoint, or fails with the reason beyond it.
    - The ledger and Ray agree: every allocation has a live runner or Serve app behind it, and every pass gives
      back to Ray (and logs) the placement groups that a run which died without cleaning up left behind. A
      cancelled run is aborted through its Train controller, which removes its own placement group.
    - Progress reports are idempotent: the same report delivered twice (Ray retries calls across a restart) is
      recorded once, and progress never moves back when reports arrive out of order.
    - Active learning: a project whose trigger is due gets one training of each kind once none of its
      trainings is queued or running; triggers meanwhile stay one pending follow-up (all in the database).
    - A running server whose project's config came to name other models is rebuilt in place with them;
      it keeps its resources and seats, and requests wait for a replica rather than fail.
    - Document pages are OCR'd once each, as Ray tasks spread over the cluster, a bounded number at once; a page
      whose task died is queued again within its tries (``documents.py``).

    Concurrency, chosen to keep Ray's and the database's blocking calls simple: a threaded actor. One loop thread
    runs the passes; API and Ray Train calls arrive on up to 64 actor threads; each Serve deploy runs on a thread
    of its own (Serve's calls block until the replicas are up). ``state.lock`` orders every change of the ledger;
    everything else is ordered by the database's conditional status updates.
    """

    def __init__(self, settings: Settings):
        import threading

        from ray.util.metrics import Counter, Gauge, Histogram

        from annoray.platform.store.db import create_db_engine, session_factory

        self.settings = settings
        self.engine = create_db_engine(settings.resolved_database_url)
        self.state = SchedulerState(settings, session_factory(self.engine, write=True), session_factory(self.engine))
        self.runs = TrainingRuns(self.state)
        self.servers = ServerDeployments(self.state)
        self.preannotations = PreannotationDispatch(self.state)
        self.ocr = OcrDispatch(self.state)
        self.recovery = Recovery(self.state, self.runs)
        self._scopes_seen: set[str] = set()
        self.planner = Planner()
        self.latest: dict[tuple[str, int], Placement] = {}  # the decision standing for each pending job and server
        self.waiting = 0  # how many of them wait
        self.order: list[tuple[str, int]] = []  # the queue in the order the last pass decided it: its positions
        self.team_usage: Quotas | None = None  # the teams' quotas and usage as the last pass left them
        self._servers_seen: set[int] = set()
        self.pass_seconds: deque[float] = deque(maxlen=1000)  # the last passes' durations
        self.metrics = {
            "pass": Histogram("annoray_scheduler_pass_seconds", description="How long a scheduling pass takes.",
                              boundaries=[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]),
            "queue": Gauge("annoray_scheduler_queue_length", description="Trainings and servers queued or waiting."),
            "running": Gauge("annoray_scheduler_running_jobs", description="Training jobs holding resources."),
            "cpus": Gauge("annoray_scheduler_allocated_cpus", description="CPUs the ledger has allocated."),
            "seats": Gauge("annoray_scheduler_seats_leased", description="License seats leased, per scope.",
                           tag_keys=("scope",)),
            "team_usage": Gauge("annoray_team_usage", description="What a team's work holds now, per resource "
                                "(cpus, memory_gb, gpus).", tag_keys=("team", "resource")),
            "team_quota": Gauge("annoray_team_quota", description="A team's nominal quota, per resource.",
                                tag_keys=("team", "resource")),
            "team_borrowed": Gauge("annoray_team_borrowed", description="What a team holds beyond its quota, per "
                                   "resource.", tag_keys=("team", "resource")),
            "team_waiting": Gauge("annoray_team_waiting", description="A team's trainings and servers waiting to start.",
                                  tag_keys=("team",)),
            "team_preemptions": Counter("annoray_team_preemptions_total", description="Trainings (and servers) of a "
                                        "team preempted for another job.", tag_keys=("team",)),
        }
        self._teams_seen: set[str] = set()
        self.waiting_by_team: dict[str, int] = {}
        self.node_types = [Resources.of(t) for t in settings.scheduler.autoscaler_node_types]
        if settings.scheduler.cluster_config:
            from annoray.scheduler.cluster_config import autoscaler_node_types

            self.node_types += autoscaler_node_types(settings.scheduler.cluster_config)
        self.recovery.reattach()
        with self.state.sessions.begin() as session:
            self.preannotations.requeue_after_restart(session)
            self.ocr.requeue_after_restart(session)
        self.servers.reattach()
        self.loop = threading.Thread(target=self._run, name="annoray-scheduler", daemon=True)
        self.loop.start()

    # --- calls from the API and from Ray Train ----------------------------------------------------------

    def ping(self) -> str:
        return "ok"

    def wake(self) -> None:
        """New jobs are queued: decide now rather than at the next tick."""
        self.state.kick.set()

    def tick(self) -> None:
        """One scheduling pass, oldest first over trainings and servers (also run every second by the scheduler's loop).

        It costs what changed, not the queue's length: the queue is kept in order between passes, the planner decides
        only the jobs that joined while nothing else changed, and only changed decisions are written. It reads in a
        read transaction, so a pass never holds SQLite's write lock while it reads.
        """
        import ray

        state, ledger, queue = self.state, self.state.ledger, self.runs.pending
        with state.lock:
            nodes = ledger.nodes()
            self._return_stray_seats()
            with state.reads() as session:
                running_jobs = list(TrainingJobRepository(session).to_schedule(JobStatus.RUNNING))
                joined = queue.refresh(session, {j.id for j in running_jobs})
                queued_servers = {s.id: s for s in ServerRepository(session).with_status(ServerStatus.QUEUED)}
                stale = self.servers.stale(session)
                seats = seat_pool(session, datetime.now(UTC))
                sharing = read_sharing(session)
                preemptible = (ServerRepository(session).with_status(ServerStatus.RUNNING)
                               if state.settings.scheduler.preempt_servers and sharing.quotas.teams else [])
                session.expunge_all()
            lost = self.recovery.watch(running_jobs)  # queued again or failed; the next pass, kicked, plans them
            running = {(j.project_id, j.kind): j.id for j in running_jobs if j.id not in lost}
            pending: list[Pending] = queue.order
            if queued_servers:  # few: merged into the queue by age
                servers = [((s.created_at, 0), Pending(SERVER, s.id, replica_of(s), None, tuple(s.scopes), s.max_replicas))
                           for s in queued_servers.values()]
                pending = [w for _, w in sorted([*zip(queue.keys, queue.order), *servers], key=lambda t: t[0])]
            appended = None
            if joined is not None and set(queued_servers) == self._servers_seen and all(
                    w.holder_kind == TRAINING for w in pending[len(pending) - len(joined):]):
                appended = len(joined)  # only trainings joined, at the young end
            self._servers_seen = set(queued_servers)
            preempt = []
            if shared(sharing, pending, queue.jobs):  # teams or priorities: the whole queue, in their order
                fair = fair_decisions(pending, queue.jobs, queued_servers, sharing, nodes, since=queue.since, running=running,
                                      running_jobs=[j for j in running_jobs if j.id not in lost],
                                      allocations=ledger.trainings, node_types=self.node_types, seats=seats,
                                      aging_s=self.state.settings.scheduler.aging_s, now=datetime.now(UTC),
                                      running_servers=preemptible, server_allocations=ledger.servers)
                decisions, preempt = fair.decisions, fair.preempt
                order = [(w.holder_kind, w.holder_id) for w, _ in decisions]
                self.planner.end = None  # first come, first served replans whole when it comes back
            else:
                decisions = self.planner.decide(pending, nodes, running=running, node_types=self.node_types, seats=seats,
                                                appended=appended)
                order = [(w.holder_kind, w.holder_id) for w in pending]
            started = {(w.holder_kind, w.holder_id) for w, p in decisions if p.outcome is Outcome.START}
            self.order = [key for key in order if key not in started]
            self.team_usage = sharing.quotas  # as the pass left them: the metrics' usage and borrowing per team
            self.runs.record([(w, p) for w, p in decisions if w.holder_kind == TRAINING])
            self.servers.record(queued_servers, [(w, p) for w, p in decisions if w.holder_kind == SERVER])
            for want, placement in decisions:
                if placement.outcome is Outcome.START and want.holder_kind == TRAINING:
                    self.runs.launch(queue.jobs[want.holder_id], placement, want.demand, ray.get_runtime_context().current_actor)
                elif placement.outcome is Outcome.START:
                    self.servers.deploy(queued_servers[want.holder_id], placement)
            stopping, undeploying = self._preempt(preempt)
            for server_id in stale:
                self.servers.redeploy(server_id)
            self.preannotations.dispatch()
            self.ocr.dispatch()
            waits = sum(1 for _, p in decisions if p.outcome is Outcome.WAIT)
            if len(decisions) == len(pending):  # the whole queue was decided: these are the standing decisions
                self.latest, self.waiting = {}, 0
            self.latest.update({(w.holder_kind, w.holder_id): p for w, p in decisions})
            self.waiting += waits
            project = {(w.holder_kind, w.holder_id): (queue.jobs[w.holder_id] if w.holder_kind == TRAINING
                                                      else queued_servers[w.holder_id]).project_id for w in pending}
            self.waiting_by_team = {}
            for key, placement in self.latest.items():
                if placement.outcome is Outcome.WAIT and key in project:
                    team = sharing.team(project[key])
                    self.waiting_by_team[team] = self.waiting_by_team.get(team, 0) + 1
            if self.node_types and decisions:  # all the queue's asks: each call replaces the last
                wanted = {(w.holder_kind, w.holder_id): [w.demand] * max(1, w.replicas) for w in pending}  # a server: each replica
                asks = [bundle for k, p in self.latest.items() if p.scale_up and k in wanted for bundle in wanted[k]]
                if asks:
                    from ray.autoscaler.sdk import request_resources

                    request_resources(bundles=[d.to_ray() for d in asks])
            self._measure()
        self.recovery.end_strays()  # Ray's slow calls, with the lock let go
        self.runs.stop(stopping)
        for server_id in undeploying:
            undeploy(server_id)

    def _preempt(self, preempt: list[tuple[Any, Any]]) -> tuple[list[tuple[int, Any]], list[int]]:
        """Under the lock: queue again the trainings and servers (only with ``scheduler.preempt_servers``) a pass chose to
        preempt; returns the runs to stop and the servers to undeploy once the lock is let go."""
        stopping, undeploying = self.runs.preempt(preempt), []
        stopped = {job_id for job_id, _ in stopping}
        for ticket, preemption in preempt:
            for victim in preemption.victims:
                if victim.holder_kind == TRAINING and victim.holder_id in stopped:
                    self.metrics["team_preemptions"].inc(tags={"team": victim.team})
            for victim in preemption.victims:
                if victim.holder_kind != SERVER:
                    continue
                by = {"kind": ticket.job.holder_kind, "id": ticket.job.holder_id, "team": ticket.team, "priority": ticket.priority}
                text = preempted_text(by, preemption.why) + ": queued to deploy again"
                if self.servers.preempt(victim.holder_id, text, self.preannotations) is not None:
                    undeploying.append(victim.holder_id)
                    self.metrics["team_preemptions"].inc(tags={"team": victim.team})
        return stopping, undeploying

    def _return_stray_seats(self) -> None:
        """Return the seats of trainings and servers this scheduler does not run (they ended without returning them);
        read first, so a pass takes the write lock only when there is something to return."""
        with self.state.reads() as session:
            licenses = LicenseRepository(session)
            stray = (set(licenses.seats_by_holder(TRAINING)) - set(self.state.ledger.trainings)
                     or set(licenses.seats_by_holder(SERVER)) - set(self.state.ledger.servers))
        if stray:
            with self.state.sessions.begin() as session:
                LicenseRepository(session).release_all_but(TRAINING, list(self.state.ledger.trainings))
                LicenseRepository(session).release_all_but(SERVER, list(self.state.ledger.servers))

    def never_reason(self, resources: dict[str, float], replicas: int = 0) -> str | None:
        """Why a job of this size (a server: ``replicas`` of it, spread as they fit) can never run on this cluster
        (None when it can, now or later).

        Takes no lock: it depends on node totals only, and the API may hold a database lock while asking.
        """
        from annoray.scheduler.ledger import ray_nodes

        nodes = [Node(n["NodeID"], Resources.of_ray(n["Resources"])) for n in ray_nodes()]
        placement = (place_replicas(Resources.of(resources), replicas, nodes, node_types=self.node_types) if replicas
                     else place(Resources.of(resources), nodes, node_types=self.node_types))
        return placement.reason if placement.outcome is Outcome.NEVER else None

    def cancel(self, job_id: int, username: str) -> str:
        """Stop a training wherever it is; a running one is aborted through its Train controller."""
        return self.runs.cancel(job_id, username)

    def epoch(self, run: str, report: dict[str, Any]) -> None:
        """A training worker finished an epoch (called by Ray Train's controller)."""
        self.runs.epoch(run, report)

    def worker_failed(self, run: str, error: str, node_id: str | None = None) -> None:
        """A training worker died or raised; Ray Train restarts it from the last checkpoint while the budget lasts."""
        self.runs.worker_failed(run, error, node_id)

    def delete_server(self, server_id: int) -> None:
        """Stop the server's pre-annotation jobs, delete its Serve app, return its resources and seats, forget it."""
        with self.state.lock:
            self.state.ledger.servers.pop(server_id, None)
            with self.state.sessions.begin() as session:
                self.preannotations.fail_for_server(session, server_id)
                ServerRepository(session).delete(server_id)
        undeploy(server_id)
        self.state.kick.set()

    # --- views --------------------------------------------------------------------------------------------

    def servers_view(self) -> dict[int, dict[str, Any]]:
        with self.state.lock:
            return {server_id: a.view() for server_id, a in self.state.ledger.servers.items()}

    def ledger_view(self) -> dict[int, dict[str, Any]]:
        with self.state.lock:
            return {job_id: a.view() for job_id, a in self.state.ledger.trainings.items()}

    def cluster_view(self) -> dict[str, Any]:
        """Nodes with free/total resources as the ledger sees them, running trainings and servers with their seats,
        the queue with reasons, the licenses' seats, and how long the scheduler's last passes took."""
        times = sorted(self.pass_seconds)

        def ms(q: float) -> float | None:
            return round(times[min(len(times) - 1, int(q * len(times)))] * 1000, 1) if times else None

        passes = {"full": self.planner.full_passes, "incremental": self.planner.incremental_passes,
                  "last": len(times), "p50_ms": ms(0.5), "p99_ms": ms(0.99), "max_ms": ms(1.0)}
        with self.state.lock:
            order, decided, quotas = list(self.order), dict(self.latest), self.team_usage
        return cluster_view(self.state, order, decided, quotas) | {"passes": passes}

    # --- inside ---------------------------------------------------------------------------------------

    def _run(self) -> None:
        """Tick every second or when kicked; take out of the ledger the runs and pre-annotation jobs that ended."""
        import time

        import ray

        while True:  # the loop lives as long as the actor
            with self.state.lock:
                runs = {a.ref: job_id for job_id, a in self.state.ledger.trainings.items()}
                pre = {ref: job_id for job_id, ref in self.preannotations.running.items()}
                ocr = {ref: page_id for page_id, ref in self.ocr.running.items()}
            for refs, ended in ((runs, self.runs.ended), (pre, self.preannotations.ended), (ocr, self.ocr.ended)):
                if refs:
                    ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0)
                    for ref in ready:
                        try:
                            ended(refs[ref], ref)
                        except Exception:  # the database is away: the loop lives on, and the end is handled again
                            logger.exception("could not record the end of %s", refs[ref])
            try:
                queue_due_trainings(self.state, self.never_reason)
                alive = {n["NodeID"] for n in ray_nodes()}
                self.recovery.lost_nodes(alive)
                self.servers.lost_nodes(alive, self.preannotations)
                began = time.perf_counter()
                self.tick()
                self.pass_seconds.append(time.perf_counter() - began)
                self.metrics["pass"].observe(self.pass_seconds[-1])
            except Exception:  # a failed pass is retried on the next tick; the database is unchanged
                logger.exception("scheduling pass failed")
            self.state.kick.wait(TICK_SECONDS)
            self.state.kick.clear()

    def _measure(self) -> None:
        ledger = self.state.ledger
        self.metrics["queue"].set(self.waiting)
        self.metrics["running"].set(len(ledger.trainings))
        self.metrics["cpus"].set(sum(a.resources.cpus for a in ledger.trainings.values()))
        leased = ledger.seats_by_scope()
        for scope in {*leased, *self._scopes_seen}:
            self.metrics["seats"].set(leased.get(scope, 0), tags={"scope": scope})
        self._scopes_seen |= set(leased)
        quotas = self.team_usage
        if quotas is None or not quotas.teams:  # no team: usage is not read, every job is the default team's
            return
        teams = {*quotas.teams, *quotas.usage, *self.waiting_by_team, *self._teams_seen}
        for team in teams:
            for metric, value in (("team_usage", quotas.used(team)), ("team_quota", quotas.team(team).quota),
                                  ("team_borrowed", quotas.borrowed(team))):
                for resource, amount in value.as_dict().items():
                    self.metrics[metric].set(amount, tags={"team": team, "resource": resource})
            self.metrics["team_waiting"].set(self.waiting_by_team.get(team, 0), tags={"team": team})
        self._teams_seen |= teams
