"""Two API processes on one PostgreSQL and one Ray, started together: the schema is migrated once and the admin made
once; trainings, cancels and pre-annotation requested through either are run once by the one scheduler."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from annoray.api.server import free_port
from annoray.platform.settings import Settings

from ..conftest import ENDED, Api, clinic, german_project, register_models, wait_for_trainings

import ray  # noqa: E402  (a dependency of annoray: never skipped)
pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(900)]


def start_api(home: Path, port: int, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "annoray.api.cli", "up", "--home", str(home), "--port", str(port),
                             "--address", env["RAY_ADDRESS"]], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_ready(procs: list[subprocess.Popen], urls: list[str], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    for proc, url in zip(procs, urls, strict=True):
        while True:
            try:
                if httpx.get(f"{url}/api/health/ready", timeout=10).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(proc.stdout.read().decode()[-4000:] if proc.poll() is not None else f"{url} not ready")
            time.sleep(0.5)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)  # several API processes need a database server
def test_two_api_processes_share_one_database_and_one_scheduler(ray_session, database_url: str, tmp_path: Path) -> None:
    from annoray.scheduler.factory import stop_scheduler

    home, name = tmp_path / "home", f"scheduler-{uuid.uuid4().hex[:8]}"
    env = os.environ | {"ANNORAY_DATABASE_URL": database_url, "ANNORAY_SCHEDULER__NAME": name,
                        "ANNORAY_SCHEDULER__NAMESPACE": "annoray-tests", "RAY_AUTH_MODE": "token",
                        "RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    procs = [start_api(home, port, env) for port in ports]  # together: both race to migrate and to make the admin
    try:
        wait_ready(procs, urls)
        engine = create_engine(database_url)
        with engine.connect() as db:
            assert db.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
            assert db.execute(text("SELECT count(*) FROM users WHERE is_admin")).scalar_one() == 1
        token = (home / "admin.token").read_text().strip()
        a, b = (httpx.Client(base_url=u, headers={"Authorization": f"Bearer {token}"}, timeout=60) for u in urls)

        # Pre-annotation: a project made through A, a server deployed through B, two jobs, one through each.
        through_a = Api(urls[0], a, engine, settings=Settings(home=home, database_url=database_url))
        register_models(through_a)
        pid = clinic(through_a, "clinic", copies=4)
        task_ids = [t["id"] for t in a.get(f"/api/projects/{pid}/tasks", params={"page_size": 1000}).json()["items"]]
        server = b.post("/api/servers", json={"project_id": pid, "name": "shared"}).json()
        deadline = time.monotonic() + 240
        while (status := a.get(f"/api/servers/{server['id']}").json()["status"]) not in ("running", "failed"):
            assert time.monotonic() < deadline, status
            time.sleep(0.5)
        assert status == "running"
        half = len(task_ids) // 2
        jobs = [client.post(f"/api/projects/{pid}/preannotations", json={"server_id": server["id"], "task_ids": ids}).json()
                for client, ids in ((a, task_ids[:half]), (b, task_ids[half:]))]
        for job in jobs:
            deadline = time.monotonic() + 300
            while (state := b.get(f"/api/preannotations/{job['id']}").json())["status"] not in ENDED:
                assert time.monotonic() < deadline, state
                time.sleep(0.5)
            assert (state["status"], state["failed"]) == ("succeeded", 0), state
        with engine.connect() as db:
            per_task = db.execute(text("SELECT task_id, count(*) FROM predictions WHERE project_id = :p GROUP BY task_id"),
                                  {"p": pid}).all()
        assert sorted(t for t, _ in per_task) == sorted(task_ids) and {n for _, n in per_task} == {1}, "each task once"

        # Trainings: one requested through each process; the one through A cancelled through B.
        first = a.post(f"/api/projects/{german_project(a, 'eins')}/trainings", json={"params": {"epochs": 500}}).json()
        second = b.post(f"/api/projects/{german_project(b, 'zwei')}/trainings", json={"params": {"epochs": 2}}).json()
        first_id, second_id = first["jobs"][0]["id"], second["jobs"][0]["id"]
        wait_for_trainings(a, [first_id], until=lambda j: j["status"] == "running")
        assert b.post(f"/api/trainings/{first_id}/cancel").status_code == 200
        ended, _ = wait_for_trainings(b, [first_id, second_id], timeout=400)
        assert [j["status"] for j in ended] == ["cancelled", "succeeded"], ended
        with engine.connect() as db:
            assert db.execute(text("SELECT count(*) FROM training_jobs")).scalar_one() == 2
            assert db.execute(text("SELECT attempts FROM training_jobs ORDER BY id")).scalars().all() == [0, 0]
            assert db.execute(text("SELECT count(*) FROM models")).scalar_one() == 3 + 1, "the three served and one trained"
        assert a.get("/api/cluster").json()["trainings"] == [] and a.get("/api/health/ready").status_code == 200
        engine.dispose()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
        stop_scheduler(Settings(home=home).model_copy(update={"scheduler": Settings().scheduler.model_copy(
            update={"name": name, "namespace": "annoray-tests"})}))
