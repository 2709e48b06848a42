"""The cluster as the scheduler sees it: nodes with their free and total resources, running trainings and servers
with their seats, the queue with its reasons, and the licenses' seats."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from annoray.platform.access.licenses import license_views
from annoray.platform.lifecycle import PENDING, JobStatus
from annoray.platform.store.repositories import ServerRepository, TrainingJobRepository
from annoray.scheduler.ledger import SchedulerState
from annoray.scheduler.serving import replica_of, replicas_running


def leases_view(leases: tuple[tuple[str, int], ...]) -> list[dict[str, Any]]:
    return [{"scope": scope, "license_id": license_id} for scope, license_id in leases]


def cluster_view(state: SchedulerState) -> dict[str, Any]:
    with state.lock:
        nodes = state.ledger.nodes()
        trainings = dict(state.ledger.trainings)
        servers = dict(state.ledger.servers)
    with state.reads() as session:
        jobs = TrainingJobRepository(session).with_status(JobStatus.RUNNING, *PENDING)
        running = [{"id": j.id, "project_id": j.project_id, "kind": j.kind, "node_id": trainings[j.id].node_id,
                    "resources": trainings[j.id].resources.as_dict(), "leases": leases_view(trainings[j.id].leases)}
                   for j in jobs if j.id in trainings]
        queue = [{"id": j.id, "project_id": j.project_id, "kind": j.kind, "status": j.status.value,
                  "reason": j.reason, "resources": j.resources, "scopes": j.scopes} for j in jobs if j.status in PENDING]
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
