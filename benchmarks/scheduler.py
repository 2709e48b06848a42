"""The scheduler under 1,000 training submissions: decisions per second and submit-to-decision latency.

A local Ray declares a 16-CPU / 64-GB node (logical resources) and NER workers need 8 CPU /
32 GB, so two trainings run (real Ray Train runs) while the rest wait with their reason.
Clients submit trainings over HTTP from 8 threads across 20 projects, the way API clients do;
every job's ``decided_at`` (the scheduler's first start/wait/never decision, stamped when
written) against its ``created_at`` (stamped by the request) gives the latency.

Two phases. Backlog: 1,000 trainings are submitted with no scheduler running, then the
scheduler starts and decides them all; jobs decided per second of that is its decision rate.
Live: 1,000 more are submitted while it runs; prints submissions per second over HTTP and the
p50/p99/max time from submit to decision. The baseline is the bare placement function's
decisions per second on the same pending jobs in this process, with the ratio to it.

    python benchmarks/scheduler.py [--jobs 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import select

from annoray.api.app import create_app
from annoray.api.server import BackgroundServer
from annoray.platform.settings import ResourceSpec, Settings
from annoray.platform.store.home import init_home
from annoray.platform.store.tables import TrainingJob

GIB = 2**30
CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Labels name="label" toName="text"><Label value="Befund"/></Labels>
</View>"""
FINDINGS = ["Fieber", "Husten", "Übelkeit", "Kopfschmerzen", "Ausschlag", "Müdigkeit", "Schwindel", "Atemnot"]
LONG = {"params": {"epochs": 500, "batch_size": 1}}


def task(finding: str) -> dict:
    text = f"Der Patient klagt seit Montag über {finding} und Schmerzen."
    start = text.index(finding)
    result = {"from_name": "label", "to_name": "text", "type": "labels",
              "value": {"start": start, "end": start + len(finding), "text": finding, "labels": ["Befund"]}}
    return {"data": {"text": text}, "annotations": [{"result": [result]}]}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def baseline_plan(jobs: list[TrainingJob]) -> float:
    """Decisions per second of the bare placement function over the same jobs on the same cluster."""
    from annoray.platform.resources import Resources
    from annoray.scheduler.placement import Node, Pending, plan

    pending = [Pending("training", j.id, Resources.of(j.resources), (j.project_id, j.kind), tuple(j.scopes)) for j in jobs]
    rounds, began = 0, time.perf_counter()
    while time.perf_counter() - began < 2 or rounds < 3:
        nodes = {"head": Node("head", Resources(16, 64 * GIB))}
        plan(pending, nodes, running={})
        rounds += 1
    return rounds * len(pending) / (time.perf_counter() - began)


def decided(engine, ids: list[int]) -> list[TrainingJob]:
    """Wait until the scheduler has decided every job; return them."""
    from sqlalchemy.orm import Session

    while True:
        with Session(engine) as session:
            jobs = list(session.scalars(select(TrainingJob).where(TrainingJob.id.in_(ids)).order_by(TrainingJob.id)))
            session.expunge_all()
        if all(j.decided_at is not None for j in jobs):
            return jobs
        time.sleep(0.1)


def utc(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    import ray

    from annoray.scheduler.factory import start_scheduler

    with tempfile.TemporaryDirectory(prefix="annoray-bench-") as tmp:
        settings = Settings(home=Path(tmp) / "home")
        settings = settings.model_copy(update={"training": settings.training.model_copy(update={
            "resources": settings.training.resources | {"ner": ResourceSpec(cpus=8, memory_gb=32)}})})
        engine = init_home(settings)
        ray.init(address="local", num_cpus=16, _memory=64 * GIB, include_dashboard=False, log_to_driver=False,
                 namespace=settings.scheduler.namespace)
        token = settings.admin_token_path.read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        with BackgroundServer(create_app(settings, engine=engine)) as url:
            admin = httpx.Client(base_url=url, headers=headers, timeout=120)
            pids = []
            for i in range(args.projects):
                pid = admin.post("/api/projects", json={"name": f"p{i}", "language": "de", "labeling_config": CONFIG}).json()["id"]
                admin.post(f"/api/projects/{pid}/tasks/import", json=[task(f) for f in FINDINGS] * 2).raise_for_status()
                pids.append(pid)
            local = threading.local()

            def submit(n: int) -> int:
                if not hasattr(local, "client"):
                    local.client = httpx.Client(base_url=url, headers=headers, timeout=120)
                response = local.client.post(f"/api/projects/{pids[n % len(pids)]}/trainings", json=LONG)
                response.raise_for_status()
                return response.json()["jobs"][0]["id"]

            def submit_all() -> tuple[list[int], float]:
                began = time.perf_counter()
                with ThreadPoolExecutor(args.threads) as pool:
                    ids = list(pool.map(submit, range(args.jobs)))
                return ids, time.perf_counter() - began

            # 1. A backlog: the jobs wait in the database for a scheduler, which then decides them all.
            backlog, _ = submit_all()
            began = time.perf_counter()
            start_scheduler(settings)
            decided(engine, backlog)
            backlog_s = time.perf_counter() - began
            # 2. Live: clients submit while the scheduler runs; each job's latency from its commit to its decision.
            live, submitted_s = submit_all()
            jobs = decided(engine, live)
            for training in admin.get("/api/cluster").json()["trainings"]:  # the waiting ones go with the process
                admin.post(f"/api/trainings/{training['id']}/cancel")
            admin.close()
        ray.shutdown()
        engine.dispose()

    latency = [(utc(j.decided_at) - utc(j.created_at)).total_seconds() for j in jobs]
    bare = baseline_plan(jobs)
    print(f"backlog: {args.jobs} queued trainings decided by a starting scheduler in {backlog_s:.2f} s "
          f"({args.jobs / backlog_s:.0f} decisions/s, actor start included)")
    print(f"live: {args.jobs} trainings submitted over HTTP from {args.threads} threads in {submitted_s:.1f} s "
          f"({args.jobs / submitted_s:.0f} submissions/s)")
    print(f"live submit to decision: p50 {percentile(latency, 50) * 1000:.0f} ms  p99 {percentile(latency, 99) * 1000:.0f} ms  "
          f"max {max(latency) * 1000:.0f} ms")
    print(f"baseline, the bare placement function on {len(jobs)} pending jobs: {bare:.0f} decisions/s; "
          f"the scheduler deciding a backlog runs at {args.jobs / backlog_s / bare:.4f}x of it")


if __name__ == "__main__":
    main()
