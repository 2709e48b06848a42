"""Teams on a real Ray (one logical 16-CPU / 64-GB node, trainings of 4 CPU / 8 GB): a team never runs beyond its
quota and borrowing limit, another takes the room it leaves, and a higher priority starts before an older job."""

import time
from pathlib import Path

import pytest

from ..conftest import german_project, live_api, wait_for_trainings
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
        for job in everything:
            owner.post(f"/api/trainings/{job}/cancel")
        final, _ = wait_for_trainings(owner, everything, timeout=120)
        assert {j["status"] for j in final} == {"cancelled"}
        assert ray.get(scheduler_of(api).ledger_view.remote()) == {}
