"""Faults with real work in flight: what is lost, duplicated or leaked, and how long recovery takes.

Each fault runs its workload twice in one command: once undisturbed (the baseline) and once with the fault. It prints,
per fault, the jobs (or tasks) lost and duplicated and the licence seats leaked (all must be 0), the time from the
fault to the platform answering again, and the faulted run's duration as a ratio of the baseline's.

- the API process killed (SIGKILL) during a 50,000-task import: all or nothing; the client looks, then sends again
  only what did not land;
- the API process killed during a training request: the client sends it again with the same Idempotency-Key and
  gets the one job;
- the scheduler actor killed while a server deploys: the server ends running, holding its seat once;
- the scheduler actor killed while a pre-annotation job runs: every task predicted exactly once;
- the model store made unwritable when a training ends: the training fails with the reason, no catalog entry and no
  half-written model;
- PostgreSQL (one of its own, from initdb) stopped for 20 s and started again while a training runs and a
  pre-annotation job streams: the job resumes where it stopped, the training goes on, each task predicted once;
- a worker node removed (``ray.cluster_utils.Cluster``, a Ray of its own) while it holds a server's replica that a
  pre-annotation job streams through and a training: the server deploys again on the other node and the job resumes,
  the training resumes there from its last checkpoint.

    python benchmarks/chaos.py [--tasks 50000] [--only import,request,deploy,preannotation,store,postgres,node]

The tests (tests/test_chaos.py) run the same faults, smaller, and assert the counts.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from annoray.api.server import free_port

GIB = 2**30
NER_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Labels name="label" toName="text"><Label value="Befund"/></Labels>
</View>"""
FINDINGS = ["Fieber", "Husten", "Übelkeit", "Kopfschmerzen", "Ausschlag", "Müdigkeit", "Schwindel", "Atemnot"]


@dataclass
class Outcome:
    fault: str
    lost: int
    duplicated: int
    seats_leaked: int
    recover_s: float
    baseline_s: float
    faulted_s: float
    note: str = ""

    def row(self) -> str:
        ratio = self.faulted_s / self.baseline_s if self.baseline_s else float("nan")
        return (f"{self.fault:<44} {self.lost:>5} {self.duplicated:>11} {self.seats_leaked:>13} {self.recover_s:>11.1f} "
                f"{ratio:>9.2f}x  {self.note}")


def finding_task(finding: str, annotated: bool = True) -> dict:
    text = f"Der Patient klagt seit Montag über {finding} und Schmerzen."
    start = text.index(finding)
    task: dict = {"data": {"text": text}}
    if annotated:
        task["annotations"] = [{"result": [{"from_name": "label", "to_name": "text", "type": "labels", "value": {
            "start": start, "end": start + len(finding), "text": finding, "labels": ["Befund"]}}]}]
    return task


def wait(what: str, check: Callable[[], object], timeout: float = 300, every: float = 0.2) -> object:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        time.sleep(every)
    return found


# --- the API process killed -----------------------------------------------------------------------------------

SERVE = """
import sys, uvicorn
from annoray.api.app import create_app
from annoray.platform.settings import Settings
uvicorn.run(create_app(Settings(home=sys.argv[1])), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


class ApiProcess:
    """The API alone in a process of its own (no scheduler: what it queues waits in the database), to kill -9."""

    def __init__(self, home: Path):
        from annoray.platform.settings import Settings
        from annoray.platform.store.home import init_home

        self.home, self.port = home, free_port()
        init_home(Settings(home=home)).dispose()
        self.token = (home / "admin.token").read_text().strip()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        """Start it and return the seconds until it answers."""
        started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-c", SERVE, str(self.home), str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait("the API", self._live, timeout=60, every=0.05)
        return time.monotonic() - started

    def _live(self) -> bool:
        try:
            return httpx.get(f"{self.url}/api/health/live", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=600)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


def api_killed_during_import(work: Path, tasks: int = 50_000) -> Outcome:
    api = ApiProcess(work / "import")
    api.start()
    items = [finding_task(f"{FINDINGS[i % len(FINDINGS)]} {i}", annotated=i % 10 == 0) for i in range(tasks)]
    body = json.dumps(items).encode()
    try:
        with api.client() as client:
            project = lambda name: client.post("/api/projects", json={"name": name, "labeling_config": NER_CONFIG}).json()["id"]  # noqa: E731
            started = time.monotonic()
            assert client.post(f"/api/projects/{project('baseline')}/tasks/import", content=body,
                               headers={"content-type": "application/json"}).status_code == 201
            baseline = time.monotonic() - started
            pid = project("faulted")

        def send() -> None:
            try:
                with api.client() as c:
                    c.post(f"/api/projects/{pid}/tasks/import", content=body, headers={"content-type": "application/json"})
            except httpx.TransportError:
                pass  # the process died under it

        started = time.monotonic()
        sender = threading.Thread(target=send)
        sender.start()
        time.sleep(baseline * 0.7)  # well into the import: parsed, checked, rows being written
        api.kill()
        sender.join()
        recover = api.start()
        with api.client() as client:
            landed = client.get(f"/api/projects/{pid}/tasks", params={"page_size": 1}).json()["total"]
            if landed == 0:  # nothing landed: the client sends it again
                client.post(f"/api/projects/{pid}/tasks/import", content=body, headers={"content-type": "application/json"})
            final = client.get(f"/api/projects/{pid}/tasks", params={"page_size": 1}).json()["total"]
            leaked = seats_left(client)
        faulted = time.monotonic() - started
        return Outcome("API killed during a %d-task import" % tasks, lost=tasks - final if final < tasks else 0,
                       duplicated=max(0, final - tasks), seats_leaked=leaked, recover_s=recover, baseline_s=baseline,
                       faulted_s=faulted, note=f"{'partial' if landed not in (0, tasks) else 'all or nothing'}: {landed} had landed")
    finally:
        api.stop()


def api_killed_during_training_request(work: Path, rounds: int = 10) -> Outcome:
    """Kill the API at a different moment of each request; after the restart a client that got no answer asks
    again: every project ends with exactly one queued training."""
    api = ApiProcess(work / "request")
    api.start()
    lost = duplicated = 0
    recover_total = baseline_total = faulted_total = 0.0
    try:
        for i in range(rounds):
            with api.client() as client:
                twin, pid = (client.post("/api/projects", json={"name": f"p{i}{n}", "labeling_config": NER_CONFIG}).json()["id"]
                             for n in "ab")
                for project in (twin, pid):
                    client.post(f"/api/projects/{project}/tasks/import", json=[finding_task(f) for f in FINDINGS] * 2)
                started = time.monotonic()
                client.post(f"/api/projects/{twin}/trainings", json={"kinds": ["ner"]})  # the same request, undisturbed
                baseline_total += time.monotonic() - started

            key = {"Idempotency-Key": f"nightly-{i}"}

            def send(pid: int = pid) -> None:
                try:
                    with api.client() as c:
                        c.post(f"/api/projects/{pid}/trainings", json={"kinds": ["ner"]}, headers=key)
                except httpx.TransportError:
                    pass

            started = time.monotonic()
            sender = threading.Thread(target=send)
            sender.start()
            time.sleep(0.005 * i)  # from before the request arrives to after it is answered
            api.kill()
            sender.join()
            recover_total += api.start()
            with api.client() as client:  # no answer came: the client sends the request again, with the same key
                again = client.post(f"/api/projects/{pid}/trainings", json={"kinds": ["ner"]}, headers=key)
                jobs = client.get(f"/api/projects/{pid}/trainings").json()
            faulted_total += time.monotonic() - started
            lost += len(jobs) == 0 or again.status_code != 202
            duplicated += max(0, len(jobs) - 1)
        return Outcome(f"API killed during a training request (x{rounds})", lost, duplicated, 0, recover_total / rounds,
                       baseline_total, faulted_total)
    finally:
        api.stop()


# --- the scheduler actor killed, the model store unwritable (a real Ray) ----------------------------------------

@contextmanager
def platform(home: Path, database_url: str | None = None, **training: object) -> Iterator[tuple[httpx.Client, object]]:
    """An API in this process with a scheduler actor of its own on the connected Ray, a licence of its own."""
    from annoray.api.app import create_app
    from annoray.api.server import BackgroundServer
    from annoray.platform.access.licenses import public_key_text, sign_license
    from annoray.platform.settings import Settings
    from annoray.platform.store.home import init_home
    from annoray.scheduler.start import start_scheduler, stop_scheduler
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    settings = Settings(home=home, database_url=database_url)
    settings = settings.model_copy(update={
        "scheduler": settings.scheduler.model_copy(update={"name": f"chaos-{uuid.uuid4().hex[:8]}", "namespace": "annoray-chaos"}),
        "licenses": settings.licenses.model_copy(update={"issuers": {"chaos": public_key_text(key)}}),
        "training": settings.training.model_copy(update=training),
    })
    engine = init_home(settings)
    start_scheduler(settings)
    token = settings.admin_token_path.read_text().strip()
    try:
        with BackgroundServer(create_app(settings, engine=engine)) as url:
            client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120)
            document = sign_license({"id": f"chaos-{uuid.uuid4().hex[:6]}", "issuer": "chaos", "scopes": ["healthcare:*"], "seats": 4,
                                     "expires_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(), "licensee": "chaos"}, key)
            assert client.post("/api/licenses", json=document).status_code == 201
            yield client, settings
    finally:
        stop_scheduler(settings)
        engine.dispose()


def scheduler_of(settings: object) -> object:
    import ray

    return ray.get_actor(settings.scheduler.name, namespace=settings.scheduler.namespace)  # type: ignore[attr-defined]


def kill_scheduler(settings: object) -> float:
    """Kill the scheduler actor (Ray restarts it); the seconds until it answers again."""
    import ray

    started = time.monotonic()
    ray.kill(scheduler_of(settings), no_restart=False)
    wait("the scheduler", lambda: _answers(settings), timeout=120, every=0.1)
    return time.monotonic() - started


def _answers(settings: object) -> bool:
    import ray

    try:
        return ray.get(scheduler_of(settings).ping.remote(), timeout=2) == "ok"  # type: ignore[attr-defined]
    except Exception:  # restarting
        return False


def trained_project(client: httpx.Client, name: str) -> int:
    """A healthcare project with a NER model trained on Ray and deployed on it."""
    pid = client.post("/api/projects", json={"name": name, "labeling_config": NER_CONFIG, "model_type": "healthcare",
                                             "language": "de"}).json()["id"]
    client.post(f"/api/projects/{pid}/tasks/import", json=[finding_task(f) for f in FINDINGS] * 3)
    (job,) = client.post(f"/api/projects/{pid}/trainings", json={"params": {"epochs": 4}, "deploy": "force"}).json()["jobs"]
    done = wait("the training", lambda: (j := client.get(f"/api/trainings/{job['id']}").json())["status"] in
                ("succeeded", "failed", "cancelled") and j, timeout=600)
    assert done["status"] == "succeeded", done  # type: ignore[index]
    return pid


@functools.cache
def finding_model() -> Path:
    """A German NER pipeline of findings, trained in this process once (seconds) with the platform's own engine: what
    the faults that serve a model serve, imported as a team imports a pipeline made elsewhere."""
    from annoray.platform.labeling.datasets import NerExample
    from annoray.platform.models.training import TrainingParams
    from annoray.trainers.engines import MODEL_DIR, EngineConfig, SpacyNer

    work = Path(tempfile.mkdtemp(prefix="chaos-model-"))
    atexit.register(shutil.rmtree, work, True)
    examples = []
    for i, task in enumerate(finding_task(f) for f in FINDINGS * 3):
        span = task["annotations"][0]["result"][0]["value"]
        examples.append(NerExample(i, i, task["data"]["text"], [(span["start"], span["end"], "Befund")]))
    for _ in SpacyNer(EngineConfig(language="de", labels=["Befund"])).train(
            train=examples, dev=[], params=TrainingParams(epochs=12, batch_size=4, dropout=0.1), output_dir=work):
        pass
    return work / MODEL_DIR


def served_project(client: httpx.Client, name: str, tasks: int) -> tuple[int, list[int]]:
    """A healthcare project whose config names an imported NER model (`finding_model`), and ``tasks`` tasks to
    pre-annotate with it."""
    model = f"ner_{name}"
    created = client.post("/api/models/import", json={"name": model, "uri": str(finding_model()), "engine": "spacy"})
    assert created.status_code == 201, created.text
    config = NER_CONFIG.replace('<Label value="Befund"/>', f'<Label value="Befund" model="{model}"/>')
    pid = client.post("/api/projects", json={"name": name, "labeling_config": config, "model_type": "healthcare",
                                             "language": "de"}).json()["id"]
    ids = client.post(f"/api/projects/{pid}/tasks/import", json=[
        finding_task(f"{FINDINGS[i % 8]} {i}", annotated=False) for i in range(tasks)]).json()["task_ids"]
    return pid, ids


def predictions_per_task(settings: object, task_ids: list[int]) -> list[int]:
    from sqlalchemy import func, select

    from annoray.platform.store.db import create_db_engine
    from annoray.platform.store.tables import Prediction

    engine = create_db_engine(settings.resolved_database_url)  # type: ignore[attr-defined]
    with engine.connect() as db:
        found = dict(db.execute(select(Prediction.task_id, func.count()).where(Prediction.task_id.in_(task_ids))
                                .group_by(Prediction.task_id)).all())
    engine.dispose()
    return [found.get(t, 0) for t in task_ids]


def server_status(client: httpx.Client, sid: int) -> str:
    return client.get(f"/api/servers/{sid}").json()["status"]


def leased(client: httpx.Client) -> int:
    return sum(lic["leased"] for lic in client.get("/api/licenses").json())


def seats_left(client: httpx.Client, timeout: float = 60) -> int:
    """Seats still leased once every server and training is gone (the scheduler's pass gives them back)."""
    deadline = time.monotonic() + timeout
    while (n := leased(client)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return n


def scheduler_killed_during_deploy_and_preannotation(work: Path, tasks: int = 2000, *, baseline: bool = True) -> list[Outcome]:
    with platform(work / "scheduler") as (client, settings):
        pid, both = served_project(client, "klinik", 2 * tasks)
        outcomes, baseline_deploy, baseline_job = [], 0.0, 0.0
        for faulted in (False, True) if baseline else (True,):
            ids = both[tasks:] if faulted else both[:tasks]
            started = time.monotonic()
            server = client.post("/api/servers", json={"project_id": pid, "name": f"s{int(faulted)}"}).json()
            recover = 0.0
            if faulted:
                wait("deploying", lambda: server_status(client, server["id"]) == "deploying", every=0.05)
                recover = kill_scheduler(settings)
            wait("running", lambda: server_status(client, server["id"]) in ("running", "failed"), timeout=300)
            deployed = time.monotonic() - started
            ok = server_status(client, server["id"]) == "running"
            seats_during = leased(client)
            if not faulted:
                baseline_deploy = deployed
            else:
                deploy = Outcome("scheduler killed while a server deploys", lost=int(not ok), duplicated=max(0, seats_during - 1),
                                 seats_leaked=-1, recover_s=recover, baseline_s=baseline_deploy, faulted_s=deployed,
                                 note=f"seats held while it runs: {seats_during} (1 expected)")  # leaked: once it is deleted
            started = time.monotonic()
            job = client.post(f"/api/projects/{pid}/preannotations", json={"server_id": server["id"], "task_ids": ids}).json()
            if faulted:
                wait("progress", lambda: client.get(f"/api/preannotations/{job['id']}").json()["done"] > tasks // 10, every=0.05)
                recover = kill_scheduler(settings)
            end = wait("the job", lambda: (j := client.get(f"/api/preannotations/{job['id']}").json())["status"] in
                       ("succeeded", "failed") and j, timeout=900)
            took = time.monotonic() - started
            counts = predictions_per_task(settings, ids)
            assert client.delete(f"/api/servers/{server['id']}").status_code == 204
            if not faulted:
                baseline_job = took
                continue
            deploy.seats_leaked = leaked = seats_left(client)  # the faulted server and its job are gone: none should be held
            outcomes.append(deploy)
            outcomes.append(Outcome("scheduler killed during a %d-task pre-annotation" % tasks,
                                    lost=sum(c == 0 for c in counts), duplicated=sum(max(0, c - 1) for c in counts),
                                    seats_leaked=leaked,
                                    recover_s=recover, baseline_s=baseline_job, faulted_s=took,
                                    note=f"job {end['status']}"))  # type: ignore[index]
        return outcomes


def model_store_unwritable(work: Path, *, baseline: bool = True) -> Outcome:
    """Replace the model store with a file while a training runs (root may write anywhere, a file stops everyone)."""
    with platform(work / "store") as (client, settings):
        store = Path(settings.resolved_model_store)  # type: ignore[attr-defined]
        started = time.monotonic()
        if baseline:
            trained_project(client, "ok")
        baseline_s = time.monotonic() - started
        pid = client.post("/api/projects", json={"name": "store", "labeling_config": NER_CONFIG, "language": "de",
                                                 "model_type": "healthcare"}).json()["id"]
        client.post(f"/api/projects/{pid}/tasks/import", json=[finding_task(f) for f in FINDINGS] * 3)
        models_before = {m["name"] for m in client.get("/api/models").json()}
        started = time.monotonic()
        (job,) = client.post(f"/api/projects/{pid}/trainings", json={"params": {"epochs": 4}}).json()["jobs"]
        wait("running", lambda: client.get(f"/api/trainings/{job['id']}").json()["status"] == "running", every=0.05)
        moved = store.with_name("models-moved")
        store.mkdir(parents=True, exist_ok=True)
        store.rename(moved)
        store.write_text("the model store is not writable now\n")
        end = wait("the training", lambda: (j := client.get(f"/api/trainings/{job['id']}").json())["status"] in
                   ("succeeded", "failed", "cancelled") and j, timeout=600)
        took = time.monotonic() - started
        store.unlink()
        moved.rename(store)
        new_models = {m["name"] for m in client.get("/api/models").json()} - models_before
        half_written = [p for p in store.iterdir() if p.name not in models_before]
        failed_with_reason = end["status"] == "failed" and bool(end["error"])  # type: ignore[index]
        return Outcome("model store unwritable when a training ends", lost=int(not failed_with_reason),
                       duplicated=len(new_models) + len(half_written), seats_leaked=leased(client),
                       recover_s=0.0, baseline_s=baseline_s, faulted_s=took,
                       note=f"failed: {str(end['error'])[:300]}")  # type: ignore[index]


@contextmanager
def postgres() -> Iterator[tuple[str, Callable[[], None], Callable[[], None]]]:
    """A PostgreSQL of its own (initdb, as the postgres user when run as root): its URL, and how to stop and start it."""
    import pwd

    root = Path(tempfile.mkdtemp(prefix="annoray-pg-"))  # not under ``work``: that may be private to root
    os.chmod(root, 0o755)
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (root, sock):
            os.chown(path, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()

    def run(*cmd: str) -> None:
        done = subprocess.run(prefix + list(cmd), capture_output=True, text=True, cwd=root)
        if done.returncode:
            raise RuntimeError(done.stderr)

    def start() -> None:
        run("pg_ctl", "-D", str(data), "-l", str(root / "log"), "-w", "-o",
            f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", "start")

    run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
    start()
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", lambda: run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"), start
    finally:
        run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def postgres_stopped(work: Path, tasks: int = 2000, down_s: float = 20, *, baseline: bool = True) -> Outcome:
    """PostgreSQL stopped for ``down_s`` seconds while a training runs and a pre-annotation job streams, then started."""
    with postgres() as (url, stop, start), platform(work / "outage", database_url=url) as (client, settings):
        pid, ids = served_project(client, "klinik", 2 * tasks)
        server = client.post("/api/servers", json={"project_id": pid, "name": "s"}).json()
        wait("running", lambda: server_status(client, server["id"]) == "running", timeout=300)
        took = []
        for faulted, part in ((False, ids[:tasks]), (True, ids[tasks:]))[0 if baseline else 1:]:
            other = client.post("/api/projects", json={"name": f"long{int(faulted)}", "labeling_config": NER_CONFIG,
                                                       "language": "de", "model_type": "healthcare"}).json()["id"]
            client.post(f"/api/projects/{other}/tasks/import", json=[finding_task(f) for f in FINDINGS] * 3)
            (training,) = client.post(f"/api/projects/{other}/trainings", json={"params": {"epochs": 30}}).json()["jobs"]
            started = time.monotonic()
            job = client.post(f"/api/projects/{pid}/preannotations", json={"server_id": server["id"], "task_ids": part}).json()
            recover = 0.0
            if faulted:
                wait("progress", lambda: client.get(f"/api/preannotations/{job['id']}").json()["done"] > tasks // 10, every=0.05)
                stop()
                time.sleep(down_s)
                start()
                back = time.monotonic()
                wait("ready", lambda: _ready(client), timeout=120)
                recover = time.monotonic() - back
            end = wait("the job", lambda: (j := client.get(f"/api/preannotations/{job['id']}").json())["status"] in
                       ("succeeded", "failed") and j, timeout=900)
            trained = wait("the training", lambda: (j := client.get(f"/api/trainings/{training['id']}").json())["status"] in
                           ("succeeded", "failed", "cancelled") and j, timeout=900)
            took.append(time.monotonic() - started - (down_s if faulted else 0))
        counts = predictions_per_task(settings, ids[tasks:])
        assert client.delete(f"/api/servers/{server['id']}").status_code == 204
        lost = sum(c == 0 for c in counts) + (trained["status"] != "succeeded") + (end["status"] != "succeeded")  # type: ignore[index]
        return Outcome(f"PostgreSQL stopped {down_s:.0f} s (a {tasks}-task job, a training)", lost=lost,
                       duplicated=sum(max(0, c - 1) for c in counts), seats_leaked=seats_left(client), recover_s=recover,
                       baseline_s=took[0] if baseline else 0.0, faulted_s=took[-1],
                       note=f"job {end['status']}, training {trained['status']}; time without the outage itself")  # type: ignore[index]


@contextmanager
def two_workers(cpus: int = 2, memory_gb: int = 8) -> Iterator[object]:
    """A Ray of its own, in place of any: a head with no CPUs (the scheduler, the runners and the job tasks live
    there, needing none) and two worker nodes of ``cpus`` CPU / ``memory_gb`` GB, where trainings and servers go."""
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster

    def shutdown() -> None:  # Serve first: its driver-side handle would look current to the next Ray (same job id)
        if ray.is_initialized():
            serve.shutdown()
        ray.shutdown()

    shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "memory": 2 * GIB})
    for _ in range(2):
        cluster.add_node(num_cpus=cpus, memory=memory_gb * GIB)
    ray.init(address=cluster.address, namespace="annoray-chaos", log_to_driver=False)
    cluster.wait_for_nodes()
    try:
        yield cluster
    finally:
        shutdown()
        cluster.shutdown()


def worker_node_removed(work: Path, tasks: int = 2000, *, baseline: bool = True) -> Outcome:
    """The worker node that holds a server's replica and a training removed while a pre-annotation job streams
    through that server and the training runs (best fit puts both on one node): the server deploys again on the
    other node and the job resumes; the training resumes there from its last checkpoint."""
    with two_workers() as cluster, platform(work / "nodes") as (client, settings):
        pid, ids = served_project(client, "klinik", 2 * tasks)
        server = client.post("/api/servers", json={"project_id": pid, "name": "s"}).json()
        wait("running", lambda: server_status(client, server["id"]) == "running", timeout=300)
        took, recover, ends = [], 0.0, {}
        for faulted in (False, True) if baseline else (True,):
            part = ids[tasks:] if faulted else ids[:tasks]
            other = client.post("/api/projects", json={"name": f"long{int(faulted)}", "labeling_config": NER_CONFIG,
                                                       "language": "de", "model_type": "healthcare"}).json()["id"]
            client.post(f"/api/projects/{other}/tasks/import", json=[finding_task(f) for f in FINDINGS] * 3)
            started = time.monotonic()
            (training,) = client.post(f"/api/projects/{other}/trainings", json={"params": {"epochs": 20}}).json()["jobs"]
            job = client.post(f"/api/projects/{pid}/preannotations", json={"server_id": server["id"], "task_ids": part}).json()
            if faulted:
                node = client.get(f"/api/servers/{server['id']}").json()["node_id"]
                wait("the training's first epoch on the server's node", lambda: (j := client.get(f"/api/trainings/{training['id']}").json())
                     ["progress"]["epoch"] >= 1 and j["node_id"] == node, timeout=300, every=0.1)
                wait("progress", lambda: client.get(f"/api/preannotations/{job['id']}").json()["done"] > tasks // 10, every=0.05)
                gone = time.monotonic()
                cluster.remove_node(next(n for n in cluster.worker_nodes if n.node_id == node))
                wait("the server on another node", lambda: (s := client.get(f"/api/servers/{server['id']}").json())["status"] == "running"
                     and s["node_id"] != node, timeout=300, every=0.1)
                recover = time.monotonic() - gone
            ends = {"job": wait("the job", lambda: (j := client.get(f"/api/preannotations/{job['id']}").json())["status"] in
                                ("succeeded", "failed") and j, timeout=900),
                    "training": wait("the training", lambda: (j := client.get(f"/api/trainings/{training['id']}").json())["status"] in
                                     ("succeeded", "failed", "cancelled") and j, timeout=900)}
            took.append(time.monotonic() - started)
        counts = predictions_per_task(settings, ids[tasks:])
        assert client.delete(f"/api/servers/{server['id']}").status_code == 204
        lost = sum(c == 0 for c in counts) + sum(end["status"] != "succeeded" for end in ends.values())  # type: ignore[index]
        log = client.get(f"/api/trainings/{ends['training']['id']}/log").text  # type: ignore[index]
        return Outcome(f"node removed (a {tasks}-task job, a training)", lost=lost,
                       duplicated=sum(max(0, c - 1) for c in counts), seats_leaked=seats_left(client), recover_s=recover,
                       baseline_s=took[0], faulted_s=took[-1],
                       note=f"job {ends['job']['status']}, training {ends['training']['status']}"  # type: ignore[index]
                            + ("; resumed from its checkpoint" if "[E613]" in log else "; NOT requeued by E613"))


def _ready(client: httpx.Client) -> bool:
    try:
        return client.get("/api/health/ready").status_code == 200
    except httpx.TransportError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=50_000, help="tasks of the killed import")
    parser.add_argument("--preannotate", type=int, default=2000, help="tasks of the pre-annotation job")
    parser.add_argument("--only", default="import,request,deploy,preannotation,store,postgres,node")
    args = parser.parse_args()
    only = set(args.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="annoray-chaos-"))
    outcomes: list[Outcome] = []
    try:
        if "import" in only:
            outcomes.append(api_killed_during_import(work, args.tasks))
        if "request" in only:
            outcomes.append(api_killed_during_training_request(work))
        if only & {"deploy", "preannotation", "store", "postgres"}:
            import ray

            os.environ.setdefault("RAY_DEDUP_LOGS", "0")
            ray.init(address="local", num_cpus=8, _memory=32 * GIB, include_dashboard=False, log_to_driver=False,
                     namespace="annoray-chaos")
            if only & {"deploy", "preannotation"}:
                outcomes += scheduler_killed_during_deploy_and_preannotation(work, args.preannotate)
            if "store" in only:
                outcomes.append(model_store_unwritable(work))
            if "postgres" in only:
                outcomes.append(postgres_stopped(work, args.preannotate))
        if "node" in only:  # a Ray of its own, with worker nodes to remove
            outcomes.append(worker_node_removed(work, args.preannotate))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'fault':<44} {'lost':>5} {'duplicated':>11} {'seats leaked':>13} {'recover s':>11} {'vs baseline':>10}")
    for outcome in outcomes:
        print(outcome.row())
    bad = [o.fault for o in outcomes if o.lost or o.duplicated or o.seats_leaked]
    print("every count is 0" if not bad else f"NOT 0: {bad}")


if __name__ == "__main__":
    main()
