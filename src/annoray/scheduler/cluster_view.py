"""The cluster as the scheduler sees it: nodes with their free and total resources, running trainings and servers
with their seats, the queue in the order the last pass decided it (each job's position, priority, team, why it waits
and how often it was preempted), and the licenses' seats."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from annoray.platform.access.licenses import license_views
from annoray.platform.access.teams import DEFAULT_TEAM
from annoray.platform.lifecycle import PENDING, JobStatus
from annoray.platform.resources import Resources
from annoray.platform.store.repositories import ServerRepository, TeamRepository, TrainingJobRepository
from annoray.scheduler.admission import Quotas
from annoray.scheduler.ledger import SchedulerState
from annoray.scheduler.placement import Placement
from annoray.scheduler.serving import replica_of, replicas_running


def leases_view(leases: tuple[tuple[str, int], ...]) -> list[dict[str, Any]]:
    return [{"scope": scope, "license_id": license_id} for scope, license_id in leases]


WAITS = {"room": "waiting for room on a node", "seat": "waiting for a licence seat",
         "project": "waiting for its project's running training of the same kind", "quota": "over its team's quota"}


def cluster_view(state: SchedulerState, order: list[tuple[str, int]] | None = None,
                 decided: dict[tuple[str, int], Placement] | None = None, quotas: Quotas | None = None) -> dict[str, Any]:
    """``order``: the queue as the last pass decided it; ``decided``: what each job waits for; ``quotas``: the teams'
    quotas and usage (a job that waits for room beyond its team's quota waits to borrow)."""
    position = {key: at for at, key in enumerate(order or [], start=1)}
    decided = decided or {}

    def waits(job: Any, team: str) -> str | None:
        placement = decided.get(("training", job.id))
        if placement is None or not placement.waits_for:
            return None
        if placement.waits_for == "room" and quotas and quotas.teams and not quotas.within_quota(team, Resources.of(job.resources)):
            return "waiting to borrow"
        return WAITS[placement.waits_for]

    with state.lock:
        nodes = state.ledger.nodes()
        trainings = dict(state.ledger.trainings)
        servers = dict(state.ledger.servers)
    with state.reads() as session:
        jobs = TrainingJobRepository(session).with_status(JobStatus.RUNNING, *PENDING)
        running = [{"id": j.id, "project_id": j.project_id, "kind": j.kind, "node_id": trainings[j.id].node_id,
                    "resources": trainings[j.id].resources.as_dict(), "leases": leases_view(trainings[j.id].leases)}
                   for j in jobs if j.id in trainings]
        teams = TeamRepository(session).team_of_projects()
        queue = []
        for j in jobs:
            if j.status in PENDING:
                team = teams.get(j.project_id, DEFAULT_TEAM)
                queue.append({"id": j.id, "position": position.get(("training", j.id)), "project_id": j.project_id,
                              "kind": j.kind, "team": team, "priority": j.priority, "status": j.status.value,
                              "waits": waits(j, team), "reason": j.reason, "preemptions": j.preemptions,
                              "resources": j.resources, "scopes": j.scopes})
        queue.sort(key=lambda q: (q["position"] is None, q["position"] or 0, q["id"]))
        licenses = [{k: v[k] for k in ("id", "key", "scopes", "seats", "leased", "expires_at", "expired")}
                    for v in license_views(session, datetime.now(UTC))]
        running_replicas = replicas_running()
        server_rows = [{"id": sv.id, "name": sv.name, "status": sv.status.value, "reason": sv.reason, "models": sv.models,
                        "node_id": sv.node_id, "spread": sv.spread or [], "replicas": sv.replicas, "max_replicas": sv.max_replicas,
                        "replicas_running": running_replicas.get(sv.id, 0), "autoscaling": sv.autoscaling or {},
                        "resources": (servers[sv.id].resources if sv.id in servers else replica_of(sv) * sv.max_replicas).as_dict(),
                        "leases": leases_view(servers[sv.id].leases if sv.id in servers else ())}
                       for sv in ServerRepository(session).all()]
    return {
        "nodes": [{"node_id": n.node_id, "total": n.total.as_dict(), "free": n.free.as_dict()} for n in nodes.values()],
        "trainings": running,
        "servers": server_rows,
        "queue": queue,
        "licenses": licenses,
    }
