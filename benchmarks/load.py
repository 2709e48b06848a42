"""Many API clients at once: requests per second, latency and errors under a realistic mix, SQLite and PostgreSQL.

Each database gets a fresh ``annoray up`` (the API in a process of its own, with its scheduler actor on this
command's Ray, so trainings really run). Five NER projects are made, each with annotated tasks and ten members
(managers, so they may train). Then every client, with its own user's token, makes ``--requests`` requests, each
drawn from a fixed mix:

- list a page of tasks (40%), submit a completion (33%), poll the project's trainings and one job (20%),
- request a training of one epoch (2%; they run, on this command's Ray, and queue behind each other per project),
- follow a training's log live for one second at most (5%).

The same mix is run first by one client alone, the baseline, then by ``--clients`` clients together. It prints, per
database, requests per second, p50/p99 latency overall and per action, refusals (4xx), errors (5xx and transport
errors), and each figure of the loaded run as a ratio of the baseline's. Every 5xx is a defect.

    python benchmarks/load.py [--clients 50] [--requests 20] [--databases sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import builtins
import contextlib
import functools
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chaos import FINDINGS, NER_CONFIG, finding_task, postgres, wait  # noqa: E402

from annoray.api.server import free_port  # noqa: E402

GIB = 2**30
PROJECTS, MEMBERS = 5, 10
MIX = [("list tasks", 40), ("submit completion", 33), ("poll jobs", 20), ("request training", 2), ("follow log", 5)]


@dataclass
class Tally:
    """Every request's action, status (0 for a transport error) and seconds."""

    records: list[tuple[str, int, float]] = field(default_factory=list)
    wall_s: float = 0.0

    def latencies(self, action: str | None = None) -> list[float]:
        return sorted(s for a, _, s in self.records if action in (None, a))

    def count(self, low: int, high: int) -> int:
        return sum(1 for _, status, _ in self.records if low <= status < high)

    @property
    def rps(self) -> float:
        return len(self.records) / self.wall_s


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


@contextlib.contextmanager
def api_up(home: Path, ray_address: str, database_url: str | None) -> Iterator[str]:
    """A fresh ``annoray up`` on this Ray (a scheduler of its own), answering at the URL it yields."""
    port = free_port()
    env = os.environ | {"ANNORAY_SCHEDULER__NAME": f"load-{uuid.uuid4().hex[:8]}", "ANNORAY_SCHEDULER__NAMESPACE": "annoray-load",
                        "RAY_AUTH_MODE": "token"}
    if database_url:
        env["ANNORAY_DATABASE_URL"] = database_url
    log = open(home.parent / f"{home.name}.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen([sys.executable, "-m", "annoray.api.cli", "up", "--home", str(home), "--port", str(port),
                             "--address", ray_address], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait("the API", lambda: proc.poll() is not None or _ready(url), timeout=300, every=0.5)
        if proc.poll() is not None:
            raise RuntimeError((home.parent / f"{home.name}.log").read_text()[-3000:])
        yield url
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/health/ready", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def set_up(url: str, admin_token: str, clients: int) -> list[tuple[str, int, list[tuple[int, str]]]]:
    """Projects with annotated tasks and their members: each client's (token, project id, its tasks' ids and texts)."""
    admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=120)
    projects: list[tuple[int, list[int]]] = []
    for p in range(PROJECTS):
        pid = admin.post("/api/projects", json={"name": f"load {p}", "labeling_config": NER_CONFIG, "language": "de"}).json()["id"]
        admin.post(f"/api/projects/{pid}/tasks/import", json=[finding_task(f) for f in FINDINGS] * 4).raise_for_status()
        tasks = admin.get(f"/api/projects/{pid}/tasks", params={"page_size": 100}).json()["items"]
        projects.append((pid, [(t["id"], t["data"]["text"]) for t in tasks]))
    seats: list[tuple[str, int, list[tuple[int, str]]]] = []
    for c in range(max(clients, PROJECTS * MEMBERS)):
        pid, tasks = projects[c % PROJECTS]
        user = admin.post("/api/users", json={"username": f"client-{uuid.uuid4().hex[:8]}"}).json()
        admin.post(f"/api/projects/{pid}/members", json={"username": user["username"], "role": "manager"}).raise_for_status()
        seats.append((user["token"], pid, tasks))
    return seats[:clients]


async def client_run(url: str, seat: tuple[str, int, list[tuple[int, str]]], requests: int, tally: Tally, seed: int) -> None:
    token, pid, tasks = seat
    rng = random.Random(seed)
    actions, weights = zip(*MIX, strict=True)
    jobs: list[int] = []
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        for _ in range(requests):
            action = rng.choices(actions, weights)[0]
            started = time.perf_counter()
            try:
                status = await act(http, action, pid, tasks, jobs, rng)
            except httpx.TransportError:
                status = 0
            tally.records.append((action, status, time.perf_counter() - started))


async def act(http: httpx.AsyncClient, action: str, pid: int, tasks: list[tuple[int, str]], jobs: list[int], rng: random.Random) -> int:
    if action == "list tasks":
        return (await http.get(f"/api/projects/{pid}/tasks", params={"page": rng.randint(1, 2), "page_size": 20})).status_code
    if action == "submit completion":
        tid, text = rng.choice(tasks)
        finding = next(f for f in FINDINGS if f in text)
        start = text.index(finding)
        result = [{"from_name": "label", "to_name": "text", "type": "labels", "value": {
            "start": start, "end": start + len(finding), "text": finding, "labels": ["Befund"]}}]
        return (await http.post(f"/api/projects/{pid}/tasks/{tid}/completions",
                                json={"result": result, "status": "submitted"})).status_code
    if action == "request training":
        answer = await http.post(f"/api/projects/{pid}/trainings", json={"kinds": ["ner"], "params": {"epochs": 1}})
        if answer.status_code == 202:
            jobs.extend(j["id"] for j in answer.json()["jobs"])
        return answer.status_code
    if action == "poll jobs":
        answer = await http.get(f"/api/projects/{pid}/trainings")
        if answer.status_code == 200 and (history := answer.json()):
            jobs.append(rng.choice(history)["id"])
            answer = await http.get(f"/api/trainings/{jobs[-1]}")
        return answer.status_code
    # follow a log: a known job's, for one second at most (the stream stays open while the training runs)
    if not jobs:
        return (await http.get(f"/api/projects/{pid}/trainings")).status_code
    async with http.stream("GET", f"/api/trainings/{rng.choice(jobs)}/log", params={"follow": "true"}) as stream:
        with contextlib.suppress(TimeoutError):  # a running training's stream stays open: leave it after a second
            async with asyncio.timeout(1.0):
                async for _ in stream.aiter_lines():
                    pass
        return stream.status_code


async def run_clients(url: str, seats: list[tuple[str, int, list[tuple[int, str]]]], requests: int) -> Tally:
    tally = Tally()
    started = time.perf_counter()
    await asyncio.gather(*(client_run(url, seat, requests, tally, seed) for seed, seat in enumerate(seats)))
    tally.wall_s = time.perf_counter() - started
    return tally


def report(database: str, clients: int, base: Tally, loaded: Tally) -> bool:
    p = percentile
    print = functools.partial(builtins.print, flush=True)  # noqa: A001 (a long run shows each database as it ends)
    print(f"\n{database}: {clients} clients, {len(loaded.records)} requests in {loaded.wall_s:.1f} s "
          f"(baseline: 1 client, {len(base.records)} requests in {base.wall_s:.1f} s)")
    print(f"  {'':<20} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'4xx':>5} {'5xx':>5} {'transport':>10}")
    for name, t in (("1 client", base), (f"{clients} clients", loaded)):
        lat = t.latencies()
        print(f"  {name:<20} {t.rps:>11.1f} {p(lat, 50) * 1e3:>8.1f} {p(lat, 99) * 1e3:>8.1f} {t.count(400, 500):>5} "
              f"{t.count(500, 600):>5} {t.count(0, 1):>10}")
    base_lat, lat = base.latencies(), loaded.latencies()
    print(f"  {'ratio':<20} {loaded.rps / base.rps:>10.2f}x {p(lat, 50) / p(base_lat, 50):>7.2f}x "
          f"{p(lat, 99) / p(base_lat, 99):>7.2f}x")
    print(f"  per action ({clients} clients): count, p50 ms, p99 ms, statuses")
    by_action: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, Counter[int]] = defaultdict(Counter)
    for action, status, seconds in loaded.records:
        by_action[action].append(seconds)
        statuses[action][status] += 1
    for action, _ in MIX:
        if values := sorted(by_action[action]):
            codes = " ".join(f"{code}x{n}" for code, n in sorted(statuses[action].items()))
            print(f"    {action:<18} {len(values):>5} {p(values, 50) * 1e3:>8.1f} {p(values, 99) * 1e3:>8.1f}  {codes}")
    return not (loaded.count(500, 600) or loaded.count(0, 1) or base.count(500, 600) or base.count(0, 1))


def run_database(database: str, work: Path, ray_address: str, clients: int, requests: int) -> bool:
    with contextlib.nullcontext() if database == "sqlite" else postgres() as pg:
        database_url = pg[0] if pg else None
        home = work / database
        with api_up(home, ray_address, database_url) as url:
            seats = set_up(url, (home / "admin.token").read_text().strip(), clients)
            base = asyncio.run(run_clients(url, seats[:1], requests))
            loaded = asyncio.run(run_clients(url, seats, requests))
            cancel_trainings(url, (home / "admin.token").read_text().strip())
            return report(database, clients, base, loaded)


def cancel_trainings(url: str, admin_token: str) -> None:
    """The trainings still queued or running are cancelled, so that they do not weigh on the next database's run."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=120) as admin:
        cluster = admin.get("/api/cluster").json()
        for job in cluster["trainings"] + cluster["queue"]:
            admin.post(f"/api/trainings/{job['id']}/cancel")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20, help="requests per client")
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    import ray

    ray.init(address="local", num_cpus=8, _memory=32 * GIB, include_dashboard=False, log_to_driver=False,
             namespace="annoray-load")
    work = Path(tempfile.mkdtemp(prefix="annoray-load-"))
    ok = [False]
    try:
        ok = [run_database(db, work, ray.get_runtime_context().gcs_address, args.clients, args.requests)
              for db in args.databases.split(",")]
    finally:
        ray.shutdown()
        if all(ok):
            shutil.rmtree(work, ignore_errors=True)
    print("\nno 5xx and no transport error" if all(ok) else f"\nERRORS: see the 5xx and transport columns, and the API logs in {work}")
    sys.exit(0 if all(ok) else 1)


if __name__ == "__main__":
    main()
