"""A full node, a scheduler killed twice (runs, seats and the queue accounted once), a worker group that cannot start: every job ends once and Ray gets back
everything annoray reserved."""

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import (
    GIB, RAY_JOB_ENV, Api, german_project, license_document, live_api, ray_available, scheduler_settings, shutdown_ray,
    wait_for_trainings,
)

import ray  # noqa: E402  (a dependency of annoray: never skipped)
pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(900)]



@pytest.fixture
def two_cpu_ray() -> Iterator[None]:
    """A Ray of exactly 2 logical CPUs (8 GB), in place of the session's bigger one."""
    shutdown_ray()
    ray.init(address="local", num_cpus=2, _memory=8 * GIB, include_dashboard=False, log_to_driver=False,
             namespace="annoray-tests", runtime_env=RAY_JOB_ENV)
    yield
    shutdown_ray()


def scheduler_of(api: Api):
    return ray.get_actor(api.settings.scheduler.name, namespace=api.settings.scheduler.namespace)


def has_runner(api: Api, job_id: int) -> bool:
    from annoray.scheduler.factory import find_training_runner

    return find_training_runner(api.settings, job_id) is not None


def wait_for_an_empty_ledger(api: Api, timeout: float = 30) -> dict:
    """The scheduler's ledger once a pass has seen every run end (or as it was when the time ran out)."""
    deadline = time.monotonic() + timeout
    while (ledger := ray.get(scheduler_of(api).ledger_view.remote())) and time.monotonic() < deadline:
        time.sleep(0.2)
    return ledger


def wait_until_ray_has_everything_back(timeout: float = 60) -> tuple[dict, dict]:
    """Ray's available CPU and memory once they equal its totals (or what they were when the time ran out)."""
    deadline = time.monotonic() + timeout
    while True:
        total, free = ray.cluster_resources(), ray_available()
        both = ({k: total.get(k) for k in ("CPU", "memory")}, {k: free.get(k) for k in ("CPU", "memory")})
        if both[0] == both[1] or time.monotonic() > deadline:
            return both
        time.sleep(0.5)


class RunWatch(threading.Thread):
    """Polls the jobs through the API and Ray's own view of their runners. A job seen ``running`` with no live runner
    (the moment between its launch and its runner's registration) must next be seen running with one: a runner lost
    with the scheduler would instead leave it to the watchdog, which moves it on (queued again, or failed). Records how
    each such moment ended, and every license seat leased twice to one job."""

    def __init__(self, api: Api, job_ids: list[int]):
        super().__init__(daemon=True)
        self.api, self.job_ids = api, job_ids
        self.stop = threading.Event()
        self.orphans: set[int] = set()  # running with no runner at the last poll
        self.ended_as: list[str] = []  # how each orphan moment ended: "runner", or the status the job moved to
        self.leased_twice: list[list] = []

    def run(self) -> None:
        client = self.api.client(self.api.settings.admin_token_path.read_text().strip())
        while not self.stop.is_set():
            for job_id in self.job_ids:
                status = client.get(f"/api/trainings/{job_id}").json()["status"]
                runner = status == "running" and has_runner(self.api, job_id)
                if status == "running" and not runner:
                    self.orphans.add(job_id)
                elif job_id in self.orphans:
                    self.orphans.discard(job_id)
                    self.ended_as.append("runner" if runner else status)
            holders = [(lease["holder"], lease["holder_id"]) for lic in client.get("/api/licenses").json() for lease in lic["leases"]]
            if len(holders) != len(set(holders)):
                self.leased_twice.append(holders)
            time.sleep(0.2)


def test_a_scheduler_killed_twice_on_a_full_node_ends_every_job_once_and_leaks_nothing(two_cpu_ray, tmp_path: Path) -> None:
    settings = scheduler_settings(tmp_path / "home", start_timeout_s=20.0)
    with live_api(settings) as api:
        owner = api.admin
        license = owner.post("/api/licenses", json=license_document(["legal:training"], seats=3)).json()
        projects = [german_project(owner, name, "legal") for name in ("a", "b", "c")]
        jobs = [owner.post(f"/api/projects/{pid}/trainings", json={"params": {"epochs": 6, "batch_size": 1}}).json()["jobs"][0]["id"]
                for pid in projects]
        watch = RunWatch(api, jobs)
        watch.start()
        states, _ = wait_for_trainings(owner, jobs, until=lambda j: j["status"] in ("running", "waiting"), timeout=60)
        assert sorted(s["status"] for s in states) == ["running", "running", "waiting"]
        assert next(s for s in states if s["status"] == "waiting")["reason"].startswith("waiting for 1 CPU / 2 GB on one node")
        first_two = [s["id"] for s in states if s["status"] == "running"]

        ray.kill(scheduler_of(api), no_restart=False)  # while Ray Train starts their worker groups
        wait_for_trainings(owner, first_two, until=lambda j: j["progress"]["epoch"] >= 1, timeout=120)
        ray.kill(scheduler_of(api), no_restart=False)  # while they train
        ray.get(scheduler_of(api).ping.remote(), timeout=120)  # back, and reattached to the runs still under way
        running_at_restart = {s["id"] for s in (owner.get(f"/api/trainings/{job}").json() for job in first_two)
                              if s["status"] == "running"}

        final, _ = wait_for_trainings(owner, jobs, timeout=400)
        watch.stop.set()
        watch.join()
        assert [j["status"] for j in final] == ["succeeded"] * 3, [(j["id"], j["error"]) for j in final]
        for pid, job in zip(projects, jobs, strict=True):
            assert [j["id"] for j in owner.get(f"/api/projects/{pid}/trainings").json()] == [job], "a job was duplicated"
            # reports sent while the scheduler was down are delivered once it is back, maybe after the run's end
            deadline = time.monotonic() + 60
            while len(epochs := [e["epoch"] for e in owner.get(f"/api/trainings/{job}/log", params={"format": "json"}).json()["epochs"]]) < 6:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert sorted(epochs) == [1, 2, 3, 4, 5, 6], f"training {job} trained an epoch twice or lost one: {epochs}"
        for job in first_two:
            log = owner.get(f"/api/trainings/{job}/log").text
            reattached = log.count("the scheduler restarted; reattached to the run")
            # a run that ended while the scheduler was down has nothing to reattach to the second time
            assert reattached == 2 if job in running_at_restart else reattached in (1, 2), log
            assert log.count("started on Ray Train") == 1, "a run was launched twice"
        models = [m["name"] for m in owner.get("/api/models").json()]
        assert len(models) == len(set(models)) == 3, models
        assert set(watch.ended_as) <= {"runner"}, f"a runner was lost with the scheduler: {watch.ended_as}"
        assert watch.leased_twice == [], "a restarted scheduler leased a seat again to a job that held one"
        assert [(lic["id"], lic["leased"]) for lic in owner.get("/api/licenses").json()] == [(license["id"], 0)]
        assert wait_for_an_empty_ledger(api) == {}
        total, free = wait_until_ray_has_everything_back()
        assert free == total, "Ray still holds resources for runs that ended"


def test_a_worker_group_that_cannot_start_is_requeued_within_its_budget_then_fails_and_leaks_nothing(
        two_cpu_ray, tmp_path: Path) -> None:
    from ray.util.placement_group import placement_group, remove_placement_group

    settings = scheduler_settings(tmp_path / "home", max_failures=1, start_timeout_s=3.0)
    outside = placement_group([{"CPU": 1.5}])  # held outside annoray: the ledger sees two free CPUs, Ray half of one
    ray.get(outside.ready())
    try:
        with live_api(settings) as api:
            owner = api.admin
            job = owner.post(f"/api/projects/{german_project(owner)}/trainings", json={}).json()["jobs"][0]["id"]
            (failed,), _ = wait_for_trainings(owner, [job], timeout=180)
            assert failed["status"] == "failed"
            assert failed["error"] == ("[E617] the training run could not start: Ray did not place its worker group within 3 s "
                                       "(something outside the scheduler holds the resources it was given); "
                                       "failure 2 is beyond the retry budget of 1")
            log = owner.get(f"/api/trainings/{job}/log").text
            assert ("[E617] the training run could not start: Ray did not place its worker group within 3 s (something outside "
                    "the scheduler holds the resources it was given); queued again to resume from its last checkpoint "
                    "(failure 1 of a budget of 1)") in log
            assert log.count("started on Ray Train") == 2
            assert wait_for_an_empty_ledger(api) == {}
            assert not has_runner(api, job)
    finally:
        remove_placement_group(outside)
    total, free = wait_until_ray_has_everything_back()
    assert free == total, "the runs that could not start left reservations in Ray"
