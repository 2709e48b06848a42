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


def test_the_incremental_planner_decides_as_a_full_pass_at_the_cost_of_what_changed() -> None:
    """Random passes: jobs join (mostly at the young end, sometimes queued again among the old), start, end, are
    cancelled; nodes come and go; seats are leased. After every pass, each job's latest decision from the planner
    equals `plan`'s over the whole queue, and passes where only new jobs joined were incremental."""
    import random

    from annoray.platform.access.licenses import SeatPool, Seats
    from annoray.scheduler.placement import Planner

    rng = random.Random(7)
    sizes = [Resources(2, 4 * GB), Resources(8, 32 * GB), Resources(16, 64 * GB), Resources(40, 64 * GB)]
    totals = {"n0": Resources(16, 64 * GB), "n1": Resources(8, 32 * GB)}
    used: dict[int, tuple[str, Resources]] = {}  # started job -> (node, demand)
    running: dict[tuple[int, str], int] = {}
    leased = 0
    queue: list[Pending] = []
    planner, latest = Planner(), {}
    next_id, appended_passes = 1, 0
    for _ in range(400):
        event = rng.random()
        appended = 0
        if event < 0.6:  # new jobs at the young end
            for _ in range(rng.randint(1, 5)):
                scopes = ("ocr:training",) if rng.random() < 0.2 else ()
                queue.append(Pending("training", next_id, rng.choice(sizes), (rng.randint(1, 6), rng.choice(["ner", "assertion"])), scopes))
                next_id += 1
                appended += 1
        elif event < 0.7 and used:  # a run ends
            job_id = rng.choice(sorted(used))
            used.pop(job_id)
            running = {k: v for k, v in running.items() if v != job_id}
        elif event < 0.8 and queue:  # a cancel, or a job queued again among the old ones
            victim = queue.pop(rng.randrange(len(queue)))
            if rng.random() < 0.5:
                queue.insert(rng.randrange(len(queue) + 1), victim)
        elif event < 0.9:  # a node comes or goes
            if "n2" in totals:
                totals.pop("n2")
                used = {j: u for j, u in used.items() if u[0] != "n2"}
            else:
                totals["n2"] = Resources(32, 128 * GB)
        else:  # a seat comes or goes
            leased = (leased + 1) % 3
        nodes = {k: Node(k, t, sum((d for n, d in used.values() if n == k), Resources())) for k, t in totals.items()}
        seats = SeatPool([Seats(1, ("ocr:training",), 2 - leased)])
        full = plan(queue, {k: Node(k, n.total, n.used) for k, n in nodes.items()}, running=running,
                    seats=SeatPool([Seats(1, ("ocr:training",), 2 - leased)]))
        passes = planner.incremental_passes
        for job, placement in planner.decide(list(queue), nodes, running=running, seats=seats,
                                             appended=appended if event < 0.6 else None):
            latest[job.holder_id] = placement
        appended_passes += planner.incremental_passes - passes
        assert [latest[j.holder_id] for j, _ in full] == [p for _, p in full]
        for job, placement in full:  # what started leaves the queue and holds its room, as the scheduler's launch does
            if placement.outcome is Outcome.START:
                used[job.holder_id] = (placement.node_id, job.demand)
                if job.exclusive:
                    running[job.exclusive] = job.holder_id
                queue.remove(job)
            elif placement.outcome is Outcome.NEVER:
                queue.remove(job)
    assert appended_passes > 50 and planner.full_passes > 50, (appended_passes, planner.full_passes)


def test_a_servers_replicas_spread_one_per_node_where_they_can() -> None:
    from annoray.scheduler.placement import place_replicas

    replica = Resources(1, 2 * GB)
    spread = place_replicas(replica, 3, cluster((2, 8), (4, 8), (1, 2), (8, 32)).values())
    assert spread.outcome is Outcome.START and sorted(spread.spread) == [("n0", 1), ("n1", 1), ("n3", 1)]
    # two nodes of room for two replicas each: two on each (four held for three, so Serve may put two on either)
    two = place_replicas(replica, 3, cluster((2, 4), (2, 4), (1, 1)).values())
    assert sorted(two.spread) == [("n0", 2), ("n1", 2)]
    assert place_replicas(replica, 2, cluster((2, 4)).values()).spread == (("n0", 2),)  # one node: all there


def test_replicas_the_cluster_can_never_hold_are_refused_and_those_it_can_hold_later_wait() -> None:
    from annoray.scheduler.placement import place_replicas

    replica = Resources(2, 2 * GB)
    never = place_replicas(replica, 3, cluster((2, 4), (3, 8)).values())
    assert never.outcome is Outcome.NEVER and never.reason == "needs 3 replicas of 2 CPU / 2 GB; the cluster can ever hold 2 (1 on node n0, 1 on node n1)"
    nodes = cluster((4, 8), (2, 4))
    nodes["n0"].used = Resources(3, 2 * GB)
    waiting = place_replicas(replica, 2, nodes.values())
    assert waiting.outcome is Outcome.WAIT and "waiting for room for 2 replicas" in waiting.reason


def test_a_started_server_takes_its_replicas_room_on_every_node_it_spreads_over() -> None:
    nodes = cluster((2, 8), (2, 8))
    server = Pending("server", 1, Resources(1, 2 * GB), replicas=2)
    training = Pending("training", 2, Resources(2, 2 * GB), (1, "ner"))
    decisions = [d for _, d in plan([server, training], nodes, running={})]
    assert decisions[0].outcome is Outcome.START and sorted(decisions[0].spread) == [("n0", 1), ("n1", 1)]
    assert decisions[1].outcome is Outcome.WAIT, "the training was placed on room a replica holds"
