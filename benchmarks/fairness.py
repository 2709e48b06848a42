"""Teams sharing a cluster: fair share, priority waits and work lost to preemption, against first come first served.

A simulated cluster (``--nodes`` nodes of 16 CPU / 64 GB, logical) and three teams with quotas that add up to it:
``research`` 50%, ``clinical`` 30%, ``ops`` 20%, none with a borrowing limit. Each team submits bursts of trainings of
different sizes (1 to 16 CPUs, 4 GB per CPU) and lengths (epochs of ``--epoch-s`` simulated seconds); a few are of a
higher priority, and ``ops`` submits most of its work late, when the others have borrowed its quota. The scheduler's
own decision code decides every pass (`admission.plan_fairly`, then `admission.preemptions` for those left waiting for
room); a preempted training stops where it is and resumes from its last finished epoch, so the epoch under way is
trained twice. The same workload then runs first come first served (`placement.plan` in queue order, no quotas, no
preemption), as the scheduler decided before teams.

Printed:
- each team's CPU-seconds over the busy period against its quota's share, and Jain's fairness index over the teams
  that wanted more than their share (1.0: each got exactly its share), for both;
- the high-priority trainings' waits when the cluster is full (passes and simulated seconds to start), for both;
- work lost: preemptions, and epochs trained twice per preemption (at most one, by construction of resuming);
- decisions per second with ``--queued`` (10,000) trainings queued in the three teams: one pass of `plan_fairly` over
  them in this process, against `plan` over the same queue in queue order as the baseline. Goal: at least 1,000/s.

    python benchmarks/fairness.py [--nodes 8] [--seed 0] [--queued 10000]
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass, field

from annoray.platform.resources import GB, Resources
from annoray.scheduler.admission import (Quotas, Running, Team, Ticket, plan_fairly, preemptions,
                                         waiting_for_room)
from annoray.scheduler.placement import Node, Outcome, Pending, plan

SHARES = {"research": 0.5, "clinical": 0.3, "ops": 0.2}
NODE = Resources(16, 64 * GB)


@dataclass
class Job:
    id: int
    team: str
    cpus: int
    epochs: int
    priority: int
    submit_s: float
    done_epochs: float = 0.0  # finished epochs (whole) plus the fraction of the one under way
    started_s: float | None = None
    first_start_s: float | None = None
    first_start_pass: int | None = None
    submit_pass: int | None = None
    node: str | None = None
    preempted: int = 0
    redone_epochs: float = 0.0  # of epochs under way when preempted

    @property
    def demand(self) -> Resources:
        return Resources(self.cpus, self.cpus * 4 * GB)


@dataclass
class Result:
    received: dict[str, float] = field(default_factory=dict)  # CPU-seconds while the team had trainings waiting
    entitled: dict[str, float] = field(default_factory=dict)  # its quota's part of what the waiting teams used then
    jain_per_pass: list[float] = field(default_factory=list)  # over the waiting teams, in each pass with two or more
    high_waits_s: list[float] = field(default_factory=list)
    high_waits_passes: list[int] = field(default_factory=list)
    preemptions: int = 0
    redone_epochs: float = 0.0
    unfinished: int = 0
    max_borrow_over_limit: float = 0.0


def workload(seed: int, nodes: int, epoch_s: float) -> list[Job]:
    """Bursts from the three teams: research and clinical early and large, ops mostly late; 5% high priority."""
    rng = random.Random(seed)
    jobs: list[Job] = []
    scale = nodes * 16  # CPUs in the cluster
    for team, bursts in (("research", [(0, 3.0), (1200, 1.0)]), ("clinical", [(0, 1.5), (600, 1.0)]), ("ops", [(300, 1.0), (1800, 0.5)])):
        for at, size in bursts:
            cpus_wanted = size * scale
            while cpus_wanted > 0:
                cpus = rng.choice([1, 2, 4, 4, 8, 16])
                jobs.append(Job(0, team, cpus, rng.randint(3, 12), 10 if rng.random() < 0.05 else 0, at + rng.uniform(0, 60)))
                cpus_wanted -= cpus
    jobs.sort(key=lambda j: j.submit_s)
    for i, job in enumerate(jobs):
        job.id = i + 1
    return jobs


def simulate(jobs: list[Job], nodes: int, *, fair: bool, epoch_s: float = 30.0, tick_s: float = 5.0,
             aging_s: float = 600.0, horizon_s: float = 40_000.0, limits: dict[str, float] | None = None) -> Result:
    """Run the workload pass by pass (one pass every ``tick_s`` simulated seconds) until every job ended.

    Args:
        limits: each team's borrowing limit as a part of the cluster (none: no limit).
    """
    cluster = {f"n{i}": Node(f"n{i}", NODE) for i in range(nodes)}
    total = NODE * nodes
    limits = limits or {}
    teams = {name: Team(name, Resources(total.cpus * share, total.memory * share),
                        Resources(total.cpus * limits[name], total.memory * limits[name]) if name in limits else None)
             for name, share in SHARES.items()}
    quotas = Quotas(teams if fair else {}, {}, total)
    waiting: list[Job] = []
    running: dict[int, Job] = {}
    pending = list(jobs)
    result = Result({t: 0.0 for t in SHARES}, {t: 0.0 for t in SHARES})
    now, passes = 0.0, 0
    while (pending or waiting or running) and now < horizon_s:
        passes += 1
        while pending and pending[0].submit_s <= now:
            job = pending.pop(0)
            job.submit_pass = passes
            waiting.append(job)
        for job in list(running.values()):  # trainings that finished
            if job.done_epochs >= job.epochs:
                del running[job.id]
                cluster[job.node].used -= job.demand
                quotas.release(job.team if fair else "default", job.demand)
        by_id = {j.id: j for j in waiting}
        tickets = [Ticket(Pending("training", j.id, j.demand), j.team if fair else "default", j.priority if fair else 0,
                          j.id, now - j.submit_s) for j in waiting]
        if fair:
            decisions = plan_fairly(tickets, cluster, quotas, running={}, aging_s=aging_s)
        else:
            started = plan([t.job for t in tickets], cluster, running={})
            decisions = [(t, p) for t, (_, p) in zip(tickets, started, strict=True)]
        for ticket, placement in decisions:
            if placement.outcome is Outcome.START:
                start(by_id[ticket.job.holder_id], placement.node_id, now, passes, waiting, running)
        if fair:
            # what ran before this pass: a training this pass started came first in the fair order
            current = [Running("training", j.id, j.team, j.priority, j.demand, j.node, int(j.started_s * 1000))
                       for j in running.values() if j.started_s < now]
            for ticket, preemption in preemptions(waiting_for_room(decisions), current, cluster, quotas):
                for victim in preemption.victims:
                    job = running.pop(victim.holder_id)
                    cluster[job.node].used -= job.demand
                    quotas.release(job.team, job.demand)
                    lost = job.done_epochs - int(job.done_epochs)
                    job.redone_epochs += lost
                    job.done_epochs = float(int(job.done_epochs))  # resumes from its last checkpoint
                    job.preempted += 1
                    job.node = None
                    result.preemptions += 1
                    result.redone_epochs += lost
                    waiting.append(job)
                job = by_id[ticket.job.holder_id]
                cluster[preemption.node_id].used += job.demand
                quotas.charge(job.team, job.demand)
                start(job, preemption.node_id, now, passes, waiting, running)
        wanting = {j.team for j in waiting}  # teams that want more than they have: their fair share is what counts
        used = {t: sum(j.cpus for j in running.values() if j.team == t) * tick_s for t in SHARES}
        if len(wanting) >= 2:
            among, spent = sum(SHARES[t] for t in wanting), sum(used[t] for t in wanting)
            for team in wanting:
                result.received[team] += used[team]
                result.entitled[team] += SHARES[team] / among * spent
            if spent:
                result.jain_per_pass.append(jain([used[t] / (SHARES[t] / among * spent) for t in wanting]))
        for job in running.values():
            job.done_epochs = min(job.epochs, job.done_epochs + tick_s / epoch_s)
        if fair:
            for name, team in teams.items():
                over = quotas.used(name).cpus - team.quota.cpus - (team.borrowing_limit.cpus if team.borrowing_limit else float("inf"))
                result.max_borrow_over_limit = max(result.max_borrow_over_limit, over)
        now += tick_s
    for job in jobs:
        if job.priority > 0 and job.first_start_s is not None:
            result.high_waits_s.append(job.first_start_s - job.submit_s)
            result.high_waits_passes.append(job.first_start_pass - (job.submit_pass or 0))
    result.unfinished = sum(1 for j in jobs if j.done_epochs < j.epochs)
    return result


def start(job: Job, node_id: str, now: float, passes: int, waiting: list[Job], running: dict[int, Job]) -> None:
    """The job runs on ``node_id`` from ``now`` (its room is taken already: by `plan`, or by the preemption)."""
    job.node, job.started_s = node_id, now
    if job.first_start_s is None:
        job.first_start_s, job.first_start_pass = now, passes
    waiting.remove(job)
    running[job.id] = job


def jain(values: list[float]) -> float:
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values)) if values else 1.0


def decision_rate(queued: int, nodes: int, seed: int) -> tuple[float, float]:
    """Decisions per second of one fair pass over ``queued`` tickets in three teams, and of `plan` in queue order."""
    rng = random.Random(seed)
    total = NODE * nodes
    teams = {name: Team(name, Resources(total.cpus * share, total.memory * share)) for name, share in SHARES.items()}
    tickets = [Ticket(Pending("training", i, Resources(c, c * 4 * GB)), rng.choice(list(SHARES)), rng.choice([0, 0, 0, 10]), i,
                      rng.uniform(0, 3000)) for i, c in enumerate(rng.choice([1, 2, 4, 8, 16]) for _ in range(queued))]
    rates = []
    for fair in (True, False):
        cluster = {f"n{i}": Node(f"n{i}", NODE) for i in range(nodes)}
        began = time.perf_counter()
        if fair:
            plan_fairly(tickets, cluster, Quotas(teams, {}, total), running={}, aging_s=600)
        else:
            plan([t.job for t in tickets], cluster, running={})
        rates.append(queued / (time.perf_counter() - began))
    return rates[0], rates[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--queued", type=int, default=10_000)
    parser.add_argument("--epoch-s", type=float, default=30.0)
    args = parser.parse_args()

    results = {}
    for fair in (False, True):
        jobs = workload(args.seed, args.nodes, args.epoch_s)
        results[fair] = simulate(jobs, args.nodes, fair=fair, epoch_s=args.epoch_s)
    print(f"{len(jobs)} trainings from 3 teams on {args.nodes} nodes of 16 CPU / 64 GB (simulated)")
    for fair, name in ((False, "first come, first served"), (True, "teams: quotas, priorities, fair share, preemption")):
        r = results[fair]
        ratios = {t: r.received[t] / r.entitled[t] for t in SHARES if r.entitled[t]}
        print(f"\n{name}:")
        for team, ratio in ratios.items():
            print(f"  {team:9s} quota {SHARES[team]:.0%}: while it had trainings waiting, {ratio:.2f}x its share of what the waiting teams used")
        print(f"  Jain's fairness index over the teams that wanted more than they had: {jain(list(ratios.values())):.3f} "
              f"over the run, {sum(r.jain_per_pass) / len(r.jain_per_pass):.3f} averaged over the {len(r.jain_per_pass)} passes "
              "where two teams or more had trainings waiting")
        if r.high_waits_s:
            waits = sorted(r.high_waits_s)
            print(f"  high-priority waits: median {waits[len(waits) // 2]:.0f} s, max {waits[-1]:.0f} s "
                  f"(passes: max {max(r.high_waits_passes)}) over {len(waits)} trainings")
        print(f"  preemptions {r.preemptions}, epochs trained twice per preemption "
              f"{(r.redone_epochs / r.preemptions if r.preemptions else 0):.2f} (at most 1), unfinished {r.unfinished}")
    fair_rate, fifo_rate = decision_rate(args.queued, args.nodes, args.seed)
    print(f"\ndecisions per second with {args.queued} queued in 3 teams: {fair_rate:,.0f} "
          f"({fair_rate / fifo_rate:.2f}x the queue-order plan's {fifo_rate:,.0f}); goal at least 1,000")


if __name__ == "__main__":
    main()
