"""The scheduler on a real Ray with logical resources: start, wait or never; no over-commit under 50 concurrent submissions."""

import threading
import time
from pathlib import Path

import pytest

from ..conftest import GIB, Api, german_project, live_api, refused, scheduler_settings, wait_for_trainings

ray = pytest.importorskip("ray")
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


def test_a_training_no_node_can_hold_is_refused_with_the_reason(ray_session, tmp_path: Path) -> None:
    with live_api(sized(tmp_path, "home", cpus=32, memory_gb=64)) as api:
        pid = german_project(api.admin)
        body = refused(api, lambda: api.admin.post(f"/api/projects/{pid}/trainings", json={}), 409)
        assert body["detail"] == ("[E612] this training can never run on this cluster: needs 32 CPU / 64 GB on one node; "
                                  "the largest node has 16 CPU / 64 GB")


def test_fifty_concurrent_submissions_never_over_commit(ray_session, tmp_path: Path) -> None:
    with live_api(sized(tmp_path, "home", cpus=6, memory_gb=16)) as api:
        owner = api.admin
        projects = [german_project(owner, f"p{i}") for i in range(10)]
        scheduler = scheduler_of(api)
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
        most_running = 0
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline or any(t.is_alive() for t in threads):
            ledger = ray.get(scheduler.ledger_view.remote())
            assert sum(a["cpus"] for a in ledger.values()) <= 16 and sum(a["memory_gb"] for a in ledger.values()) <= 64
            assert ray.available_resources().get("CPU", 0) >= 0
            running = [j for j in owner.get("/api/cluster").json()["trainings"]]
            projects_running = [r["project_id"] for r in running]
            assert len(projects_running) == len(set(projects_running)), "two trainings of one project and kind at once"
            most_running = max(most_running, len(ledger))
            time.sleep(0.5)
        assert sorted(job_ids) == sorted(set(job_ids)) and len(job_ids) == 50
        assert most_running == 2, "two 6-CPU jobs fit a 16-CPU node; a third never may"
        for job_id in job_ids:
            owner.post(f"/api/trainings/{job_id}/cancel")
        final, _ = wait_for_trainings(owner, job_ids, timeout=60)
        assert {j["status"] for j in final} == {"cancelled"}
        assert ray.get(scheduler.ledger_view.remote()) == {}


@pytest.fixture
def two_node_cluster():
    """A head node and two workers, 8 CPU / 32 GB and 16 CPU / 64 GB (logical), in place of the session's Ray."""
    from ray.cluster_utils import Cluster

    ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "memory": 4 * GIB})
    small = cluster.add_node(num_cpus=8, memory=32 * GIB)
    big = cluster.add_node(num_cpus=16, memory=64 * GIB)
    ray.init(address=cluster.address, namespace="annoray-tests", log_to_driver=False)
    cluster.wait_for_nodes()
    yield small.node_id, big.node_id
    ray.shutdown()
    cluster.shutdown()


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


def test_a_killed_scheduler_restarts_and_resumes_its_running_job_without_duplicating_it(ray_session, tmp_path: Path) -> None:
    with live_api(sized(tmp_path, "home", cpus=4, memory_gb=8)) as api:
        owner = api.admin
        job = owner.post(f"/api/projects/{german_project(owner)}/trainings", json=LONG).json()["jobs"][0]["id"]
        (before,), _ = wait_for_trainings(owner, [job], until=lambda j: j["progress"]["epoch"] >= 2)
        ray.kill(scheduler_of(api), no_restart=False)
        (after,), _ = wait_for_trainings(owner, [job], until=lambda j: j["progress"]["epoch"] >= before["progress"]["epoch"] + 2,
                                         timeout=180)
        assert after["status"] == "running"
        log = owner.get(f"/api/trainings/{job}/log", params={"format": "json"}).json()
        assert "restart" in log
        epochs = [e["epoch"] for e in log["epochs"]]
        assert epochs.count(1) == 1, f"the relaunched run began again from scratch: {epochs}"
        assert list(ray.get(scheduler_of(api).ledger_view.remote())) == [job]
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
