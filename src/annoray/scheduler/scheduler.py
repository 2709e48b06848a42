"""The scheduler: the one process that decides which training job runs where, and when."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from annoray.platform.errors import AnnorayError, Errors
from annoray.platform.licenses import license_views, seat_pool
from annoray.platform.models import JobStatus, PreannotationServer, ServerStatus, TrainingJob
from annoray.platform.repositories import (
    SERVER, TRAINING, LicenseRepository, ModelRepository, PreannotationJobRepository, ProjectRepository, RuleRepository,
    ServerRepository, TrainingJobRepository, TrainingLogRepository,
)
from annoray.platform.settings import ResourceSpec, Settings
from annoray.platform.training import TrainingParams
from annoray.scheduler.placement import Node, Outcome, Pending, Placement, Resources, place, plan
from annoray.scheduler.preannotation import run_preannotation_job
from annoray.scheduler.runner import cancel_job, describe, fail_job, job_of_run, log_line, requeue_or_fail
from annoray.scheduler.servers import server_demand
from annoray.scheduler.trainings import TrainingRequest, request_trainings
from annoray.trainers.log import epoch_text

logger = logging.getLogger(__name__)

TICK_SECONDS = 1.0
PENDING = (JobStatus.QUEUED, JobStatus.WAITING)


@dataclass
class Allocation:
    """What the ledger holds for one running job: where it runs, what it holds, and the run behind it: its runner
    actor and the reference that resolves when the run ends."""

    node_id: str
    resources: Resources
    ref: Any
    leases: tuple[tuple[str, int], ...] = ()  # (scope, license id)
    runner: Any = None


def ray_nodes() -> list[dict[str, Any]]:
    import ray

    return [n for n in ray.nodes() if n["Alive"]]


class Scheduler:
    """Allocates cluster resources and license seats to training jobs, queues what must wait, refuses what can never run.

    Guarantees:
    - The database is the only state that matters. A job is ``queued`` or ``waiting`` (with the
      reason) until this scheduler moves it to ``running`` with a conditional update, so no job
      starts twice; it ends ``succeeded``, ``failed`` (with the reason) or ``cancelled`` once.
    - Never over-commits: a job starts only on a node whose total, less what the ledger has
      allocated there, holds its whole worker bundle; its Ray Train worker is pinned to that node.
    - License seats are leased in the transaction that moves a job to ``running``, re-counted there
      under the license's row lock, and returned in the transaction that moves it out; seats held
      by anything this scheduler does not run are returned on every pass. A job needing a scope
      no unexpired license grants is refused; one whose seats are all leased waits, oldest first.
    - Fair: jobs are taken oldest first. When the oldest job that fits the cluster must wait, the
      node it can soonest use is held for it, and younger jobs only backfill other nodes, so a big
      job is never overtaken forever by small ones.
    - One training per project and kind at a time; the next one waits for it.
    - Runs outlive the scheduler: each training's Ray Train run is owned by a detached runner actor named after
      its job, which the scheduler did not start and does not take down with it. A restarted scheduler reloads
      from the database and reattaches to every ``running`` job whose runner is alive, with its seats; it never
      launches a job whose run is still alive, so no job trains twice.
    - Nothing stays ``running`` without a live run: every pass compares the running jobs with Ray's own view of
      their runners. A run that could not start (its worker group timed out waiting for resources), lost its
      Train controller or its runner, or whose node left the cluster counts one failure against the job's
      retry budget: the job is queued again, to resume from its last checkpoint, or fails with the reason beyond it.
    - The ledger and Ray agree: every allocation has a live runner behind it, and every pass gives back to Ray
      (and logs) the placement groups that a run which died without cleaning up left behind (see `reservations`).
      A cancelled run is aborted through its Train controller, which removes its own placement group.
    - Progress reports are idempotent: the same report delivered twice (Ray retries calls across a restart) is
      recorded once, and progress never moves back when reports arrive out of order.
    - Active learning: a project whose trigger is due gets one training of each kind once none of its
      trainings is queued or running; triggers meanwhile stay one pending follow-up (all in the database).
    - A running server whose project's config came to name other models is rebuilt in place with them;
      it keeps its resources and seats, and requests wait for a replica rather than fail.
    """

    def __init__(self, settings: Settings):
        from annoray.platform.db import create_db_engine, session_factory

        self.settings = settings
        self.engine = create_db_engine(settings.resolved_database_url)
        self.sessions = session_factory(self.engine, write=True)
        self.reads = session_factory(self.engine)
        self.ledger: dict[int, Allocation] = {}  # training job id -> allocation
        self.servers: dict[int, Allocation] = {}  # server id -> allocation (every replica it may scale to, on one node)
        self.preannotations: dict[int, Any] = {}  # pre-annotation job id -> its runner task
        self.redeploying: set[int] = set()  # servers whose Serve app is being rebuilt with new models
        self._scopes_seen: set[str] = set()
        self.lock = threading.RLock()
        self.kick = threading.Event()
        from ray.util.metrics import Gauge

        self.metrics = {
            "queue": Gauge("annoray_scheduler_queue_length", description="Training jobs queued or waiting."),
            "running": Gauge("annoray_scheduler_running_jobs", description="Training jobs holding resources."),
            "cpus": Gauge("annoray_scheduler_allocated_cpus", description="CPUs the ledger has allocated."),
            "seats": Gauge("annoray_scheduler_seats_leased", description="License seats leased, per scope.",
                           tag_keys=("scope",)),
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
        """One scheduling pass, oldest first over trainings and servers (also run every second by the scheduler's loop)."""
        with self.lock:
            nodes = self._nodes()
            now = datetime.now(UTC)
            with self.sessions.begin() as session:
                LicenseRepository(session).release_all_but(TRAINING, list(self.ledger))
                LicenseRepository(session).release_all_but(SERVER, list(self.servers))
                jobs = list(TrainingJobRepository(session).to_schedule(JobStatus.RUNNING, *PENDING))
                queued_servers = list(ServerRepository(session).with_status(ServerStatus.QUEUED))
                stale = [(s.id, s.resources.get("node_id", "")) for s in ServerRepository(session).with_status(ServerStatus.RUNNING)
                         if s.models != s.deployed_models and s.id in self.servers and s.id not in self.redeploying]
                seats = seat_pool(session, now)
                session.expunge_all()
            lost = self._watch([j for j in jobs if j.status is JobStatus.RUNNING])
            jobs = [j for j in jobs if j.id not in lost]  # queued again or failed; the next pass, kicked, plans them
            running = {(j.project_id, j.kind): j.id for j in jobs if j.status is JobStatus.RUNNING}
            pending = {j.id: j for j in jobs if j.status in PENDING}
            servers = {s.id: s for s in queued_servers}
            wants = sorted(
                [(j.created_at, Pending(j.id, (j.project_id, j.kind), Resources.of(j.resources), tuple(j.scopes)))
                 for j in pending.values()]
                + [(s.created_at, Pending(-s.id, (-s.id, "server"), self._server_demand(s), tuple(s.scopes))) for s in servers.values()],
                key=lambda pair: pair[0])
            decisions = plan([w for _, w in wants], nodes, running=running, node_types=self.node_types, seats=seats)
            trainings = [(w, p) for w, p in decisions if w.job_id > 0]
            self._record(pending, trainings)
            self._record_servers(servers, [(w, p) for w, p in decisions if w.job_id < 0])
            for want, placement in decisions:
                if placement.outcome is Outcome.START and want.job_id > 0:
                    self._launch(pending[want.job_id], placement, want.demand)
                elif placement.outcome is Outcome.START:
                    self._deploy(servers[-want.job_id], placement, want.demand)
            for server_id, node_id in stale:
                self._redeploy(server_id, node_id)
            self._preannotate()
            asks = [want.demand for want, placement in decisions if placement.scale_up]
            if self.node_types and asks:
                from ray.autoscaler.sdk import request_resources

                request_resources(bundles=[{k: v for k, v in {"CPU": d.cpus, "memory": d.memory, "GPU": d.gpus}.items() if v}
                                           for d in asks])
            self.metrics["queue"].set(sum(1 for _, p in decisions if p.outcome is Outcome.WAIT))
            self.metrics["running"].set(len(self.ledger))
            self.metrics["cpus"].set(sum(a.resources.cpus for a in self.ledger.values()))
            leased: dict[str, int] = {}
            for allocation in [*self.ledger.values(), *self.servers.values()]:
                for scope, _ in allocation.leases:
                    leased[scope] = leased.get(scope, 0) + 1
            for scope in {*leased, *self._scopes_seen}:
                self.metrics["seats"].set(leased.get(scope, 0), tags={"scope": scope})
            self._scopes_seen |= set(leased)

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
            self._end_run(job_id, allocation, abort=True)
        self.kick.set()
        with self.sessions() as session:
            return TrainingJobRepository(session).get(job_id).status.value

    def epoch(self, run: str, report: dict[str, Any]) -> None:
        """A training worker finished an epoch (called by Ray Train's controller)."""
        job_id = job_of_run(run)
        progress = {"epoch": report["epoch"], "epochs": report["epochs"],
                    "percent": round(100.0 * report["epoch"] / max(report["epochs"], 1), 1),
                    "loss": report["loss"], "metrics": report.get("metrics", {})}
        report = json.loads(json.dumps(report))  # as the log stores it
        with self.sessions.begin() as session:
            jobs, log = TrainingJobRepository(session), TrainingLogRepository(session)
            if any(line.data == report for line in log.lines(job_id, event="epoch")):
                return  # the same report again: Ray delivers a call at least once across our restarts
            if report["epoch"] >= (jobs.get(job_id).progress or {}).get("epoch", 0):  # reports may arrive out of order
                jobs.set(job_id, progress=progress)
            log.append(job_id, "epoch", epoch_text(report), report)

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

    def servers_view(self) -> dict[int, dict[str, Any]]:
        with self.lock:
            return {sid: {"node_id": a.node_id, **a.resources.as_dict(), "leases": [list(lease) for lease in a.leases]}
                    for sid, a in self.servers.items()}

    def ledger_view(self) -> dict[int, dict[str, Any]]:
        with self.lock:
            return {job_id: {"node_id": a.node_id, **a.resources.as_dict(), "leases": [list(lease) for lease in a.leases]}
                    for job_id, a in self.ledger.items()}

    def cluster_view(self) -> dict[str, Any]:
        """Nodes with free/total resources as the ledger sees them, running trainings with their seats, the queue
        with reasons, and the licenses' seats."""
        with self.lock:
            nodes = self._nodes()
            ledger = dict(self.ledger)
            server_ledger = dict(self.servers)
        with self.sessions() as session:
            jobs = TrainingJobRepository(session).with_status(JobStatus.RUNNING, *PENDING)
            running = [{"id": j.id, "project_id": j.project_id, "kind": j.kind, "node_id": ledger[j.id].node_id,
                        "resources": ledger[j.id].resources.as_dict(),
                        "leases": [{"scope": scope, "license_id": license_id} for scope, license_id in ledger[j.id].leases]}
                       for j in jobs if j.id in ledger]
            queue = [{"id": j.id, "project_id": j.project_id, "kind": j.kind, "status": j.status.value,
                      "reason": j.reason, "resources": j.resources, "scopes": j.scopes} for j in jobs if j.status in PENDING]
            licenses = [{k: v[k] for k in ("id", "key", "scopes", "seats", "leased", "expires_at", "expired")}
                        for v in license_views(session, datetime.now(UTC))]
            servers = [{"id": sv.id, "name": sv.name, "status": sv.status.value, "reason": sv.reason, "models": sv.models,
                        "node_id": sv.resources.get("node_id"), "replicas": sv.replicas, "max_replicas": sv.max_replicas,
                        "resources": self._server_demand(sv).as_dict(),
                        "leases": [{"scope": scope, "license_id": lid} for scope, lid in (server_ledger[sv.id].leases if sv.id in server_ledger else ())]}
                       for sv in ServerRepository(session).all()]
        return {
            "nodes": [{"node_id": n.node_id, "total": n.total.as_dict(), "free": n.free.as_dict()} for n in nodes.values()],
            "trainings": running,
            "servers": servers,
            "queue": queue,
            "licenses": licenses,
        }

    # --- inside ---------------------------------------------------------------------------------------

    def _nodes(self) -> dict[str, Node]:
        nodes = {n["NodeID"]: Node(n["NodeID"], Resources.of_ray(n["Resources"])) for n in ray_nodes()}
        for allocation in [*self.ledger.values(), *self.servers.values()]:
            if allocation.node_id in nodes:
                nodes[allocation.node_id].used += allocation.resources
        return nodes

    def _record(self, pending: dict[int, TrainingJob], decisions: list[tuple[Pending, Placement]]) -> None:
        """Write this pass's new waits (with what they wait for) and refusals, in one transaction."""
        changes = [(pending[want.job_id], placement) for want, placement in decisions
                   if placement.outcome is Outcome.NEVER or (placement.outcome is Outcome.WAIT and (
                       pending[want.job_id].status is not JobStatus.WAITING or pending[want.job_id].reason != placement.reason))]
        if not changes:
            return
        with self.sessions.begin() as session:
            now = datetime.now(UTC)  # decisions are timed when written: a job may have been created after the pass began
            repo = TrainingJobRepository(session)
            for job, placement in changes:
                first = {"decided_at": now} if job.decided_at is None else {}
                if placement.outcome is Outcome.WAIT:
                    repo.transition(job.id, PENDING, JobStatus.WAITING, reason=placement.reason, **first)
                elif repo.transition(job.id, PENDING, JobStatus.FAILED, error=placement.reason, reason=None, finished_at=now, **first):
                    TrainingLogRepository(session).append(job.id, "failed", f"failed before it started: {placement.reason}",
                                                          {"error": placement.reason, "epoch": 0})

    def _launch(self, job: TrainingJob, placement: Placement, demand: Resources) -> bool:
        """Move the job to running with its seats in one transaction, then start its runner pinned to the node."""
        import ray

        node_id = placement.node_id or ""
        with self.sessions.begin() as session:
            now = datetime.now(UTC)
            moved = TrainingJobRepository(session).transition(
                job.id, PENDING, JobStatus.RUNNING, reason=None, started_at=now, decided_at=job.decided_at or now,
                resources=job.resources | {"node_id": node_id},
            )
            if not moved or not LicenseRepository(session).lease_all(placement.leases, TRAINING, job.id, now):
                session.rollback()  # cancelled meanwhile, or a license went away: the next pass decides again
                return False
        from annoray.scheduler.factory import start_training_runner

        runner = start_training_runner(self.settings, job.id, ray.get_runtime_context().current_actor, node_id)
        self.ledger[job.id] = Allocation(node_id, demand, runner.done.remote(), placement.leases, runner)
        seats = "".join(f"; seat of {scope} from license {license_id}" for scope, license_id in placement.leases)
        log_line(self.sessions, job.id, "launch", f"placed by the scheduler on node {node_id} ({demand.describe()}){seats}",
                 {"node_id": node_id, **demand.as_dict(), "leases": [list(lease) for lease in placement.leases]})
        return True

    # --- servers and pre-annotation -------------------------------------------------------------------------

    @staticmethod
    def _server_demand(server: PreannotationServer) -> Resources:
        spec = ResourceSpec(**{k: v for k, v in server.resources.items() if k != "node_id"})
        return Resources.of(server_demand(spec, server.max_replicas))

    def _record_servers(self, servers: dict[int, PreannotationServer], decisions: list[tuple[Pending, Placement]]) -> None:
        changes = [(servers[-w.job_id], p) for w, p in decisions if p.outcome is Outcome.NEVER
                   or (p.outcome is Outcome.WAIT and servers[-w.job_id].reason != p.reason)]
        if not changes:
            return
        with self.sessions.begin() as session:
            repo = ServerRepository(session)
            for server, placement in changes:
                if placement.outcome is Outcome.WAIT:
                    repo.transition(server.id, (ServerStatus.QUEUED,), ServerStatus.QUEUED, reason=placement.reason)
                else:
                    repo.transition(server.id, (ServerStatus.QUEUED,), ServerStatus.FAILED, reason=None,
                                    error=(placement.reason or "").replace("this training", "this server"))

    def _deploy(self, server: PreannotationServer, placement: Placement, demand: Resources) -> None:
        """Move the server to deploying with its seats in one transaction, then create its Serve app beside the loop."""
        node_id = placement.node_id or ""
        with self.sessions.begin() as session:
            moved = ServerRepository(session).transition(
                server.id, (ServerStatus.QUEUED,), ServerStatus.DEPLOYING, reason=f"deploying on node {node_id}",
                resources=server.resources | {"node_id": node_id})
            if not moved or not LicenseRepository(session).lease_all(placement.leases, SERVER, server.id, datetime.now(UTC)):
                session.rollback()
                return
        self.servers[server.id] = Allocation(node_id, demand, None, placement.leases)
        threading.Thread(target=self._serve, args=(server.id, node_id), name=f"deploy-server-{server.id}", daemon=True).start()

    def _redeploy(self, server_id: int, node_id: str) -> None:
        """Rebuild a running server's Serve app with the models it should now serve (after a deploy rewrote its
        project's config). Serve replaces the replicas in place; requests wait for a replica, none is dropped."""
        self.redeploying.add(server_id)
        with self.sessions.begin() as session:
            ServerRepository(session).transition(server_id, (ServerStatus.RUNNING,), ServerStatus.RUNNING,
                                                 reason="redeploying with the models its project's labeling config names now")
        threading.Thread(target=self._serve, args=(server_id, node_id, ServerStatus.RUNNING),
                         name=f"redeploy-server-{server_id}", daemon=True).start()

    def _serve(self, server_id: int, node_id: str, frm: ServerStatus = ServerStatus.DEPLOYING) -> None:
        from ray import serve

        from annoray.serve_apps.server import app_name, build

        try:
            with self.sessions() as session:
                server = ServerRepository(session).get(server_id)
                catalog = ModelRepository(session)
                models = [{"name": m.name, "kind": m.kind, "labels": list(m.labels)}
                          for name in server.models if (m := catalog.by_name(name)) is not None]
                rules = [{"name": r.name, "label": r.label, "kind": r.kind, "pattern": r.pattern, "terms": list(r.terms)}
                         for r in RuleRepository(session).by_names(server.rules)]
                spec = ResourceSpec(**{k: v for k, v in server.resources.items() if k != "node_id"})
                replicas, max_replicas, language, names = server.replicas, server.max_replicas, server.language, list(server.models)
            serve.start(proxy_location="Disabled")
            serve.run(build(server_id, store=self.settings.resolved_model_store, models=models, rules=rules, language=language,
                            replicas=replicas, max_replicas=max_replicas, cpus=spec.cpus, memory=spec.memory_bytes,
                            gpus=spec.gpus, node_id=node_id), name=app_name(server_id), route_prefix=None)
        except Exception as exc:  # the server ends failed with the reason; its resources and seats come back
            logger.exception("deploying server %s failed", server_id)
            with self.lock:
                self.servers.pop(server_id, None)
                self.redeploying.discard(server_id)
            with self.sessions.begin() as session:
                ServerRepository(session).transition(server_id, (frm,), ServerStatus.FAILED, reason=None,
                                                     error=Errors.E813.format(why=f"{type(exc).__name__}: {str(exc)[:300]}"))
            self._undeploy(server_id)
            return
        with self.sessions.begin() as session:
            running = ServerRepository(session).transition(server_id, (frm,), ServerStatus.RUNNING, reason=None, deployed_models=names)
        with self.lock:
            self.redeploying.discard(server_id)
        if not running:  # deleted while it deployed
            self._undeploy(server_id)
        self.kick.set()

    @staticmethod
    def _undeploy(server_id: int) -> None:
        from ray import serve

        from annoray.serve_apps.server import app_name

        try:
            serve.delete(app_name(server_id))
        except Exception:  # nothing deployed under that name
            logger.debug("no Serve app for server %s", server_id)

    def delete_server(self, server_id: int) -> None:
        """Stop the server's pre-annotation jobs, delete its Serve app, return its resources and seats, forget it."""
        import ray

        with self.lock:
            self.servers.pop(server_id, None)
            with self.sessions.begin() as session:
                jobs = PreannotationJobRepository(session)
                for job in jobs.for_server(server_id, JobStatus.QUEUED, JobStatus.RUNNING):
                    jobs.transition(job.id, (JobStatus.QUEUED, JobStatus.RUNNING), JobStatus.FAILED, reason=None,
                                    error=Errors.E809, finished_at=datetime.now(UTC))
                    if (ref := self.preannotations.pop(job.id, None)) is not None:
                        ray.cancel(ref, force=True)
                ServerRepository(session).delete(server_id)
        self._undeploy(server_id)
        self.kick.set()

    def _preannotate(self) -> None:
        """Start queued pre-annotation jobs whose server runs; fail those whose server is gone."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        with self.sessions.begin() as session:
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
                    task = ray.remote(run_preannotation_job).options(
                        num_cpus=0, max_retries=0, name=f"preannotation-job-{job.id}",
                        scheduling_strategy=NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False))
                    self.preannotations[job.id] = task.remote(self.settings, job.id)

    def _recover(self) -> None:
        """Reattach to the runs the previous life launched that are still alive (with their seats); the watchdog's
        first pass queues again, within their budget, the running jobs whose run is gone."""
        from annoray.scheduler.factory import training_runners

        runners = training_runners(self.settings)
        with self.sessions.begin() as session:
            leases: dict[int, list[tuple[str, int]]] = {}
            for lease in LicenseRepository(session).active(holder_kind=TRAINING):
                leases.setdefault(lease.holder_id, []).append((lease.scope, lease.license_id))
            for job in TrainingJobRepository(session).with_status(JobStatus.RUNNING):
                if (runner := runners.get(job.id)) is None:
                    continue
                node_id = job.resources.get("node_id", "")
                self.ledger[job.id] = Allocation(node_id, Resources.of(job.resources), runner.done.remote(),
                                                 tuple(leases.get(job.id, ())), runner)
                TrainingLogRepository(session).append(
                    job.id, "restart", f"the scheduler restarted; reattached to the run on node {node_id}", {"node_id": node_id})
            LicenseRepository(session).release_all_but(TRAINING, list(self.ledger))
            jobs = PreannotationJobRepository(session)
            for job in jobs.with_status(JobStatus.RUNNING):  # its runner died with us; it resumes where it stopped
                jobs.transition(job.id, (JobStatus.RUNNING,), JobStatus.QUEUED, reason="scheduler restarted; resuming")
        self._reattach_servers()

    def _reattach_servers(self) -> None:
        """Servers whose Serve app survived our restart are ledgered again with their seats; the rest deploy again."""
        from ray import serve

        from annoray.serve_apps.server import app_name

        try:
            apps = {name: str(status.status) for name, status in serve.status().applications.items()}
        except Exception:  # no Serve controller: nothing survived
            apps = {}
        with self.sessions.begin() as session:
            repo, licenses = ServerRepository(session), LicenseRepository(session)
            leases: dict[int, list[tuple[str, int]]] = {}
            for lease in licenses.active(holder_kind=SERVER):
                leases.setdefault(lease.holder_id, []).append((lease.scope, lease.license_id))
            for server in repo.with_status(ServerStatus.DEPLOYING, ServerStatus.RUNNING):
                if server.status is ServerStatus.RUNNING and apps.get(app_name(server.id), "").endswith("RUNNING"):
                    self.servers[server.id] = Allocation(server.resources.get("node_id", ""), self._server_demand(server), None,
                                                         tuple(leases.get(server.id, ())))
                else:
                    repo.transition(server.id, (server.status,), ServerStatus.QUEUED, reason="scheduler restarted; deploying again")
                    self._undeploy(server.id)
            licenses.release_all_but(SERVER, list(self.servers))

    def _active_learning(self) -> None:
        """Queue the trainings active learning made due, each once none of its project's trainings is queued or
        running: triggers that arrive meanwhile stay one pending follow-up."""
        with self.reads() as session:
            due = [ProjectRepository(session).get(pid) for pid in ProjectRepository(session).active_learning_due()
                   if not TrainingJobRepository(session).busy(pid)]
            session.expunge_all()
        for project in due:
            last: dict[str, Any] = {"at": datetime.now(UTC).isoformat(), "jobs": []}
            # the data is checked through read sessions: the write lock is taken only to insert the jobs
            with self.sessions() as session:
                try:
                    jobs, warnings = request_trainings(
                        session, self.reads, self.settings, project, None, TrainingRequest(
                            source="active_learning", deploy=project.al_deploy, params=TrainingParams(**project.al_params)),
                        never=self.never_reason)
                    last |= {"jobs": [j.id for j in jobs], "warnings": warnings}
                except AnnorayError as exc:  # the data cannot train (yet): say why; the next trigger tries again
                    session.rollback()
                    last["error"] = Errors.E616.format(why="; ".join(e.message for e in exc.errors) or exc.detail)
                if ProjectRepository(session).acted_on_trigger(project.id, last):
                    session.commit()
                else:  # turned off meanwhile
                    session.rollback()
            self.kick.set()

    def _lost_nodes(self) -> None:
        """Runs on a node that left the cluster go back to the queue while their retry budget lasts, else fail."""
        alive = {n["NodeID"] for n in ray_nodes()}
        with self.lock:
            lost = {job_id: a for job_id, a in self.ledger.items() if a.node_id not in alive}
            for job_id in lost:
                del self.ledger[job_id]
        for job_id, allocation in lost.items():
            self._end_run(job_id, allocation)  # its runner waits for a worker that cannot come back there
            requeue_or_fail(self.sessions, job_id, self.settings.training.max_failures,
                            lambda what, node=allocation.node_id: Errors.E613.format(node=node, what=what),
                            {"node_id": allocation.node_id})
        if lost:
            self.kick.set()

    def _watch(self, running: list[TrainingJob]) -> set[int]:
        """The watchdog, under the lock at the start of a pass: a running job with no live runner in Ray's own view
        is queued again within its budget (or fails), a live runner whose job this scheduler does not hold is ended,
        and placement groups that dead runs left behind go back to Ray. Returns the ids of the jobs it took back."""
        from annoray.scheduler.factory import training_runners
        from annoray.scheduler.reservations import remove_orphaned_reservations

        live = training_runners(self.settings)
        lost = [job for job in running if job.id not in live]
        for job in lost:
            allocation = self.ledger.pop(job.id, None)
            why = "had no live run: its runner " + ("died" if allocation is not None else "never started")
            requeue_or_fail(self.sessions, job.id, self.settings.training.max_failures,
                            lambda what, why=why: Errors.E617.format(why=why, what=what), {"node_id": allocation and allocation.node_id})
        for job_id, runner in live.items():
            if job_id not in self.ledger:
                logger.warning("ending the runner of training %s: this scheduler does not hold that job", job_id)
                self._end_run(job_id, Allocation("", Resources(0, 0, 0), None, runner=runner), abort=True)
        for orphan in remove_orphaned_reservations():
            logger.warning("gave back %s on node %s: its run died without removing it",
                           orphan.describe(), ", ".join(orphan.node_ids) or "none")
        if lost:
            self.kick.set()
        return {job.id for job in lost}

    def _end_run(self, job_id: int, allocation: Allocation, *, abort: bool = False) -> None:
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

    def _run(self) -> None:
        """Tick every second or when kicked; release the ledger of jobs whose runner has ended."""
        import ray

        while True:  # the loop lives as long as the actor
            with self.lock:
                refs = {a.ref: job_id for job_id, a in self.ledger.items()}
                pre = {ref: job_id for job_id, ref in self.preannotations.items()}
            if refs:
                ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0)
                for ref in ready:
                    self._ended(refs[ref], ref)
            if pre:
                ready, _ = ray.wait(list(pre), num_returns=len(pre), timeout=0)
                for ref in ready:
                    self._preannotation_ended(pre[ref], ref)
            try:
                self._active_learning()
                self._lost_nodes()
                self.tick()
            except Exception:  # a failed pass is retried on the next tick; the database is unchanged
                logger.exception("scheduling pass failed")
            self.kick.wait(TICK_SECONDS)
            self.kick.clear()

    def _ended(self, job_id: int, ref: Any) -> None:
        """A run ended: its job is ended or queued again by the runner, unless the runner itself died."""
        import ray
        from ray.exceptions import RayActorError

        with self.lock:
            allocation = self.ledger.get(job_id)
            if allocation is None or allocation.ref is not ref:
                return  # cancelled, lost or relaunched meanwhile: whoever took it out of the ledger handled it
            del self.ledger[job_id]
        try:
            ray.get(ref)
        except RayActorError as exc:  # the runner died with its run: a failure within the budget, like a lost node
            requeue_or_fail(self.sessions, job_id, self.settings.training.max_failures,
                            lambda what: Errors.E617.format(why=f"lost its runner ({describe(exc)})", what=what),
                            {"node_id": allocation.node_id})
            self.kick.set()
        except Exception as exc:  # the runner already ended the job if it could; this catches the rest
            fail_job(self.sessions, job_id, Errors.E609.format(why=f"the training process died: {describe(exc)}"))
        self._end_run(job_id, allocation)

    def _preannotation_ended(self, job_id: int, ref: Any) -> None:
        import ray

        with self.lock:
            if self.preannotations.get(job_id) is ref:
                del self.preannotations[job_id]
        try:
            ray.get(ref)
        except Exception as exc:  # the runner ends its job itself when it can; this catches a runner that died
            with self.sessions.begin() as session:
                PreannotationJobRepository(session).transition(
                    job_id, (JobStatus.RUNNING,), JobStatus.FAILED, reason=None, finished_at=datetime.now(UTC),
                    error=f"the pre-annotation process died: {type(exc).__name__}: {str(exc)[:300]}")
