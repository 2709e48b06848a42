"""The scheduler's ledger: what each running training and server holds, on which node, with which seats; and the
state every concern of the scheduler shares."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from annoray.platform.resources import Resources
from annoray.platform.settings import Settings
from annoray.scheduler.placement import Node


@dataclass
class Allocation:
    """What the ledger holds for one holder: where it runs, what it holds, and for a training the run behind it (its
    runner actor, and the reference that resolves when the run ends)."""

    node_id: str
    resources: Resources
    ref: Any = None
    leases: tuple[tuple[str, int], ...] = ()  # (scope, license id)
    runner: Any = None
    parts: tuple[tuple[str, Resources], ...] = ()  # a server spread over nodes: what it holds on each

    def by_node(self) -> dict[str, Resources]:
        return dict(self.parts) if self.parts else {self.node_id: self.resources}

    def view(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "nodes": list(self.by_node()), **self.resources.as_dict(),
                "leases": [list(lease) for lease in self.leases]}


@dataclass
class Ledger:
    """Every allocation, per holder kind: training job id -> allocation, server id -> allocation (every replica
    the server may scale to, on the nodes it spreads over)."""

    trainings: dict[int, Allocation] = field(default_factory=dict)
    servers: dict[int, Allocation] = field(default_factory=dict)

    def nodes(self) -> dict[str, Node]:
        """The live nodes, each with what the ledger has allocated there."""
        nodes = {n["NodeID"]: Node(n["NodeID"], Resources.of_ray(n["Resources"])) for n in ray_nodes()}
        for allocation in [*self.trainings.values(), *self.servers.values()]:
            for node_id, held in allocation.by_node().items():
                if node_id in nodes:
                    nodes[node_id].used += held
        return nodes

    def seats_by_scope(self) -> dict[str, int]:
        leased: dict[str, int] = {}
        for allocation in [*self.trainings.values(), *self.servers.values()]:
            for scope, _ in allocation.leases:
                leased[scope] = leased.get(scope, 0) + 1
        return leased


@dataclass
class SchedulerState:
    """What the scheduler's concerns share. ``lock`` orders every change of the ledger; ``kick`` asks for a pass now."""

    settings: Settings
    sessions: sessionmaker[Session]  # writes
    reads: sessionmaker[Session]
    ledger: Ledger = field(default_factory=Ledger)
    lock: threading.RLock = field(default_factory=threading.RLock)
    kick: threading.Event = field(default_factory=threading.Event)


def ray_nodes() -> list[dict[str, Any]]:
    import ray

    return [n for n in ray.nodes() if n["Alive"]]
