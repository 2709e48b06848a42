"""Placement decisions on a cluster snapshot: start where one node holds the bundle, wait, or never; no starvation."""

from annoray.platform.resources import GB, Resources
from annoray.scheduler.placement import Node, Outcome, Pending, place, plan

VISUAL = Resources(16, 64 * GB)
SMALL = Resources(2, 4 * GB)


def cluster(*sizes: tuple[float, float]) -> dict[str, Node]:
    return {f"n{i}": Node(f"n{i}", Resources(cpus, gb * GB)) for i, (cpus, gb) in enumerate(sizes)}


def test_a_bundle_starts_only_on_a_node_that_holds_all_of_it() -> None:
    nodes = cluster((8, 32), (16, 64), (8, 32))
    assert place(VISUAL, nodes.values()) .node_id == "n1"
    # 24 free CPUs across nodes do not make one 16-CPU node
    nodes["n1"].used = Resources(1, 1 * GB)
    waiting = place(VISUAL, nodes.values())
    assert waiting.outcome is Outcome.WAIT and "16 CPU / 64 GB on one node" in waiting.reason


def test_what_no_node_can_ever_hold_is_refused_with_the_largest_node() -> None:
    never = place(VISUAL, cluster((8, 32), (4, 16)).values())
    assert never.outcome is Outcome.NEVER
    assert never.reason == "needs 16 CPU / 64 GB on one node; the largest node has 8 CPU / 32 GB"


def test_with_an_autoscaler_a_job_that_fits_a_node_type_waits_for_it() -> None:
    waiting = place(VISUAL, cluster((8, 32)).values(), node_types=[Resources(16, 64 * GB)])
    assert waiting.outcome is Outcome.WAIT and waiting.scale_up
    never = place(Resources(32, 64 * GB), cluster((8, 32)).values(), node_types=[Resources(16, 64 * GB)])
    assert never.outcome is Outcome.NEVER and "the largest node type has 16 CPU / 64 GB" in never.reason


def test_the_tightest_node_is_chosen_so_big_nodes_stay_free_for_big_jobs() -> None:
    assert place(SMALL, cluster((16, 64), (4, 8)).values()).node_id == "n1"


def test_a_big_waiting_job_is_not_starved_by_a_stream_of_small_ones() -> None:
    nodes = cluster((16, 64), (4, 8))
    nodes["n0"].used = Resources(4, 8 * GB)  # an earlier small job holds part of the big node
    big = Pending("training", 1, VISUAL, (1, "visual_ner"))
    smalls = [Pending("training", i, SMALL, (i, "ner")) for i in range(2, 12)]
    decisions = dict((p.holder_id, d) for p, d in plan([big, *smalls], nodes, running={}))
    assert decisions[1].outcome is Outcome.WAIT
    started = [i for i, d in decisions.items() if d.outcome is Outcome.START]
    assert started and all(decisions[i].node_id == "n1" for i in started), "a small job took room on the held node"
    nodes["n0"].used = Resources()  # the earlier job ends: the held node is whole again
    nodes["n1"].used = Resources()
    again = dict((p.holder_id, d) for p, d in plan([big, *smalls], nodes, running={}))
    assert again[1].outcome is Outcome.START and again[1].node_id == "n0"


def test_one_training_per_project_and_kind_at_a_time() -> None:
    nodes = cluster((16, 64))
    first, second, other_kind = Pending("training", 1, SMALL, (7, "ner")), Pending("training", 2, SMALL, (7, "ner")), Pending("training", 3, SMALL, (7, "assertion"))
    decisions = [d for _, d in plan([first, second, other_kind], nodes, running={})]
    assert [d.outcome for d in decisions] == [Outcome.START, Outcome.WAIT, Outcome.START]
    assert decisions[1].reason == "another ner training of this project is running (training 1)"
    waiting = plan([second], cluster((16, 64)), running={(7, "ner"): 1})
    assert waiting[0][1].outcome is Outcome.WAIT


def test_seats_go_oldest_first_and_a_job_without_a_seat_waits_without_holding_a_node() -> None:
    from annoray.platform.access.licenses import SeatPool, Seats

    seats = SeatPool([Seats(7, ("ocr:training",), 1)])
    jobs = [Pending("training", 1, SMALL, (1, "visual_ner"), ("ocr:training",)), Pending("training", 2, SMALL, (2, "visual_ner"), ("ocr:training",)),
            Pending("training", 3, SMALL, (3, "ner"))]
    decisions = plan(jobs, cluster((4, 8), (2, 4)), running={}, seats=seats)
    assert [(p.outcome, p.leases) for _, p in decisions] == [
        (Outcome.START, (("ocr:training", 7),)), (Outcome.WAIT, ()), (Outcome.START, ())]
    assert decisions[1][1].reason == "waiting for a seat of license scope 'ocr:training' (every seat that grants it is leased)"


def test_a_scope_no_license_grants_is_never() -> None:
    from annoray.platform.access.licenses import SeatPool

    (decision,) = plan([Pending("training", 1, SMALL, (1, "ner"), ("legal:training",))], cluster((4, 8)), running={}, seats=SeatPool(()))
    assert decision[1].outcome is Outcome.NEVER and decision[1].reason.startswith(
        "[E707] needs a seat of license scope 'legal:training' and no unexpired license grants it")
