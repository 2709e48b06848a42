"""Teams on a shared cluster, decided without Ray: the admission order, quotas and borrowing, whom a blocked job
preempts, and a long random run where nothing starves and no team borrows beyond its limit."""

import importlib.util
import sys
from pathlib import Path

from annoray.platform.access.licenses import SeatPool, Seats
from annoray.platform.resources import GB, Resources
from annoray.scheduler.admission import (FairOrder, Quotas, Running, Team, Ticket, plan_fairly, preemption_for,
                                         preemptions, waiting_for_room)
from annoray.scheduler.placement import Node, Outcome, Pending

spec = importlib.util.spec_from_file_location("fairness", Path(__file__).resolve().parents[2] / "benchmarks" / "fairness.py")
fairness = sys.modules["fairness"] = importlib.util.module_from_spec(spec)  # dataclasses look their module up
spec.loader.exec_module(fairness)


def cpus(n: float) -> Resources:
    return Resources(n, n * 4 * GB)


def ticket(team: str, seq: int, size: float = 4, priority: int = 0, waited_s: float = 0.0) -> Ticket:
    return Ticket(Pending("training", seq, cpus(size)), team, priority, seq, waited_s)


def teams(**quota: float) -> dict[str, Team]:
    return {name: Team(name, cpus(n)) for name, n in quota.items()}


def nodes(*sizes: float) -> dict[str, Node]:
    return {f"n{i}": Node(f"n{i}", cpus(n)) for i, n in enumerate(sizes)}


def test_the_queue_goes_higher_priority_first_then_the_team_furthest_below_its_share_then_first_come() -> None:
    quotas = Quotas(teams(a=8, b=8), {"a": cpus(6), "b": cpus(2)}, cpus(16))
    queue = [ticket("a", 1), ticket("b", 2), ticket("a", 3, priority=5), ticket("b", 4), ticket("a", 5)]
    order = FairOrder(queue, quotas)
    taken = []
    for t in order:
        taken.append(t.seq)
        order.started(t)  # each start charges its team: b (2 of 8) goes until it is past a (6 of 8)
    assert taken == [3, 2, 4, 1, 5]
    # a's priority-5 ticket first; then b, furthest below its share (2/8 against a's 10/8); b at 6/8 is still below
    # a's 10/8, so b's next; then both at 10/8: the oldest first


def test_a_team_holds_no_more_licence_seats_of_a_scope_than_its_seats_say() -> None:
    seated = lambda seq: Ticket(Pending("training", seq, cpus(2), scopes=("ocr:training",)), "a", 0, seq)  # noqa: E731
    quotas = Quotas({"a": Team("a", cpus(16), seats={"ocr:training": 2})}, {}, cpus(16))
    decided = plan_fairly([seated(1), seated(2), seated(3), ticket("a", 4, size=2)], nodes(16), quotas, running={},
                          seats=SeatPool([Seats(1, ("ocr:training",), 5)]))  # the licence has seats to spare
    assert [p.outcome for _, p in decided] == [Outcome.START, Outcome.START, Outcome.WAIT, Outcome.START]
    assert decided[2][1].reason == "over its seats: team 'a' holds 2 of its 2 seat(s) of ocr:training"
    assert quotas.seats == {"a": {"ocr:training": 2}}


def test_a_long_wait_raises_a_jobs_priority_so_a_steady_stream_of_higher_ones_does_not_starve_it() -> None:
    quotas = Quotas(teams(a=8), {}, cpus(16))
    old = ticket("a", 1, waited_s=1300)  # two agings of 600 s: priority 0 + 2
    fresh = [ticket("a", 2 + i, priority=1) for i in range(3)]
    assert [t.seq for t in FairOrder([*fresh, old], quotas, aging_s=600)][0] == 1
    assert [t.seq for t in FairOrder([*fresh, old], quotas, aging_s=0)][-1] == 1, "with no aging it waits for every one"


def test_a_team_takes_its_quota_borrows_what_others_leave_up_to_its_limit_and_the_default_team_only_borrows() -> None:
    quotas = Quotas({"a": Team("a", cpus(8), borrowing_limit=cpus(4)), "b": Team("b", cpus(8))}, {"a": cpus(8)}, cpus(32))
    assert quotas.refusal("a", cpus(4)) is None, "borrows 4, its limit"
    assert quotas.refusal("a", cpus(5)) == ("over quota: team 'a' uses 8 CPU / 32 GB of its quota of 8 CPU / 32 GB and may "
                                            "borrow 4 CPU / 16 GB beyond it; this job needs 5 CPU / 20 GB")
    assert quotas.refusal("b", cpus(30)) is None, "no limit: as much as the cluster holds"
    assert quotas.refusal("anyone", cpus(2)) is None and quotas.team("anyone").quota == Resources()
    quotas.charge("anyone", cpus(2))
    assert quotas.share("anyone") > 1 > quotas.share("b"), "a team that only borrows comes after every team within its share"


def test_a_pass_admits_each_team_only_as_far_as_its_quota_and_limit_allow() -> None:
    quotas = Quotas({"a": Team("a", cpus(8), borrowing_limit=Resources()), "b": Team("b", cpus(8))}, {}, cpus(32))
    queue = [ticket("a", 1), ticket("a", 2), ticket("a", 3), ticket("b", 4), ticket("b", 5), ticket("b", 6), ticket("b", 7)]
    decided = plan_fairly(queue, nodes(16, 16), quotas, running={})
    outcome = {t.seq: p for t, p in decided}
    assert [s for s, p in outcome.items() if p.outcome is Outcome.START] == [1, 4, 2, 5, 6, 7]
    assert outcome[3].waits_for == "quota" and outcome[3].reason.startswith("over quota: team 'a' uses 8 CPU")
    assert quotas.used("a") == cpus(8) and quotas.used("b") == cpus(16), "b borrows what a may not"


def running(team: str, holder: int, size: float, node: str, priority: int = 0, started: int = 0, **kw) -> Running:
    return Running("training", holder, team, priority, cpus(size), node, started, **kw)


def test_a_higher_priority_job_preempts_the_latest_started_borrower_and_an_equal_one_preempts_nothing() -> None:
    quotas = Quotas(teams(a=8, b=8), {"a": cpus(4), "b": cpus(12)}, cpus(16))  # b borrows 4
    work = [running("a", 1, 4, "n0"), running("b", 2, 4, "n0", started=1), running("b", 3, 4, "n1", started=2),
            running("b", 4, 4, "n1", started=3)]
    cluster = nodes(8, 8)
    cluster["n0"].used, cluster["n1"].used = cpus(8), cpus(8)
    urgent = ticket("b", 10, size=4, priority=5)
    found = preemption_for(urgent, work, cluster, quotas)
    assert found is not None and found.why == "priority" and [v.holder_id for v in found.victims] == [4], found
    assert preemption_for(ticket("b", 11, size=4), work, cluster, quotas) is None, "b over its quota reclaims nothing"


def test_a_team_reclaims_its_quota_from_a_borrower_but_never_from_a_team_within_its_own() -> None:
    quotas = Quotas(teams(a=8, b=8, c=8), {"b": cpus(12), "c": cpus(8)}, cpus(24))
    work = [running("b", 1, 8, "n0", started=1), running("b", 2, 4, "n1", started=2), running("c", 3, 4, "n1"),
            running("c", 4, 4, "n2")]
    cluster = nodes(8, 8, 8)
    for node in cluster.values():
        node.used = cpus(8)
    cluster["n2"].used = cpus(4)
    found = preemption_for(ticket("a", 10, size=8), work, cluster, quotas)
    assert found is not None and (found.why, found.node_id, [v.holder_id for v in found.victims]) == ("reclaim", "n0", [1])
    server = [running("b", 1, 8, "n0", preemptible=False), *work[1:]]
    assert preemption_for(ticket("a", 10, size=8), server, cluster, quotas) is None, "servers are not preempted"
    assert preemption_for(ticket("a", 10, size=12), work, cluster, quotas) is None, "no node could hold it"


def test_two_waiting_jobs_never_count_on_the_same_victims() -> None:
    quotas = Quotas(teams(a=8, b=8), {"b": cpus(16)}, cpus(16))
    work = [running("b", 1, 8, "n0", started=1), running("b", 2, 8, "n1", started=2)]
    cluster = nodes(8, 8)
    cluster["n0"].used, cluster["n1"].used = cpus(8), cpus(8)
    waiting = [ticket("a", 10, size=8), ticket("a", 11, size=8)]
    chosen = preemptions(waiting, work, cluster, quotas)
    assert [(t.seq, [v.holder_id for v in p.victims]) for t, p in chosen] == [(10, [2])], (
        "a reclaims its 8 CPUs once: its second job would take it past its quota")
    assert cluster["n1"].used == cpus(8) and quotas.used("a") == Resources(), "the caller's view is left as it was"
    decided = plan_fairly(waiting, cluster, Quotas(teams(a=8, b=8), {"b": cpus(16)}, cpus(16)), running={})
    assert waiting_for_room(decided) == waiting, "both wait for room on a node: a preemption could start them"


def test_a_long_random_run_starves_no_job_keeps_every_team_within_its_limit_and_redoes_at_most_an_epoch() -> None:
    for seed in range(3):
        jobs = fairness.workload(seed, nodes=4, epoch_s=30)
        result = fairness.simulate(jobs, 4, fair=True, limits={"research": 0.25, "clinical": 0.25, "ops": 0.5})
        assert result.unfinished == 0 and all(j.first_start_s is not None for j in jobs), "every training ran to its end"
        assert result.max_borrow_over_limit <= 1e-9, "a team borrowed beyond its limit"
        assert all(j.redone_epochs <= j.preempted + 1e-9 for j in jobs), "at most one epoch trained twice per preemption"
        assert result.preemptions > 0, "the run reclaimed quotas and admitted higher priorities by preemption"
