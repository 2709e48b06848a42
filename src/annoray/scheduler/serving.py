"""Pre-annotation servers, as the scheduler sees them: a pass's decisions written, Serve applications deployed,
redeployed with new models, undeployed and deleted, and reattached after a restart."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from annoray.platform.errors import Errors, describe
from annoray.platform.resources import Resources
from annoray.platform.settings import ResourceSpec
from annoray.platform.store.repositories import SERVER, LicenseRepository, ModelRepository, RuleRepository, ServerRepository
from annoray.platform.store.tables import PreannotationServer, ServerStatus
from annoray.scheduler.ledger import Allocation, SchedulerState
from annoray.scheduler.placement import Outcome, Pending, Placement
from annoray.scheduler.preannotation_dispatch import PreannotationDispatch

logger = logging.getLogger(__name__)


def replica_of(server: PreannotationServer) -> Resources:
    """What one of a server's replicas needs."""
    return Resources.of(ResourceSpec(**server.resources).model_dump())


def held_by(server: PreannotationServer) -> tuple[tuple[str, Resources], ...]:
    """What a placed server holds on each node it spreads over: room for every replica it may scale to."""
    spread = server.spread or ([[server.node_id, server.max_replicas]] if server.node_id else [])
    return tuple((node_id, replica_of(server) * replicas) for node_id, replicas in spread)


def allocation_of(server: PreannotationServer, leases: tuple[tuple[str, int], ...]) -> Allocation:
    parts = held_by(server)
    return Allocation(server.node_id or "", sum((r for _, r in parts), Resources()), leases=leases, parts=parts)


class ServerDeployments:
    """Deploys run on a thread each beside the scheduler's loop: Serve's calls block until the replicas are up."""

    def __init__(self, state: SchedulerState):
        self.state = state
        self.redeploying: set[int] = set()  # servers whose Serve app is being rebuilt with new models

    def record(self, servers: dict[int, PreannotationServer], decisions: list[tuple[Pending, Placement]]) -> None:
        """Write this pass's new waits and refusals, in one transaction."""
        changes = [(servers[w.holder_id], p) for w, p in decisions if p.outcome is Outcome.NEVER
                   or (p.outcome is Outcome.WAIT and servers[w.holder_id].reason != p.reason)]
        if not changes:
            return
        with self.state.sessions.begin() as session:
            repo = ServerRepository(session)
            for server, placement in changes:
                if placement.outcome is Outcome.WAIT:
                    repo.transition(server.id, (ServerStatus.QUEUED,), ServerStatus.QUEUED, reason=placement.reason)
                else:
                    repo.transition(server.id, (ServerStatus.QUEUED,), ServerStatus.FAILED, reason=None, error=placement.reason)

    def stale(self, session: Any) -> list[int]:
        """Running servers whose project's config came to name other models than they serve."""
        return [s.id for s in ServerRepository(session).with_status(ServerStatus.RUNNING)
                if s.models != s.deployed_models and s.id in self.state.ledger.servers and s.id not in self.redeploying]

    def deploy(self, server: PreannotationServer, placement: Placement) -> None:
        """Move the server to deploying with its seats in one transaction, then create its Serve app beside the loop."""
        spread = [[node_id, replicas] for node_id, replicas in placement.spread]
        where = ", ".join(f"{node_id} ({replicas})" for node_id, replicas in spread)
        with self.state.sessions.begin() as session:
            moved = ServerRepository(session).transition(
                server.id, (ServerStatus.QUEUED,), ServerStatus.DEPLOYING,
                reason=f"deploying on node{'s' if len(spread) > 1 else ''} {where}", node_id=placement.node_id, spread=spread)
            if not moved or not LicenseRepository(session).lease_all(placement.leases, SERVER, server.id, datetime.now(UTC)):
                session.rollback()
                return
        server.node_id, server.spread = placement.node_id, spread
        allocation = self.state.ledger.servers[server.id] = allocation_of(server, placement.leases)
        threading.Thread(target=self._serve, args=(server.id, allocation), name=f"deploy-server-{server.id}", daemon=True).start()

    def redeploy(self, server_id: int) -> None:
        """Rebuild a running server's Serve app with the models it should now serve (after a deploy rewrote its
        project's config). Serve replaces the replicas in place; requests wait for a replica, none is dropped."""
        self.redeploying.add(server_id)
        with self.state.sessions.begin() as session:
            ServerRepository(session).transition(server_id, (ServerStatus.RUNNING,), ServerStatus.RUNNING,
                                                 reason="redeploying with the models its project's labeling config names now")
        threading.Thread(target=self._serve, args=(server_id, self.state.ledger.servers[server_id], ServerStatus.RUNNING),
                         name=f"redeploy-server-{server_id}", daemon=True).start()

    def _serve(self, server_id: int, allocation: Allocation, current: ServerStatus = ServerStatus.DEPLOYING) -> None:
        """Deploy (or rebuild) the server's Serve app on its node. A deploy whose allocation the ledger no longer holds
        (its node left the cluster, and the server was queued again) changes nothing when it ends."""
        from annoray.scheduler.servers import spark_jars

        from ray import serve

        from annoray.scheduler.factory import server_app
        from annoray.serve_apps.server import app_name

        try:
            with self.state.reads() as session:
                server = ServerRepository(session).get(server_id)
                catalog = ModelRepository(session)
                models = [{"name": m.name, "kind": m.kind, "labels": list(m.labels), "engine": m.engine,
                           "jars": spark_jars(self.state.settings, m.engine)}
                          for name in server.models if (m := catalog.by_name(name)) is not None]
                rules = [{"name": r.name, "label": r.label, "kind": r.kind, "pattern": r.pattern, "terms": list(r.terms)}
                         for r in RuleRepository(session).by_names(server.rules)]
                spec = ResourceSpec(**server.resources)
                replicas, max_replicas, language, names = server.replicas, server.max_replicas, server.language, list(server.models)
                autoscaling = dict(server.autoscaling or {})
                spread = {node_id: held for node_id, held in server.spread or [[allocation.node_id, max_replicas]]}
            serve.start(proxy_location="Disabled")
            serve.run(server_app(store=self.state.settings.resolved_model_store, models=models, rules=rules, language=language,
                                 replicas=replicas, max_replicas=max_replicas, replica=spec.resources(), autoscaling=autoscaling,
                                 spread=spread,
                                 max_models=self.state.settings.labeling_config.max_models),
                      name=app_name(server_id), route_prefix=None)
        except Exception as exc:  # the server ends failed with the reason; its resources and seats come back
            with self.state.lock:
                if self.state.ledger.servers.get(server_id) is not allocation:
                    return  # superseded
                logger.exception("deploying server %s failed", server_id)
                self.state.ledger.servers.pop(server_id, None)
                self.redeploying.discard(server_id)
            with self.state.sessions.begin() as session:
                ServerRepository(session).transition(server_id, (current,), ServerStatus.FAILED, reason=None,
                                                     error=Errors.E813.format(why=describe(exc)))
            undeploy(server_id)
            return
        with self.state.lock:
            if self.state.ledger.servers.get(server_id) is not allocation:
                return  # superseded
        with self.state.sessions.begin() as session:
            running = ServerRepository(session).transition(server_id, (current,), ServerStatus.RUNNING, reason=None,
                                                           deployed_models=names)
        with self.state.lock:
            self.redeploying.discard(server_id)
        if not running:  # deleted while it deployed
            undeploy(server_id)
        self.state.kick.set()

    def lost_nodes(self, alive: set[str], preannotations: PreannotationDispatch) -> None:
        """Servers on a node that left the cluster are queued again, to deploy on another node (their seats go back
        on the next pass and are leased again there); their running pre-annotation jobs stop and wait for them, to
        resume where they stopped."""
        with self.state.lock:
            lost = {server_id: a for server_id, a in self.state.ledger.servers.items() if set(a.by_node()) - alive}
            for server_id in lost:
                del self.state.ledger.servers[server_id]
                self.redeploying.discard(server_id)
        if not lost:
            return
        with self.state.sessions.begin() as session:
            for server_id, allocation in lost.items():
                gone = ", ".join(sorted(set(allocation.by_node()) - alive))
                ServerRepository(session).transition(server_id, (ServerStatus.DEPLOYING, ServerStatus.RUNNING), ServerStatus.QUEUED,
                                                     reason=Errors.E820.format(node=gone), node_id=None, spread=None)
                preannotations.wait_for_server(session, server_id)
        for server_id in lost:
            undeploy(server_id)
        self.state.kick.set()

    def preempt(self, server_id: int, text: str, preannotations: PreannotationDispatch) -> Allocation | None:
        """Under the lock: queue a server again for a job that preempts it (``text`` says who and why), its running
        pre-annotation jobs waiting to resume where they stopped; returns its allocation, taken out of the ledger (None
        when it was not running). Undeploy it with `undeploy` once the lock is let go."""
        allocation = self.state.ledger.servers.get(server_id)
        if allocation is None or server_id in self.redeploying:
            return None
        with self.state.sessions.begin() as session:
            if not ServerRepository(session).transition(server_id, (ServerStatus.RUNNING,), ServerStatus.QUEUED,
                                                        reason=text, node_id=None, spread=None):
                return None
            preannotations.wait_for_server(session, server_id, why=f"server {server_id} was preempted and deploys again")
        del self.state.ledger.servers[server_id]
        return allocation

    def reattach(self) -> None:
        """After a restart: servers whose Serve app survived are ledgered again with their seats; the rest deploy again."""
        from ray import serve

        from annoray.serve_apps.server import app_name

        try:
            apps = {name: str(status.status) for name, status in serve.status().applications.items()}
        except Exception:  # no Serve controller: nothing survived
            apps = {}
        with self.state.sessions.begin() as session:
            repo, licenses = ServerRepository(session), LicenseRepository(session)
            leases = licenses.seats_by_holder(SERVER)
            for server in repo.with_status(ServerStatus.DEPLOYING, ServerStatus.RUNNING):
                if server.status is ServerStatus.RUNNING and apps.get(app_name(server.id), "").endswith("RUNNING"):
                    self.state.ledger.servers[server.id] = allocation_of(server, leases.get(server.id, ()))
                else:
                    repo.transition(server.id, (server.status,), ServerStatus.QUEUED, reason="scheduler restarted; deploying again")
                    undeploy(server.id)
            licenses.release_all_but(SERVER, list(self.state.ledger.servers))


def undeploy(server_id: int) -> None:
    from ray import serve

    from annoray.serve_apps.server import app_name

    try:
        serve.delete(app_name(server_id))
    except Exception:  # nothing deployed under that name
        logger.debug("no Serve app for server %s", server_id)


def replicas_running() -> dict[int, int]:
    """How many replicas each server's Serve app runs now, by server id (Serve's own count)."""
    from ray import serve

    from annoray.serve_apps.server import DEPLOYMENT, server_of_app

    try:
        applications = serve.status().applications
    except Exception:  # no Serve controller: nothing runs
        return {}
    running = {}
    for name, app in applications.items():
        deployment = app.deployments.get(DEPLOYMENT)
        if (server_id := server_of_app(name)) is not None and deployment is not None:
            running[server_id] = sum(n for state, n in deployment.replica_states.items() if str(state).endswith("RUNNING"))
    return running
