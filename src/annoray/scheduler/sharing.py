"""A pass on a cluster that teams share: each queued job's team and priority read from the store, the teams' quotas
and what each team holds now, the queue decided in `admission`'s order within those quotas, and the running trainings
to preempt so that a job left waiting for room can start.

Used when the store has a team or a queued job has a priority; otherwise the pass keeps `Planner`'s first come, first
served, which decides only what changed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from annoray.platform.access.licenses import SeatPool
from annoray.platform.access.teams import DEFAULT_TEAM
from annoray.platform.resources import Resources
from annoray.platform.store.repositories import SERVER, TRAINING, TeamRepository, aware
from annoray.scheduler.admission import Preemption, Quotas, Running, Team, Ticket, plan_fairly, preemptions, waiting_for_room
from annoray.scheduler.placement import Node, Pending, Placement


@dataclass
class Sharing:
    """The teams' quotas (with what each holds now) and the team of every project in one."""

    quotas: Quotas
    team_of_project: dict[int, str]

    def team(self, project_id: int | None) -> str:
        return self.team_of_project.get(project_id, DEFAULT_TEAM) if project_id is not None else DEFAULT_TEAM


def read_sharing(session: Session) -> Sharing:
    repo = TeamRepository(session)
    rows = repo.all()
    if not rows:  # every project in the default team: usage orders nothing, so the pass reads no more
        return Sharing(Quotas({}), {})
    names = {t.id: t.name for t in rows}
    teams = {t.name: Team(t.name, Resources.of(t.quota), Resources.of(t.borrowing_limit) if t.borrowing_limit is not None else None,
                          dict(t.seats or {})) for t in rows}
    usage: dict[str, Resources] = {}
    for team_id, resources, count in repo.holding():
        name = names.get(team_id, DEFAULT_TEAM) if team_id is not None else DEFAULT_TEAM
        usage[name] = usage.get(name, Resources()) + Resources.of(resources) * count
    seats: dict[str, dict[str, int]] = {}
    for team_id, scope, count in repo.seats_held():
        held = seats.setdefault(names.get(team_id, DEFAULT_TEAM) if team_id is not None else DEFAULT_TEAM, {})
        held[scope] = held.get(scope, 0) + count
    return Sharing(Quotas(teams, usage, seats=seats), repo.team_of_projects())


def shared(sharing: Sharing, pending: list[Pending], jobs: dict[int, Any]) -> bool:
    """Whether the queue is decided by teams and priorities: a team exists, or a queued training has a priority."""
    return bool(sharing.quotas.teams) or any(jobs[w.holder_id].priority for w in pending if w.holder_kind == TRAINING)


@dataclass
class FairPass:
    decisions: list[tuple[Pending, Placement]]  # in admission order: the queue's positions
    preempt: list[tuple[Ticket, Preemption]]  # the running trainings to stop, and for whom


def fair_decisions(pending: list[Pending], jobs: dict[int, Any], servers: dict[int, Any], sharing: Sharing,
                   nodes: dict[str, Node], *, since: dict[int, datetime], running: dict[tuple[int, str], int], running_jobs: list[Any],
                   allocations: dict[int, Any], node_types: list[Resources], seats: SeatPool, aging_s: float,
                   now: datetime, running_servers: Sequence[Any] = (), server_allocations: dict[int, Any] | None = None) -> FairPass:
    """`admission.plan_fairly` over the queue (oldest first in ``pending``: that order is first come, first served
    within a team), then `admission.preemptions` for the tickets it left waiting for room, among the running
    trainings (``running_jobs``, held as ``allocations``) and the ``running_servers`` given (those a setting lets be
    preempted, held as ``server_allocations``; one spread over nodes is not). Servers take part at priority 0, in their
    project's team. A training's wait counts from ``since`` (when it joined the queue, last)."""
    tickets = []
    for seq, want in enumerate(pending):
        holder = jobs[want.holder_id] if want.holder_kind == TRAINING else servers[want.holder_id]
        priority = holder.priority if want.holder_kind == TRAINING else 0
        joined = since.get(want.holder_id, holder.created_at) if want.holder_kind == TRAINING else holder.created_at
        tickets.append(Ticket(want, sharing.team(holder.project_id), priority, seq,
                              max((now - aware(joined)).total_seconds(), 0.0)))
    copies = {k: Node(n.node_id, n.total, n.used) for k, n in nodes.items()}
    sharing.quotas.total = sum((n.total for n in copies.values()), Resources())
    decided = plan_fairly(tickets, copies, sharing.quotas, running=running, node_types=node_types, seats=seats,
                          aging_s=aging_s)
    waiting = waiting_for_room(decided)
    preempt = []
    if waiting:
        work = [Running(TRAINING, j.id, sharing.team(j.project_id), j.priority, allocations[j.id].resources,
                        allocations[j.id].node_id, aware(j.started_at or j.created_at).timestamp())
                for j in running_jobs if j.id in allocations]
        held = server_allocations or {}
        work += [Running(SERVER, sv.id, sharing.team(sv.project_id), 0, held[sv.id].resources, held[sv.id].node_id,
                         aware(sv.created_at).timestamp()) for sv in running_servers if sv.id in held and len(held[sv.id].by_node()) == 1]
        preempt = preemptions(waiting, work, copies, sharing.quotas)
    return FairPass([(ticket.job, placement) for ticket, placement in decided], preempt)
