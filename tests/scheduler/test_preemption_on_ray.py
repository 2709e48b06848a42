"""Preemption on a real Ray (one logical 16-CPU / 64-GB node, trainings of 8 CPU / 16 GB: room for two): a borrowing
training is stopped for a higher priority and, later, for a team reclaiming its quota; the preempted training is
queued again without a failure counted, shows in the queue with why it waits, and resumes from its last checkpoint
to succeed, with no epoch trained twice. With `scheduler.preempt_servers`, a borrowing server is preempted too."""

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from ..cli.test_commands import annoray, ok
from ..conftest import german_project, live_api, signed_in, wait_for, wait_for_trainings
from .test_scheduling_on_ray import LONG, scheduler_of, sized

import ray  # noqa: E402  (a dependency of annoray: never skipped)
pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(600)]

SHORT = {"params": {"epochs": 12, "batch_size": 1}}  # long enough to be stopped in the middle


def test_a_borrower_is_preempted_by_priority_then_by_a_reclaiming_team_and_resumes_where_it_stopped(ray_session, tmp_path: Path) -> None:
    with live_api(sized(tmp_path, "home", cpus=8, memory_gb=16)) as api:
        owner = api.admin
        for name in ("research", "clinical"):
            team = {"name": name, "quota": {"cpus": 8, "memory_gb": 16}, "borrowing_limit": {"cpus": 0, "memory_gb": 0}}
            assert owner.post("/api/teams", json=team).status_code == 201
        research, clinical = german_project(owner, "r"), german_project(owner, "c")
        for pid, team in ((research, "research"), (clinical, "clinical")):
            assert owner.patch(f"/api/projects/{pid}", json={"team": team}).status_code == 200
        low, high = german_project(owner, "low"), german_project(owner, "high")  # the default team: it only borrows

        def log_of(job: int) -> dict:
            return owner.get(f"/api/trainings/{job}/log", params={"format": "json"}).json()

        def train(pid: int, body: dict, **extra) -> int:
            response = owner.post(f"/api/projects/{pid}/trainings", json=body | extra)
            assert response.status_code == 202, response.text
            return response.json()["jobs"][0]["id"]

        borrower, mine = train(low, SHORT), train(research, LONG)
        wait_for_trainings(owner, [borrower], until=lambda j: j["progress"].get("epoch", 0) >= 2, timeout=180)
        wait_for_trainings(owner, [mine], until=lambda j: j["status"] == "running", timeout=60)

        urgent = train(high, LONG, priority=50)  # the node is full: the borrower of a lower priority makes room
        (stopped, started), _ = wait_for_trainings(owner, [borrower, urgent], until=lambda j: j["status"] != "running"
                                                   if j["id"] == borrower else j["status"] == "running", timeout=120)
        assert (stopped["status"] in ("queued", "waiting"), stopped["preemptions"], stopped["attempts"]) == (True, 1, 0), stopped
        assert owner.get(f"/api/trainings/{mine}").json()["attempts"] == 0
        (line,) = log_of(borrower)["preemptions"]
        assert line["by"] == {"id": urgent, "team": "default", "priority": 50} and line["why"] == "priority" and line["at"]
        assert log_of(urgent)["preempting"][0]["victims"] == [borrower]
        assert owner.get(f"/api/trainings/{mine}").json()["status"] == "running", "research runs within its quota"

        reclaimer = train(clinical, LONG, priority=50)  # clinical takes back its quota from a borrower of no higher priority
        (reclaimed, running), _ = wait_for_trainings(owner, [urgent, reclaimer], until=lambda j: j["status"] != "running"
                                                     if j["id"] == urgent else j["status"] == "running", timeout=120)
        assert reclaimed["preemptions"] == 1 and reclaimed["status"] in ("queued", "waiting"), reclaimed
        (line,) = log_of(urgent)["preemptions"]
        assert line["by"] == {"id": reclaimer, "team": "clinical", "priority": 50} and line["why"] == "reclaim"
        queue = wait_for(api, "/api/queue", lambda q: len(q) == 2 and all(x["position"] and x["waits"] for x in q), timeout=30)
        assert [(q["id"], q["position"], q["team"], q["priority"], q["waits"], q["preemptions"]) for q in queue] == [
            (urgent, 1, "default", 50, "waiting to borrow", 1), (borrower, 2, "default", 0, "waiting to borrow", 1)], queue
        printed = json.loads(ok(annoray(api, "queue", "--json")))  # the CLI: the same rows, and a table of them
        assert [(q["id"], q["position"], q["waits"], q["preemptions"]) for q in printed] == [
            (urgent, 1, "waiting to borrow", 1), (borrower, 2, "waiting to borrow", 1)]
        table = ok(annoray(api, "queue"))  # its width is the terminal's: cells may wrap
        assert table.splitlines()[0].strip() == "queue" and "┏" in table and "position" not in table
        page = signed_in(api, owner).get("/ui/clusters").text  # the Clusters page: the same rows
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", page.split('<table class="queue">')[1].split("</table>")[0])]
        assert cells[:10] == ["1", str(urgent), str(high), "ner", "default", "50", "waiting", "waiting to borrow", "1 time",
                              queue[0]["reason"]], cells
        ledger = ray.get(scheduler_of(api).ledger_view.remote())
        assert sorted(ledger) == sorted([mine, reclaimer]), "each team within its quota, nobody borrowing"

        expected = {'annoray_team_preemptions_total{team="default"}': 2, 'annoray_team_usage{resource="cpus",team="clinical"}': 8}
        metrics = team_metrics(lambda m: all(m.get(k) == v for k, v in expected.items()))  # as Prometheus scrapes them
        assert {k: metrics.get(k) for k in expected} == expected, metrics
        assert metrics['annoray_team_quota{resource="cpus",team="research"}'] == 8
        assert metrics['annoray_team_borrowed{resource="cpus",team="research"}'] == 0
        assert metrics['annoray_team_waiting{team="default"}'] == 2

        for job in (mine, reclaimer):  # room again: the urgent one resumes first, then the borrower
            assert owner.post(f"/api/trainings/{job}/cancel").status_code == 200
        (done,), _ = wait_for_trainings(owner, [borrower], timeout=300)
        assert done["status"] == "succeeded" and done["preemptions"] == 1 and done["attempts"] == 0, done
        epochs = log_of(borrower)["epochs"]
        assert [e["epoch"] for e in epochs] == list(range(1, 13)), "each epoch once: resumed from the last checkpoint"
        pids = [e["worker"]["pid"] for e in epochs]
        assert len(set(pids)) == 2 and pids[0] != pids[-1], "a second worker took over where the first stopped"
        owner.post(f"/api/trainings/{urgent}/cancel")
        wait_for_trainings(owner, [urgent], timeout=120)
        assert ray.get(scheduler_of(api).ledger_view.remote()) == {}


def team_metrics(until: Callable[[dict[str, float]], bool], timeout: float = 60) -> dict[str, float]:
    """The per-team samples on this Ray node's metrics endpoint (labels sorted, Ray's own dropped), once ``until``
    holds for them (Ray exports every few seconds: a pass's gauges reach it later)."""
    import time

    import httpx

    port = ray._private.worker._global_node.metrics_export_port
    deadline = time.monotonic() + timeout
    while True:
        samples = {}
        for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text.splitlines():
            if m := re.match(r"ray_(annoray_team_\w+)\{(.*)\} ([\d.e+-]+)$", line):  # Ray prefixes "ray_"
                labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
                kept = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k in ("team", "resource"))
                samples[f"{m.group(1)}{{{kept}}}"] = float(m.group(3))
        if until(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(1)


def test_with_the_setting_a_borrowing_server_is_preempted_for_a_reclaiming_team_and_deploys_again(ray_session, tmp_path: Path) -> None:
    from annoray.platform.settings import ResourceSpec

    from ..api.test_model_import import outside_pipeline

    settings = sized(tmp_path, "home", cpus=8, memory_gb=16)
    settings = settings.model_copy(update={
        "scheduler": settings.scheduler.model_copy(update={"preempt_servers": True}),
        "servers": settings.servers.model_copy(update={"resources": settings.servers.resources | {"text": ResourceSpec(cpus=8, memory_gb=16)}})})
    with live_api(settings) as api:
        owner = api.admin
        assert owner.post("/api/teams", json={"name": "clinical", "quota": {"cpus": 16, "memory_gb": 32}}).status_code == 201
        assert owner.post("/api/models/import", json={"name": "disease_outside", "uri": str(outside_pipeline(tmp_path / "m"))}).status_code == 201
        config = ('<View><Text name="text" value="$text"/><Labels name="label" toName="text">'
                  '<Label value="Disease" model="disease_outside"/></Labels></View>')
        served = owner.post("/api/projects", json={"name": "outside", "labeling_config": config}).json()["id"]
        server = owner.post("/api/servers", json={"project_id": served, "name": "outside"}).json()
        wait_for(api, f"/api/servers/{server['id']}", lambda s: s["status"] == "running", timeout=240)  # the default team: it borrows

        first, second = german_project(owner, "c1"), german_project(owner, "c2")
        for pid in (first, second):
            assert owner.patch(f"/api/projects/{pid}", json={"team": "clinical"}).status_code == 200
        mine = [owner.post(f"/api/projects/{pid}/trainings", json=LONG).json()["jobs"][0]["id"] for pid in (first, second)]
        wait_for_trainings(owner, mine, until=lambda j: j["status"] == "running", timeout=180)  # the second took the server's room
        preempted = owner.get(f"/api/servers/{server['id']}").json()
        assert preempted["status"] == "queued" and preempted["reason"].startswith("waiting for 8 CPU"), preempted
        assert ray.get(scheduler_of(api).servers_view.remote()) == {}, "its room went to the reclaiming team"
        assert owner.post(f"/api/trainings/{mine[0]}/cancel").status_code == 200  # room again: it deploys again
        back = wait_for(api, f"/api/servers/{server['id']}", lambda s: s["status"] == "running", timeout=240)
        assert [m["name"] for m in back["models"]] == ["disease_outside"]
        owner.post(f"/api/trainings/{mine[1]}/cancel")
        wait_for_trainings(owner, mine, timeout=120)
