"""The scheduler on a real Ray with logical resources: start, wait or never; no over-commit under 50 concurrent submissions."""

import threading
import time
from pathlib import Path

import pytest

from ..conftest import (
    GIB, Api, cancel_all, german_project, license_document, live_api, ray_available, refused, scheduler_settings, shutdown_ray,
    wait_for_trainings,
)

import ray  # noqa: E402  (a dependency of annoray: never skipped)
pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(900)]

VISUAL_SIZED = {"cpus": 16, "memory_gb": 64}
LONG = {"params": {"epochs": 500, "batch_size": 1}}


def sized(tmp_path: Path, name: str, **ner: float):
    from annoray.platform.settings import ResourceSpec

    settings = scheduler_settings(tmp_path / name)
    return settings.model_copy(update={"training": settings.training.model_copy(update={
        "resources": settings.training.resources | {"ner": ResourceSpec(**ner)}})})


def scheduler_of(api: Api):
    return ray.get_actor(api.settings.scheduler.name, namespace=api.settings.scheduler.namespace)


def test_a_visual_ner_sized_training_waits_for_the_busy_node_then_starts(ray_session, tmp_path: Path) -> None:
    with live_api(sized(tmp_path, "home", **VISUAL_SIZED)) as api:
        owner = api.admin
        first = owner.post(f"/api/projects/{german_project(owner, 'a')}/trainings", json=LONG).json()["jobs"][0]["id"]
        wait_for_trainings(owner, [first], until=lambda j: j["status"] == "running")
        second = owner.post(f"/api/projects/{german_project(owner, 'b')}/trainings", json=LONG).json()["jobs"][0]["id"]
        (waiting,), _ = wait_for_trainings(owner, [second], until=lambda j: j["status"] == "waiting")
        assert waiting["reason"] == "waiting for 16 CPU / 64 GB on one node (most free now: 0 CPU / 0 GB)"

        view = owner.get("/api/cluster").json()
        (node,) = view["nodes"]
        assert node["total"]["cpus"] == 16 and node["free"]["cpus"] == 0
        assert [t["id"] for t in view["trainings"]] == [first] and view["trainings"][0]["node_id"] == node["node_id"]
        assert [(q["id"], q["reason"]) for q in view["queue"]] == [(second, waiting["reason"])]

        owner.post(f"/api/trainings/{first}/cancel")
        wait_for_trainings(owner, [second], until=lambda j: j["status"] == "running", timeout=60)
        assert list(ray.get(scheduler_of(api).ledger_view.remote())) == [second]
        owner.post(f"/api/trainings/{second}/cancel")
        assert ray.get(scheduler_of(api).ledger_view.remote()) == {}


def seats_leased(api: Api) -> dict[int, int]:
    return {lic["id"]: lic["leased"] for lic in api.admin.get("/api/licenses").json()}


def test_seats_run_out_the_next_job_waits_and_starts_when_a_seat_returns(ray_session, tmp_path: Path) -> None:
    with live_api(sized(tmp_path, "home", cpus=2, memory_gb=2)) as api:
        owner = api.admin
        license = owner.post("/api/licenses", json=license_document(["healthcare:training"], seats=1)).json()
        first, second = (owner.post(f"/api/projects/{german_project(owner, name, 'healthcare')}/trainings", json=LONG).json()["jobs"][0]["id"]
                         for name in ("a", "b"))
        (running, waiting), _ = wait_for_trainings(owner, [first, second], until=lambda j: j["status"] in ("running", "waiting"))
        assert (running["status"], waiting["status"]) == ("running", "waiting") and running["licenses"] == ["healthcare:training"]
        assert waiting["reason"] == "waiting for a seat of license scope 'healthcare:training' (every seat that grants it is leased)"
        assert seats_leased(api) == {license["id"]: 1}
        view = owner.get("/api/cluster").json()
        assert view["trainings"][0]["leases"] == [{"scope": "healthcare:training", "license_id": license["id"]}]
        assert view["licenses"][0]["leased"] == 1 and view["queue"][0]["reason"] == waiting["reason"]
        body = refused(api, lambda: owner.delete(f"/api/licenses/{license['id']}"), 409)
        assert body["detail"] == f"[E706] license {license['id']} has 1 leased seats (held by training {first}); cancel or delete them first"

        owner.post(f"/api/trainings/{first}/cancel")
        wait_for_trainings(owner, [second], until=lambda j: j["status"] == "running", timeout=60)
        assert seats_leased(api) == {license["id"]: 1}
        assert ray.get(scheduler_of(api).ledger_view.remote())[second]["leases"] == [["healthcare:training", license["id"]]]
        owner.post(f"/api/trainings/{second}/cancel")
        assert seats_leased(api) == {license["id"]: 0}


def test_a_training_no_node_can_hold_is_refused_with_the_reason(ray_session, tmp_path: Path) -> None:
    with live_api(sized(tmp_path, "home", cpus=32, memory_gb=64)) as api:
        pid = german_project(api.admin)
        body = refused(api, lambda: api.admin.post(f"/api/projects/{pid}/trainings", json={}), 409)
        assert body["detail"] == ("[E612] this training can never run on this cluster: needs 32 CPU / 64 GB on one node; "
                                  "the largest node has 16 CPU / 64 GB")


def test_fifty_concurrent_submissions_never_over_commit_resources_or_seats(ray_session, tmp_path: Path) -> None:
    with live_api(sized(tmp_path, "home", cpus=4, memory_gb=8)) as api:
        owner = api.admin
        license = owner.post("/api/licenses", json=license_document(["finance:*"], seats=3)).json()
        projects = [german_project(owner, f"p{i}", "finance") for i in range(10)]
        scheduler = scheduler_of(api)
        total_cpus = ray.cluster_resources()["CPU"]
        deadline = time.monotonic() + 30  # runs ended by earlier tests give their reservations back asynchronously
        while ray_available().get("CPU", 0) < total_cpus and time.monotonic() < deadline:
            time.sleep(0.5)
        assert ray_available().get("CPU", 0) == total_cpus, "Ray holds CPUs for runs that ended"
        job_ids: list[int] = []
        lock = threading.Lock()

        def submit(pid: int) -> None:
            client = api.client(api.settings.admin_token_path.read_text().strip())
            for _ in range(5):
                response = client.post(f"/api/projects/{pid}/trainings", json=LONG)
                assert response.status_code == 202, response.text
                with lock:
                    job_ids.append(response.json()["jobs"][0]["id"])

        threads = [threading.Thread(target=submit, args=(pid,)) for pid in projects]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 180
        while True:  # every state seen on the way keeps the invariants; stop once every job has been decided
            ray_used = total_cpus - ray_available().get("CPU", 0)  # Ray's view first: the ledger only grows now
            ledger = ray.get(scheduler.ledger_view.remote())
            assert sum(a["cpus"] for a in ledger.values()) <= 16 and sum(a["memory_gb"] for a in ledger.values()) <= 64
            assert ray_used <= sum(a["cpus"] for a in ledger.values()), "Ray runs workers the ledger does not account for"
            assert sum(len(a["leases"]) for a in ledger.values()) <= 3 and seats_leased(api)[license["id"]] <= 3
            view = owner.get("/api/cluster").json()
            projects_running = [r["project_id"] for r in view["trainings"]]
            assert len(projects_running) == len(set(projects_running)), "two trainings of one project and kind at once"
            decided = not any(t.is_alive() for t in threads) and len(view["queue"]) == 47 and all(
                q["status"] == "waiting" for q in view["queue"])
            if decided and len(ledger) == 3:
                break
            assert time.monotonic() < deadline, f"not all decided: {len(ledger)} running, {len(view['queue'])} queued"
            time.sleep(0.5)
        assert sorted(job_ids) == sorted(set(job_ids)) and len(job_ids) == 50
        seat_waits = [q for q in view["queue"] if q["reason"].startswith("waiting for a seat of license scope 'finance:")]
        assert seat_waits, "four 4-CPU jobs fit a 16-CPU node, but three seats allow three: the others wait for a seat"
        assert all(q in seat_waits or q["reason"].startswith("another ner training of this project is running")
                   for q in view["queue"]), view["queue"]
        cancel_all(owner, job_ids)
        final, _ = wait_for_trainings(owner, job_ids, timeout=60)
        assert {j["status"] for j in final} == {"cancelled"}
        assert ray.get(scheduler.ledger_view.remote()) == {} and seats_leased(api) == {license["id"]: 0}


class TwoNodes(tuple):
    """The two workers' node ids, and a way to take one out of the cluster."""

    def __new__(cls, cluster, nodes):
        self = super().__new__(cls, tuple(nodes))
        self.cluster, self.nodes = cluster, nodes
        return self

    def remove(self, node_id: str) -> None:
        self.cluster.remove_node(self.nodes[node_id])


@pytest.fixture
def two_node_cluster():
    """A head node and two workers, 8 CPU / 32 GB and 16 CPU / 64 GB (logical), in place of the session's Ray."""
    from ray.cluster_utils import Cluster

    shutdown_ray()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "memory": 4 * GIB})
    small = cluster.add_node(num_cpus=8, memory=32 * GIB)
    big = cluster.add_node(num_cpus=16, memory=64 * GIB)
    ray.init(address=cluster.address, namespace="annoray-tests", log_to_driver=False)
    cluster.wait_for_nodes()
    yield TwoNodes(cluster, {small.node_id: small, big.node_id: big})
    shutdown_ray()
    cluster.shutdown()


def test_a_node_that_leaves_takes_its_run_back_to_the_queue_then_fails_beyond_the_budget(two_node_cluster, tmp_path: Path) -> None:
    small, big = two_node_cluster
    settings = sized(tmp_path, "home", cpus=8, memory_gb=32)
    settings = settings.model_copy(update={"training": settings.training.model_copy(update={"max_failures": 1})})
    with live_api(settings) as api:
        owner = api.admin
        job = owner.post(f"/api/projects/{german_project(owner)}/trainings", json=LONG).json()["jobs"][0]["id"]
        (first,), _ = wait_for_trainings(owner, [job], until=lambda j: j["progress"]["epoch"] >= 1)
        node = ray.get(scheduler_of(api).ledger_view.remote())[job]["node_id"]
        two_node_cluster.remove(node)
        (requeued,), _ = wait_for_trainings(owner, [job], until=lambda j: j["status"] != "running" or j["node_id"] != node, timeout=120)
        log = owner.get(f"/api/trainings/{job}/log").text
        assert requeued["status"] in ("queued", "waiting", "running"), log
        (requeued,), _ = wait_for_trainings(owner, [job], until=lambda j: j["status"] == "running" and j["node_id"] != node, timeout=120)
        assert f"[E613] the node {node} running this training left the cluster; queued again to resume from its last checkpoint" in log
        other = requeued["node_id"]
        assert other in (small, big) and list(ray.get(scheduler_of(api).ledger_view.remote())) == [job]

        two_node_cluster.remove(other)
        (failed,), _ = wait_for_trainings(owner, [job], timeout=120)
        assert failed["status"] == "failed"
        assert failed["error"] == (f"[E613] the node {other} running this training left the cluster; "
                                   "failure 2 is beyond the retry budget of 1"), owner.get(f"/api/trainings/{job}/log").text
        assert ray.get(scheduler_of(api).ledger_view.remote()) == {}


def test_on_two_nodes_a_visual_ner_sized_training_goes_where_one_node_holds_it(two_node_cluster, tmp_path: Path) -> None:
    small, big = two_node_cluster
    with live_api(sized(tmp_path, "home", **VISUAL_SIZED)) as api:
        owner = api.admin
        job = owner.post(f"/api/projects/{german_project(owner)}/trainings", json=LONG).json()["jobs"][0]["id"]
        wait_for_trainings(owner, [job], until=lambda j: j["progress"]["epoch"] >= 1)
        assert ray.get(scheduler_of(api).ledger_view.remote())[job]["node_id"] == big
        assert f"placed by the scheduler on node {big}" in owner.get(f"/api/trainings/{job}/log").text
        view = {n["node_id"]: n for n in owner.get("/api/cluster").json()["nodes"]}
        assert view[big]["free"]["cpus"] == 0 and view[small]["free"]["cpus"] == 8
        owner.post(f"/api/trainings/{job}/cancel")


def test_with_an_autoscaler_a_job_bigger_than_every_node_waits_for_a_node_type(ray_session, tmp_path: Path) -> None:
    settings = sized(tmp_path, "home", cpus=32, memory_gb=96)
    settings = settings.model_copy(update={"scheduler": settings.scheduler.model_copy(
        update={"autoscaler_node_types": [{"cpus": 32, "memory_gb": 128}]})})
    with live_api(settings) as api:
        created = api.admin.post(f"/api/projects/{german_project(api.admin)}/trainings", json={})
        assert created.status_code == 202, created.text
        job = created.json()["jobs"][0]["id"]
        (waiting,), _ = wait_for_trainings(api.admin, [job], until=lambda j: j["status"] == "waiting")
        assert waiting["reason"] == "waiting for the autoscaler to add a node with 32 CPU / 96 GB"
        api.admin.post(f"/api/trainings/{job}/cancel")
