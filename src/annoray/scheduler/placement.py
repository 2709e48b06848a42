"""Where a job's worker can run: one node must hold its whole bundle (CPU, memory, GPU), and the
license seats it needs must be free.

Pure functions over a snapshot of the cluster and the seat pool, so the scheduler's decisions can
be tested without Ray: start on a node now, wait (and for what), or never (and why).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from annoray.platform.access.licenses import SeatPool, Seats
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
    spread: tuple[tuple[str, int], ...] = ()  # a server's replicas: (node id, replicas there), when it starts
    waits_for: str = ""  # what a waiting job waits for: "room" on a node, a "seat", its "project" (one run at a time), "quota"


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


def place_replicas(replica: Resources, count: int, nodes: Iterable[Node], *, node_types: Iterable[Resources] = (),
                   blocked: Iterable[str] = ()) -> Placement:
    """Start ``count`` replicas spread over as many nodes as hold them, the same number on each; else wait; else never.

    The fewest replicas per node that places them all wins: one on each of ``count`` nodes, else two on each of half
    as many, and so on, up to all on one node. Each chosen node holds that many (so ``count`` rounded up to a multiple
    of it): Serve is told at most that many per node and may put them on any chosen node, so each must have the room.
    """
    nodes, node_types, blocked = list(nodes), list(node_types), set(blocked)
    if count == 1:
        one = place(replica, nodes, node_types=node_types, blocked=blocked)
        return Placement(one.outcome, one.node_id, one.reason, one.scale_up, spread=((one.node_id, 1),) if one.node_id else ())
    everywhere = sum(_how_many(replica, n.total) for n in nodes)
    if everywhere < count and not any(replica.fits_in(t) for t in node_types):
        where = ", ".join(f"{_how_many(replica, n.total)} on node {n.node_id[:12]}" for n in nodes)
        return Placement(Outcome.NEVER, reason=f"needs {count} replicas of {replica.describe()}; the cluster can ever hold "
                                               f"{everywhere}" + (f" ({where})" if where else ": it has no node"))
    open_nodes = sorted((n for n in nodes if n.node_id not in blocked), key=lambda n: (-n.free.cpus, -n.free.memory, n.node_id))
    for per_node in range(1, count + 1):
        wanted = -(-count // per_node)  # nodes needed, rounded up
        able = [n for n in open_nodes if (replica * per_node).fits_in(n.free)]
        if len(able) >= wanted:
            chosen = able[:wanted]
            return Placement(Outcome.START, node_id=chosen[0].node_id, spread=tuple((n.node_id, per_node) for n in chosen))
    most = largest([n.free for n in nodes])
    return Placement(Outcome.WAIT, scale_up=everywhere < count,
                     reason=f"waiting for room for {count} replicas of {replica.describe()} (most free on one node now: "
                            f"{most.describe() if most else 'none'})")


def _how_many(replica: Resources, room: Resources) -> int:
    """How many replicas fit in ``room``."""
    counts = [room.cpus / replica.cpus if replica.cpus else None, room.memory / replica.memory if replica.memory else None,
              room.gpus / replica.gpus if replica.gpus else None]
    known = [int(c + 1e-9) for c in counts if c is not None]
    return min(known) if known else 64


def reserve_for(demand: Resources, nodes: Iterable[Node]) -> str | None:
    """The node an older waiting job is promised: of those that can ever hold it, the one with the most free."""
    able = [n for n in nodes if demand.fits_in(n.total)]
    if not able:
        return None
    return max(able, key=lambda n: (n.free.cpus, n.free.memory)).node_id


@dataclass(frozen=True)
class Pending:
    """A training or a server waiting to start: who holds it (``training`` or ``server``, and its id), its bundle,
    what must not run twice at once (a training's project and kind; nothing for a server), its license scopes, and
    for a server how many replicas of ``demand`` it holds (every one it may scale to)."""

    holder_kind: str
    holder_id: int
    demand: Resources
    exclusive: tuple[int, str] | None = None
    scopes: tuple[str, ...] = ()
    replicas: int = 0  # 0: a training's single bundle


@dataclass
class _Pass:
    """Where a pass over the queue stands: the room and seats left, the trainings running, the held node."""

    nodes: dict[str, Node]
    seats: SeatPool
    busy: dict[tuple[int, str], int]
    held: str | None = None


def plan(pending: Iterable[Pending], nodes: Mapping[str, Node], *, running: Mapping[tuple[int, str], int],
         node_types: Iterable[Resources] = (), seats: SeatPool | None = None,
         admit: Callable[[Pending], str | None] | None = None,
         started: Callable[[Pending], None] | None = None) -> list[tuple[Pending, Placement]]:
    """Decide every pending job, in the order given (oldest first, or `admission`'s): start (and take its room and
    seats), wait, or never.

    The first job that fits the cluster but must wait holds the node it can soonest use; later
    jobs backfill only the other nodes, so the held node drains and that job cannot starve.
    Seats go in the same order. ``nodes`` and ``seats`` are updated with what the started jobs take.

    Args:
        admit: why a job's team may not take its demand now (its quota), None when it may; such a job waits.
        started: told each job that starts, as it starts (its team is charged: the order may change).
    """
    state = _Pass(dict(nodes), seats or SeatPool(()), dict(running))
    return _decide(pending, state, list(node_types), admit, started)


def _decide(pending: Iterable[Pending], state: _Pass, node_types: list[Resources],
            admit: Callable[[Pending], str | None] | None = None,
            started: Callable[[Pending], None] | None = None) -> list[tuple[Pending, Placement]]:
    """`plan` from where ``state`` stands, which it updates."""
    nodes, seats, busy = state.nodes, state.seats, state.busy
    decisions = []
    for job in pending:
        other = busy.get(job.exclusive) if job.exclusive else None
        if job.exclusive and other is not None:
            reason = f"another {job.exclusive[1]} training of this project is running (training {other})"
            decisions.append((job, Placement(Outcome.WAIT, reason=reason, waits_for="project")))
            continue
        ungranted = next((scope for scope in job.scopes if not seats.granted(scope)), None)
        if ungranted:
            decisions.append((job, Placement(Outcome.NEVER, reason=Errors.E707.format(scope=ungranted))))
            continue
        over = admit(job) if admit else None
        if over:
            decisions.append((job, Placement(Outcome.WAIT, reason=over, waits_for="quota")))
            continue
        short = seats.short(job.scopes)
        if short:
            reason = f"waiting for a seat of license scope '{short}' (every seat that grants it is leased)"
            decisions.append((job, Placement(Outcome.WAIT, reason=reason, waits_for="seat")))
            continue
        blocked = {state.held} if state.held else ()
        placement = (place_replicas(job.demand, job.replicas, nodes.values(), node_types=node_types, blocked=blocked)
                     if job.replicas else place(job.demand, nodes.values(), node_types=node_types, blocked=blocked))
        if placement.outcome is Outcome.NEVER:
            never = Errors.E805 if job.holder_kind == "server" else Errors.E612
            placement = Placement(Outcome.NEVER, reason=never.format(why=placement.reason))
        elif placement.outcome is Outcome.START:
            assert placement.node_id is not None
            for node_id, replicas in placement.spread or ((placement.node_id, 1),):
                nodes[node_id].used += job.demand * replicas
            if job.exclusive:
                busy[job.exclusive] = job.holder_id
            placement = Placement(Outcome.START, node_id=placement.node_id, leases=tuple(seats.take(job.scopes)),
                                  spread=placement.spread)
            if started:
                started(job)
        elif placement.outcome is Outcome.WAIT:
            placement = Placement(Outcome.WAIT, reason=placement.reason, scale_up=placement.scale_up, waits_for="room")
            if state.held is None:
                state.held = reserve_for(job.demand, nodes.values())
        decisions.append((job, placement))
    return decisions


class Planner:
    """`plan`, pass after pass, at the cost of what changed.

    While the cluster, the running trainings and the seats are as the last pass left them, the last pass started
    nothing, and jobs only joined the queue's young end, the queue's old decisions stand: the new jobs are decided
    from where the last pass ended, and only their decisions come back. Anything else (a job started, ended,
    cancelled or queued again among the old ones, a node or a seat come or gone) replans the whole queue, in memory.
    Either way the decisions are `plan`'s over the whole queue: a pass decides oldest first, so a job's decision
    depends only on the jobs before it and the cluster.
    """

    def __init__(self) -> None:
        self.queue: list[Pending] = []
        self.world: tuple | None = None  # the inputs of the last pass
        self.end: _Pass | None = None  # where the last pass ended (None: replan)
        self.full_passes = self.incremental_passes = 0

    def decide(self, pending: list[Pending], nodes: Mapping[str, Node], *, running: Mapping[tuple[int, str], int],
               node_types: Iterable[Resources] = (), seats: SeatPool | None = None, appended: int | None = None
               ) -> list[tuple[Pending, Placement]]:
        """The decisions that may differ from those this planner last gave: every job's after a replan, the new
        jobs' alone otherwise. ``nodes`` and ``seats`` are left as they are.

        Args:
            pending: the whole queue, oldest first.
            appended: how many jobs at the young end of ``pending`` are new since the last pass, when the caller
                knows (then the old ones are not compared, which would cost the queue's length); None to compare.
        """
        seats = seats or SeatPool(())
        node_types = list(node_types)
        world = (tuple((k, n.total, n.used) for k, n in nodes.items()), tuple(sorted(running.items())), tuple(node_types),
                 tuple((s.license_id, s.scopes, s.free) for s in seats.licenses))
        old = len(pending) - appended if appended is not None else len(self.queue)
        if (self.end is not None and world == self.world and old == len(self.queue)
                and (appended is not None or pending[:old] == self.queue)):
            new = pending[old:]
            self.queue.extend(new)
            self.incremental_passes += 1
            return self._ended(_decide(new, self.end, node_types))
        state = _Pass({k: Node(n.node_id, n.total, n.used) for k, n in nodes.items()},
                      SeatPool(Seats(s.license_id, s.scopes, s.free) for s in seats.licenses), dict(running))
        self.queue, self.world, self.end = list(pending), world, state
        self.full_passes += 1
        return self._ended(_decide(pending, state, node_types))

    def _ended(self, decisions: list[tuple[Pending, Placement]]) -> list[tuple[Pending, Placement]]:
        """A pass that started a job replans next time: the start changes the cluster, or, if it did not happen
        (cancelled meanwhile), the job must be decided again."""
        if any(p.outcome is Outcome.START for _, p in decisions):
            self.end = None
        return decisions
