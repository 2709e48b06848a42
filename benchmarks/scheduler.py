"""The scheduler under ten thousand queued trainings: decisions per second and submit-to-decision latency.

A local Ray declares a 16-CPU / 64-GB node (logical resources) and NER workers need 8 CPU /
32 GB, so two trainings run (real Ray Train runs) while the rest wait with their reason.

Two phases. Backlog: ``--jobs`` trainings (10,000) are queued with no scheduler running (one
request per project over HTTP, then copies of its job written straight to the database, as
the API writes them: building each one's training data over HTTP would take minutes and
measure the API, not the scheduler); the scheduler then starts and decides them all; jobs
decided per second of that is its decision rate. Live: ``--live`` more (1,000) are submitted
over HTTP from 8 threads, on top of the waiting backlog, while it runs; every job's
``decided_at`` (the scheduler's first start/wait/never decision, stamped when written) against
its ``created_at`` (stamped by the request) gives the p50/p99/max time from submit to decision. The
scheduler's own pass durations (from ``GET /api/cluster``) show how much of that is the pass
itself and how much the wait for the database's write lock and for the two cores, which the API,
the clients and the two running trainings share with it here.

The baseline is the bare placement function (`plan`) deciding the same backlog in this
process, with no database: its decisions per second, and the scheduler's as a ratio of it.
Goal at 10,000 queued: at least 500 decisions/s, and a p99 from submit to decision under 100 ms.

``--database postgresql`` runs it all on a PostgreSQL of the benchmark's own (`chaos.postgres`: initdb and pg_ctl
on PATH) instead of the embedded SQLite.

    python benchmarks/scheduler.py [--jobs 10000] [--live 1000] [--database sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from annoray.api.app import create_app
from annoray.api.server import BackgroundServer
from annoray.platform.settings import ResourceSpec, Settings
from annoray.platform.store.home import init_home
from annoray.platform.store.tables import TrainingJob

sys.path.insert(0, str(Path(__file__).resolve().parent))
import chaos  # noqa: E402  (beside this script: its PostgreSQL of its own)

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
    """Wait until the scheduler has decided every job (ids in one range, counted, not loaded, while waiting); return them."""
    from sqlalchemy import func

    undecided = select(func.count()).where(TrainingJob.id.between(min(ids), max(ids)), TrainingJob.decided_at.is_(None))
    while True:
        with Session(engine) as session:
            if not session.scalar(undecided):
                jobs = list(session.scalars(select(TrainingJob).where(TrainingJob.id.in_(ids)).order_by(TrainingJob.id)))
                session.expunge_all()
                return jobs
        time.sleep(0.05)


def utc(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000, help="trainings queued before the scheduler starts")
    parser.add_argument("--live", type=int, default=1000, help="trainings submitted over HTTP while it runs")
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite",
                        help="the embedded SQLite, or a PostgreSQL of the benchmark's own (initdb, pg_ctl on PATH)")
    args = parser.parse_args()

    import ray

    from annoray.scheduler.start import start_scheduler

    with tempfile.TemporaryDirectory(prefix="annoray-bench-") as tmp, ExitStack() as stack:
        database = stack.enter_context(chaos.postgres())[0] if args.database == "postgresql" else None
        settings = Settings(home=Path(tmp) / "home", database_url=database)
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

            def submit_all(count: int) -> tuple[list[int], float]:
                began = time.perf_counter()
                with ThreadPoolExecutor(args.threads) as pool:
                    ids = list(pool.map(submit, range(count)))
                return ids, time.perf_counter() - began

            # 1. A backlog: the jobs wait in the database for a scheduler, which then decides them all.
            backlog = queue_backlog(engine, [submit(n) for n in range(len(pids))], args.jobs)
            began = time.perf_counter()
            start_scheduler(settings)
            decided(engine, backlog)
            backlog_s = time.perf_counter() - began
            # 2. Live: clients submit while the scheduler runs; each job's latency from its commit to its decision.
            live, submitted_s = submit_all(args.live)
            jobs = decided(engine, live)
            with Session(engine) as session:
                waiting = list(session.scalars(select(TrainingJob).where(TrainingJob.id.in_(backlog[:args.jobs]))))
                session.expunge_all()
            cluster = admin.get("/api/cluster").json()
            for training in cluster["trainings"]:  # the waiting ones go with the process
                admin.post(f"/api/trainings/{training['id']}/cancel")
            admin.close()
        ray.shutdown()
        engine.dispose()

    latency = [(utc(j.decided_at) - utc(j.created_at)).total_seconds() for j in jobs]
    bare = baseline_plan(waiting)
    rate = args.jobs / backlog_s
    print(f"backlog: {args.jobs} queued trainings decided by a starting scheduler in {backlog_s:.2f} s "
          f"({rate:.0f} decisions/s, actor start included)")
    print(f"live: {args.live} trainings submitted over HTTP from {args.threads} threads in {submitted_s:.1f} s "
          f"({args.live / submitted_s:.0f} submissions/s), on top of {args.jobs} waiting")
    print(f"live submit to decision: p50 {percentile(latency, 50) * 1000:.0f} ms  p99 {percentile(latency, 99) * 1000:.0f} ms  "
          f"max {max(latency) * 1000:.0f} ms")
    passes = cluster["passes"]
    print(f"the scheduler's own passes (its last {passes['last']}; {passes['full']} full, {passes['incremental']} incremental "
          f"in all): p50 {passes['p50_ms']} ms  p99 {passes['p99_ms']} ms  max {passes['max_ms']} ms")
    print(f"baseline, the bare placement function on {len(waiting)} pending jobs: {bare:.0f} decisions/s; "
          f"the scheduler deciding a backlog runs at {rate / bare:.4f}x of it")
    print(f"goal at {args.jobs} queued, on {args.database}: >= 500 decisions/s ({'met' if rate >= 500 else 'NOT met'}), "
          f"p99 < 100 ms ({'met' if percentile(latency, 99) < 0.1 else 'NOT met'})")


def queue_backlog(engine, templates: list[int], count: int) -> list[int]:
    """``count`` queued trainings, copies of the template jobs (one per project, made by the API), written in one
    transaction as the API writes each: the job row, created now."""
    from sqlalchemy import insert

    with Session(engine) as session:
        rows = [dict((c.key, getattr(j, c.key)) for c in TrainingJob.__table__.columns if c.key != "id")
                for j in session.scalars(select(TrainingJob).where(TrainingJob.id.in_(templates)))]
    with Session(engine) as session:  # a transaction of its own: a read one could not become a write after another's commit
        copies = []
        for n in range(count - len(rows)):
            row = dict(rows[n % len(rows)])
            row["created_at"] = datetime.now(UTC)
            copies.append(row)
        session.execute(insert(TrainingJob), copies)
        session.commit()
        return list(session.scalars(select(TrainingJob.id).order_by(TrainingJob.id)))


if __name__ == "__main__":
    main()
