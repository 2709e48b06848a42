"""Where a job's worker can run: one node must hold its whole bundle (CPU, memory, GPU), and the
license seats it needs must be free.

Pure functions over a snapshot of the cluster and the seat pool, so the scheduler's decisions can
be tested without Ray: start on a node now, wait (and for what), or never (and why).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from annoray.platform.access.licenses import SeatPool
from annoray.platform.errors import Errors
from annoray.platform.resources import Resources

@dataclass
class Node:
    """A live node: its total resources and what the scheduler has allocated on it."""

    node_id: str
    total: Resources
    used: Resources = field(default_factory=Resources)

    @property
    def free(self) -> Resources:
        return self.total - self.used


class Outcome(StrEnum):
    START = "start"
    WAIT = "wait"
    NEVER = "never"


@dataclass(frozen=True)
class Placement:
    outcome: Outcome
    node_id: str | None = None
    reason: str | None = None
    scale_up: bool = False  # waiting for a node the autoscaler can add
    leases: tuple[tuple[str, int], ...] = ()  # (scope, license id) of the seats taken to start


def largest(resources: Iterable[Resources]) -> Resources | None:
    return max(resources, key=lambda r: (r.cpus, r.memory, r.gpus), default=None)


def place(demand: Resources, nodes: Iterable[Node], *, node_types: Iterable[Resources] = (),
          blocked: Iterable[str] = ()) -> Placement:
    """Start on the node with the least room left that holds ``demand``; else wait; else never.

    Args:
        node_types: node types an autoscaler could add; a demand that fits one of them waits
            for the autoscaler instead of being refused.
        blocked: nodes held for an older job that is waiting for them (no backfill there).
    """
    nodes, node_types, blocked = list(nodes), list(node_types), set(blocked)
    if not any(demand.fits_in(n.total) for n in nodes) and not any(demand.fits_in(t) for t in node_types):
        biggest = largest([n.total for n in nodes] + node_types)
        where = f"the largest node{' type' if node_types else ''} has {biggest.describe()}" if biggest else "the cluster has no node"
        return Placement(Outcome.NEVER, reason=f"needs {demand.describe()} on one node; {where}")
    candidates = [n for n in nodes if n.node_id not in blocked and demand.fits_in(n.free)]
    if candidates:
        best = min(candidates, key=lambda n: ((n.free - demand).cpus, (n.free - demand).memory))
        return Placement(Outcome.START, node_id=best.node_id)
    if not any(demand.fits_in(n.total) for n in nodes):
        return Placement(Outcome.WAIT, reason=f"waiting for the autoscaler to add a node with {demand.describe()}", scale_up=True)
    most = largest([n.free for n in nodes])
    return Placement(Outcome.WAIT, reason=f"waiting for {demand.describe()} on one node (most free now: {most.describe() if most else 'none'})")


def reserve_for(demand: Resources, nodes: Iterable[Node]) -> str | None:
    """The node an older waiting job is promised: of those that can ever hold it, the one with the most free."""
    able = [n for n in nodes if demand.fits_in(n.total)]
    if not able:
        return None
    return max(able, key=lambda n: (n.free.cpus, n.free.memory)).node_id


@dataclass(frozen=True)
class Pending:
    """A training or a server waiting to start: who holds it (``training`` or ``server``, and its id), its bundle,
    what must not run twice at once (a training's project and kind; nothing for a server), its license scopes."""

    holder_kind: str
    holder_id: int
    demand: Resources
    exclusive: tuple[int, str] | None = None
    scopes: tuple[str, ...] = ()


def plan(pending: Iterable[Pending], nodes: Mapping[str, Node], *, running: Mapping[tuple[int, str], int],
         node_types: Iterable[Resources] = (), seats: SeatPool | None = None) -> list[tuple[Pending, Placement]]:
    """Decide every pending job, oldest first: start (and take its room and seats), wait, or never.

    The oldest job that fits the cluster but must wait holds the node it can soonest use; younger
    jobs backfill only the other nodes, so the held node drains and the old job cannot starve.
    Seats go oldest first too. ``nodes`` and ``seats`` are updated with what the started jobs take.
    """
    seats = seats or SeatPool(())
    node_types = list(node_types)
    busy = dict(running)
    held: str | None = None
    decisions = []
    for job in pending:
        other = busy.get(job.exclusive) if job.exclusive else None
        if job.exclusive and other is not None:
            reason = f"another {job.exclusive[1]} training of this project is running (training {other})"
            decisions.append((job, Placement(Outcome.WAIT, reason=reason)))
            continue
        ungranted = next((scope for scope in job.scopes if not seats.granted(scope)), None)
        if ungranted:
            decisions.append((job, Placement(Outcome.NEVER, reason=Errors.E707.format(scope=ungranted))))
            continue
        short = seats.short(job.scopes)
        if short:
            reason = f"waiting for a seat of license scope '{short}' (every seat that grants it is leased)"
            decisions.append((job, Placement(Outcome.WAIT, reason=reason)))
            continue
        placement = place(job.demand, nodes.values(), node_types=node_types, blocked={held} if held else ())
        if placement.outcome is Outcome.NEVER:
            never = Errors.E805 if job.holder_kind == "server" else Errors.E612
            placement = Placement(Outcome.NEVER, reason=never.format(why=placement.reason))
        elif placement.outcome is Outcome.START:
            assert placement.node_id is not None
            nodes[placement.node_id].used += job.demand
            if job.exclusive:
                busy[job.exclusive] = job.holder_id
            placement = Placement(Outcome.START, node_id=placement.node_id, leases=tuple(seats.take(job.scopes)))
        elif placement.outcome is Outcome.WAIT and held is None:
            held = reserve_for(job.demand, nodes.values())
        decisions.append((job, placement))
    return decisions
