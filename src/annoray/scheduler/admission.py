"""Who goes first on a cluster that teams share, how far each team may go, and whom a blocked job may preempt.

Kueue's model, on annoray's jobs: each team has a nominal quota and may borrow what the others leave unused, up to its
borrowing limit; the queue is decided higher priority first, then jobs within their team's quota before jobs that
would borrow, then the team furthest below its share of its dominant resource, then first come first served within a
team; a job's priority grows with its wait (aging), so none starves.
A job that cannot start may preempt running work that borrows beyond its team's quota, when it has a higher priority
or when its own team is reclaiming its nominal quota (from work of no higher priority).

Pure functions and small classes over what the scheduler knows (like `placement`): they decide nothing in Ray.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from annoray.platform.access.licenses import SeatPool
from annoray.platform.resources import Resources
from annoray.scheduler.placement import Node, Outcome, Pending, Placement, plan

DEFAULT_TEAM = "default"  # the projects of no team: no quota of its own, it only borrows


@dataclass(frozen=True)
class Team:
    """A team's nominal quota and how much beyond it it may borrow (None: as much as the others leave unused)."""

    name: str
    quota: Resources = Resources()
    borrowing_limit: Resources | None = None
    seats: Mapping[str, int] = field(default_factory=dict)  # the most licence seats of a scope it may hold at once


@dataclass(frozen=True)
class Ticket:
    """A queued job's claim to go first: its team, its priority, its place in the queue, how long it has waited."""

    job: Pending
    team: str
    priority: int = 0
    seq: int = 0  # queue order: first come, first served within a team
    waited_s: float = 0.0

    def effective_priority(self, aging_s: float) -> int:
        """The priority raised by one for every ``aging_s`` seconds waited (``aging_s`` 0: no aging)."""
        return self.priority + (int(self.waited_s // aging_s) if aging_s > 0 else 0)

    @property
    def demand(self) -> Resources:
        return self.job.demand * max(1, self.job.replicas)


@dataclass
class Quotas:
    """Every team's quota and what it uses now; a team the scheduler meets that is not here is the default team."""

    teams: dict[str, Team]
    usage: dict[str, Resources] = field(default_factory=dict)
    total: Resources = Resources()  # the cluster's, for the shares of teams with no quota of a resource
    seats: dict[str, dict[str, int]] = field(default_factory=dict)  # the seats each team holds now, per scope

    def team(self, name: str) -> Team:
        return self.teams.get(name) or Team(name)

    def used(self, name: str) -> Resources:
        return self.usage.get(name, Resources())

    def charge(self, name: str, demand: Resources, scopes: Iterable[str] = ()) -> None:
        self.usage[name] = self.used(name) + demand
        held = self.seats.setdefault(name, {})
        for scope in scopes:
            held[scope] = held.get(scope, 0) + 1

    def release(self, name: str, demand: Resources) -> None:
        self.usage[name] = self.used(name) - demand

    def within_quota(self, name: str, demand: Resources = Resources()) -> bool:
        return (self.used(name) + demand).fits_in(self.team(name).quota)

    def borrowed(self, name: str) -> Resources:
        """What the team uses beyond its quota, per resource."""
        return _positive(self.used(name) - self.team(name).quota)

    def refusal(self, name: str, demand: Resources, scopes: Iterable[str] = ()) -> str | None:
        """Why the team may not take ``demand`` (and a licence seat of each of ``scopes``) now (None: it may, within
        its quota or borrowing within its limit, and within its seats)."""
        team = self.team(name)
        for scope in scopes:
            held = self.seats.get(name, {}).get(scope, 0)
            if scope in team.seats and held >= team.seats[scope]:
                return (f"over its seats: team '{name}' holds {held} of its {team.seats[scope]} seat(s) of {scope}")
        if self.within_quota(name, demand) or team.borrowing_limit is None:
            return None
        would_borrow = _positive(self.used(name) + demand - team.quota)
        if would_borrow.fits_in(team.borrowing_limit):
            return None
        return (f"over quota: team '{name}' uses {self.used(name).describe()} of its quota of {team.quota.describe()} "
                f"and may borrow {team.borrowing_limit.describe()} beyond it; this job needs {demand.describe()}")

    def share(self, name: str) -> float:
        """The team's dominant share: the largest of its usage over its quota, per resource. A resource it has no quota
        of counts one plus its usage over the cluster's total: a team that only borrows comes after every team below
        its share."""
        used, quota = self.used(name), self.team(name).quota
        ratios = [0.0]
        for have, allowed, total in ((used.cpus, quota.cpus, self.total.cpus), (used.memory, quota.memory, self.total.memory),
                                     (used.gpus, quota.gpus, self.total.gpus)):
            if allowed > 0:
                ratios.append(have / allowed)
            elif have > 0:
                ratios.append(1.0 + have / total if total > 0 else float("inf"))
        return max(ratios)


def _positive(r: Resources) -> Resources:
    return Resources(max(r.cpus, 0.0), max(r.memory, 0.0), max(r.gpus, 0.0))


class FairOrder:
    """The queue in admission order, decided one job at a time, because each job that starts changes its team's share.

    Iterate to get the next ticket: the highest effective priority; among equals, a job its team's quota holds before
    one that would borrow (Kueue's order: so a team reclaiming its quota takes the room it freed), then the team of
    the lowest dominant share; then the oldest. Call `started` when the ticket taken last started: its team is charged its demand.
    """

    def __init__(self, tickets: Iterable[Ticket], quotas: Quotas, *, aging_s: float = 0.0):
        self.quotas, self.aging_s = quotas, aging_s
        buckets: dict[tuple[str, int], list[Ticket]] = {}
        for ticket in tickets:
            buckets.setdefault((ticket.team, ticket.priority), []).append(ticket)
        # first come, first served within a team and priority: the head waited longest, so it has the bucket's highest
        # effective priority
        self.buckets = {key: deque(sorted(b, key=lambda t: t.seq)) for key, b in buckets.items()}

    def __iter__(self) -> Iterator[Ticket]:
        while self.buckets:
            key = min(self.buckets, key=self._rank)
            bucket = self.buckets[key]
            ticket = bucket.popleft()
            if not bucket:
                del self.buckets[key]
            yield ticket

    def _rank(self, key: tuple[str, int]) -> tuple[int, bool, float, int]:
        head = self.buckets[key][0]
        borrows = not self.quotas.within_quota(head.team, head.demand)
        return -head.effective_priority(self.aging_s), borrows, self.quotas.share(head.team), head.seq

    def started(self, ticket: Ticket) -> None:
        self.quotas.charge(ticket.team, ticket.demand, ticket.job.scopes)


def plan_fairly(tickets: Iterable[Ticket], nodes: Mapping[str, Node], quotas: Quotas, *,
                running: Mapping[tuple[int, str], int], node_types: Iterable[Resources] = (), seats: SeatPool | None = None,
                aging_s: float = 0.0) -> list[tuple[Ticket, Placement]]:
    """`placement.plan` over the queue in `FairOrder`, each job admitted only as far as its team's quota and borrowing
    limit allow. ``quotas`` is charged what the started jobs take, ``nodes`` and ``seats`` are updated as `plan` does."""
    order = FairOrder(tickets, quotas, aging_s=aging_s)
    taken: dict[tuple[str, int], Ticket] = {}

    def jobs() -> Iterator[Pending]:
        for ticket in order:
            taken[(ticket.job.holder_kind, ticket.job.holder_id)] = ticket
            yield ticket.job

    def ticket_of(job: Pending) -> Ticket:
        return taken[(job.holder_kind, job.holder_id)]

    decisions = plan(jobs(), nodes, running=running, node_types=node_types, seats=seats,
                     admit=lambda job: quotas.refusal(ticket_of(job).team, ticket_of(job).demand, job.scopes),
                     started=lambda job: order.started(ticket_of(job)))
    return [(ticket_of(job), placement) for job, placement in decisions]


def fifo(tickets: Iterable[Ticket]) -> list[Ticket]:
    """First come, first served, whatever the team or priority: what the scheduler did before teams."""
    return sorted(tickets, key=lambda t: t.seq)


@dataclass(frozen=True)
class Running:
    """Work that holds cluster resources now, as preemption sees it."""

    holder_kind: str
    holder_id: int
    team: str
    priority: int
    demand: Resources
    node_id: str
    started_seq: float = 0  # higher: started later (less work lost when preempted)
    preemptible: bool = True  # trainings are; servers only where a setting says so


@dataclass(frozen=True)
class Preemption:
    """Whom to preempt so that a blocked ticket starts on ``node_id``, and why."""

    node_id: str
    victims: tuple[Running, ...]
    why: str  # "priority" or "reclaim"


def preemption_for(ticket: Ticket, running: Iterable[Running], nodes: Mapping[str, Node], quotas: Quotas) -> Preemption | None:
    """The fewest running jobs to stop so that ``ticket`` fits on one node, among those it may preempt: work that
    borrows beyond its team's quota, of a lower priority than the ticket's, or of another team and no higher priority
    when the ticket's team reclaims its own quota (the ticket fits in it). Lowest priority first, then the latest started (the least work
    lost). None when no such set frees a node for it, or when its team may not take it (over its borrowing limit)."""
    demand = ticket.demand
    if quotas.refusal(ticket.team, demand, ticket.job.scopes):
        return None
    reclaiming = quotas.within_quota(ticket.team, demand)
    priority = ticket.priority  # aging orders the queue; it does not preempt (a long wait would churn running work)
    borrowing = {team for team in {r.team for r in running} if not quotas.borrowed(team).fits_in(Resources())}

    def why(r: Running) -> str | None:
        if not r.preemptible or r.team not in borrowing:
            return None
        if r.priority < priority:
            return "priority"
        if reclaiming and r.team != ticket.team and r.priority <= priority:  # a higher one would take the room back
            return "reclaim"
        return None

    best: Preemption | None = None
    by_node: dict[str, list[Running]] = {}
    for r in running:
        if why(r):
            by_node.setdefault(r.node_id, []).append(r)
    for node_id, candidates in sorted(by_node.items()):
        node = nodes.get(node_id)
        if node is None or not demand.fits_in(node.total):
            continue
        free, chosen = node.free, []
        for victim in sorted(candidates, key=lambda r: (r.priority, -r.started_seq)):
            if demand.fits_in(free):
                break
            chosen.append(victim)
            free = free + victim.demand
        if not demand.fits_in(free) or not chosen:
            continue
        reasons = {why(v) for v in chosen}
        option = Preemption(node_id, tuple(chosen), "priority" if "priority" in reasons else "reclaim")
        if best is None or _cost(option) < _cost(best):
            best = option
    return best


def _cost(option: Preemption) -> tuple[int, int, int]:
    """Fewer victims first, then lower priorities, then the latest started (the least work lost)."""
    return len(option.victims), max(v.priority for v in option.victims), -min(v.started_seq for v in option.victims)


def preemptions(waiting: Iterable[Ticket], running: Iterable[Running], nodes: Mapping[str, Node],
                quotas: Quotas) -> list[tuple[Ticket, Preemption]]:
    """For the waiting tickets, in the order given (the fair order's), the preemptions that let each start: victims
    are taken once, and the room they free is kept for the ticket that preempted them (no later ticket counts on it)."""
    left = list(running)
    nodes = {k: Node(n.node_id, n.total, n.used) for k, n in nodes.items()}
    quotas = Quotas(dict(quotas.teams), dict(quotas.usage), quotas.total, {t: dict(s) for t, s in quotas.seats.items()})
    out = []
    for ticket in waiting:
        found = preemption_for(ticket, left, nodes, quotas)
        if found is None:
            continue
        out.append((ticket, found))
        gone = {(v.holder_kind, v.holder_id) for v in found.victims}
        left = [r for r in left if (r.holder_kind, r.holder_id) not in gone]
        node = nodes[found.node_id]
        for victim in found.victims:
            node.used = node.used - victim.demand
            quotas.release(victim.team, victim.demand)
        node.used = node.used + ticket.demand  # the freed room is the ticket's
        quotas.charge(ticket.team, ticket.demand)
    return out


def waiting_for_room(decisions: Iterable[tuple[Ticket, Placement]]) -> list[Ticket]:
    """The tickets a pass left waiting for room on a node (not for a seat, their project or their quota), in the
    order it decided them: those a preemption could start."""
    return [t for t, p in decisions if p.outcome is Outcome.WAIT and p.waits_for == "room"]
