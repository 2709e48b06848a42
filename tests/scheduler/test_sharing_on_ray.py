"""Teams on a real Ray (one logical 16-CPU / 64-GB node, trainings of 4 CPU / 8 GB): a team never runs beyond its
quota and borrowing limit, another takes the room it leaves, and a higher priority starts before an older job; over a
random run of bursts from three teams, every training ends and no team ever holds beyond its limit."""

import random
import threading
import time
from pathlib import Path

import pytest

from ..conftest import cancel_all, german_project, live_api, wait_for_trainings
from .test_scheduling_on_ray import LONG, scheduler_of, sized

import ray  # noqa: E402  (a dependency of annoray: never skipped)
pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(600)]


def test_a_team_stays_within_its_quota_others_borrow_the_rest_and_a_higher_priority_goes_first(ray_session, tmp_path: Path) -> None:
    with live_api(sized(tmp_path, "home", cpus=4, memory_gb=8)) as api:
        owner = api.admin
        team = {"name": "clinical", "quota": {"cpus": 8, "memory_gb": 16}, "borrowing_limit": {"cpus": 0, "memory_gb": 0}}
        assert owner.post("/api/teams", json=team).status_code == 201
        clinical = [german_project(owner, f"c{i}") for i in range(3)]
        for pid in clinical:
            assert owner.patch(f"/api/projects/{pid}", json={"team": "clinical"}).status_code == 200
        others = [german_project(owner, f"o{i}") for i in range(4)]

        def train(pid: int, **extra) -> int:
            response = owner.post(f"/api/projects/{pid}/trainings", json=LONG | extra)
            assert response.status_code == 202, response.text
            return response.json()["jobs"][0]["id"]

        mine = [train(pid) for pid in clinical]
        states, _ = wait_for_trainings(owner, mine, until=lambda j: j["status"] in ("running", "waiting"), timeout=120)
        assert sorted(s["status"] for s in states) == ["running", "running", "waiting"]
        over = next(s for s in states if s["status"] == "waiting")
        assert over["reason"].startswith("over quota: team 'clinical' uses 8 CPU / 16 GB of its quota of 8 CPU / 16 GB"), over
        assert over["team"] == "clinical"

        borrowers = [train(pid) for pid in others[:2]]  # the default team only borrows: the 8 CPUs clinical may not take
        wait_for_trainings(owner, borrowers, until=lambda j: j["status"] == "running", timeout=120)
        older = train(others[2])
        time.sleep(1.5)  # a pass or two: the node is full, it waits
        urgent = train(others[3], priority=50)
        assert owner.get(f"/api/trainings/{older}").json()["status"] == "waiting"

        assert owner.post(f"/api/trainings/{borrowers[0]}/cancel").status_code == 200  # 4 CPUs free up
        wait_for_trainings(owner, [urgent], until=lambda j: j["status"] == "running", timeout=120)
        assert owner.get(f"/api/trainings/{older}").json()["status"] == "waiting", "the higher priority went first"
        ledger = ray.get(scheduler_of(api).ledger_view.remote())
        assert sum(a["cpus"] for job, a in ledger.items() if job in mine) == 8, "clinical never beyond its quota"
        teams = {t["name"]: t for t in owner.get("/api/teams").json()}
        assert (teams["clinical"]["usage"]["cpus"], teams["default"]["usage"]["cpus"], teams["default"]["borrowed"]["cpus"]) == (8, 8, 8)

        everything = mine + borrowers + [older, urgent]
        cancel_all(owner, everything)
        final, _ = wait_for_trainings(owner, everything, timeout=120)
        assert {j["status"] for j in final} == {"cancelled"}
        assert ray.get(scheduler_of(api).ledger_view.remote()) == {}


def test_a_random_run_of_bursts_from_three_teams_ends_every_training_and_no_team_passes_its_limit(ray_session, tmp_path: Path) -> None:
    rng = random.Random(7)
    with live_api(sized(tmp_path, "home", cpus=8, memory_gb=16)) as api:  # room for two at once
        owner = api.admin
        limits = {"a": (8, 8), "b": (8, 0)}  # quota and borrowing limit, CPUs (2 GB each); the default team only borrows
        for name, (quota, limit) in limits.items():
            assert owner.post("/api/teams", json={"name": name, "quota": {"cpus": quota, "memory_gb": 2 * quota},
                                                  "borrowing_limit": {"cpus": limit, "memory_gb": 2 * limit}}).status_code == 201
        projects = {}
        for team in ("a", "a", "b", "b", "default", "default"):
            pid = german_project(owner, f"{team}{len(projects)}")
            if team != "default":
                assert owner.patch(f"/api/projects/{pid}", json={"team": team}).status_code == 200
            projects[pid] = team
        peaks: dict[str, float] = {}
        stop = threading.Event()

        def watch() -> None:  # what each team holds, as the scheduler's ledger says, twice a second
            scheduler = scheduler_of(api)
            while not stop.is_set():
                held: dict[str, float] = {}
                for job, allocation in ray.get(scheduler.ledger_view.remote()).items():
                    team = projects[owner_of[job]]
                    held[team] = held.get(team, 0) + allocation["cpus"]
                for team, cpus in held.items():
                    peaks[team] = max(peaks.get(team, 0), cpus)
                time.sleep(0.5)

        owner_of: dict[int, int] = {}
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        for _ in range(2):  # bursts of three (room for two), of random projects, lengths and priorities
            for pid in rng.sample(sorted(projects), 3):
                body = {"params": {"epochs": rng.choice([1, 2]), "batch_size": 8}, "priority": rng.choice([0, 0, 5])}
                response = owner.post(f"/api/projects/{pid}/trainings", json=body)
                assert response.status_code == 202, response.text
                owner_of[response.json()["jobs"][0]["id"]] = pid
            time.sleep(rng.uniform(0.5, 3))
        final, _ = wait_for_trainings(owner, sorted(owner_of), timeout=420)
        stop.set()
        watcher.join()
        assert [j["id"] for j in final if j["status"] != "succeeded"] == [], "no training starves or fails"
        for team, (quota, limit) in limits.items():
            assert peaks.get(team, 0) <= quota + limit, (team, peaks)
        deadline = time.monotonic() + 30  # a run's end leaves the ledger when the scheduler's loop sees its runner end
        while ray.get(scheduler_of(api).ledger_view.remote()) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert ray.get(scheduler_of(api).ledger_view.remote()) == {}
