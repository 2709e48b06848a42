"""Bulk pre-annotation with a five-model server: throughput, and memory that stays flat with the task count.

Five small spaCy models (two NER, one assertion, two classifiers, trained here in seconds on
clinical-style sentences) are stored in the catalog and served by one Ray Serve application
placed by the scheduler. A project of N tasks is pre-annotated through the API; the job's own
process (the Ray task ``preannotation-job-<id>``) is sampled for its resident memory meanwhile.

Prints, for 10,000 and 100,000 tasks: tasks per second end to end (submit to last prediction
written) and the peak RSS of the job's process; then the baseline: the same five models run with
spaCy's ``nlp.pipe`` in one process over the same texts (the predictor's own code, no Ray, no
database), and the ratio of the platform's throughput to it.

    python benchmarks/preannotation.py [--sizes 10000 100000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from annoray.api.app import create_app  # noqa: E402
from annoray.api.server import BackgroundServer  # noqa: E402
from annoray.platform.settings import Settings  # noqa: E402
from annoray.platform.store.home import init_home  # noqa: E402
from tests.conftest import CLINICAL_CONFIG, clinical_sentences, tiny_models  # noqa: E402

GIB = 2**30
MODELS = {"ner_a": "ner", "ner_b": "ner", "assertion_a": "assertion", "classification_a": "classification",
          "classification_b": "classification"}
LABELS = {"ner": ["Drug"], "assertion": ["present", "absent"], "classification": ["cardiology", "neurology"]}


def texts(n: int) -> list[str]:
    rows = [t for t, *_ in clinical_sentences()]
    return [f"{rows[i % len(rows)]} Visit {i}." for i in range(n)]


class PeakRss(threading.Thread):
    """Samples the resident memory of the process running ``preannotation-job-<id>`` until stopped."""

    def __init__(self, job_id: int):
        super().__init__(daemon=True)
        self.job_id, self.peak, self.stop = job_id, 0, threading.Event()

    def run(self) -> None:
        markers = (f"preannotation-job-{self.job_id}".encode(), b"run_preannotation_job")  # the task's name, or its function's
        while not self.stop.is_set():
            for proc in Path("/proc").iterdir():  # Linux: read the process table directly, no extra dependency
                try:
                    if proc.name.isdigit() and any(m in (proc / "cmdline").read_bytes() for m in markers):
                        rss = next(line for line in (proc / "status").read_text().splitlines() if line.startswith("VmRSS:"))
                        self.peak = max(self.peak, int(rss.split()[1]) * 1024)
                except (OSError, StopIteration):
                    continue
            time.sleep(0.2)


def register(settings: Settings, engine, root: Path) -> None:
    from sqlalchemy.orm import Session

    from annoray.platform.store.tables import CatalogModel
    from annoray.trainers.store import ModelStore

    trained, store = tiny_models(root), ModelStore(settings.resolved_model_store)
    with Session(engine) as session:
        for name, kind in MODELS.items():
            session.add(CatalogModel(name=name, kind=kind, labels=LABELS[kind], language="en", engine=f"spacy.{kind}.v1",
                                     source="manual", uri=store.put(trained[kind], name), metrics={}))
        session.commit()


def platform_run(client: httpx.Client, server_id: int, n: int) -> tuple[float, int]:
    config = CLINICAL_CONFIG.format(rules="", ner="ner_a", assertion="assertion_a", classification="classification_a")
    pid = client.post("/api/projects", json={"name": f"bench-{n}", "labeling_config": config}).json()["id"]
    all_texts = texts(n)
    for at in range(0, n, 10_000):
        client.post(f"/api/projects/{pid}/tasks/import", json=[{"data": {"text": t}} for t in all_texts[at:at + 10_000]]).raise_for_status()
    began = time.perf_counter()
    job = client.post(f"/api/projects/{pid}/preannotations", json={"server_id": server_id}).json()
    sampler = PeakRss(job["id"])
    sampler.start()
    while (state := client.get(f"/api/preannotations/{job['id']}").json())["status"] not in ("succeeded", "failed"):
        time.sleep(0.5)
    seconds = time.perf_counter() - began
    sampler.stop.set()
    sampler.join()
    assert state["status"] == "succeeded" and state["done"] == n, state
    return n / seconds, sampler.peak


def baseline(root: Path, n: int) -> float:
    from annoray.serve_apps.predictor import Predictor, ServedModel

    trained = tiny_models(root)
    predictor = Predictor([ServedModel(name, kind, str(trained[kind])) for name, kind in MODELS.items()])
    batch, all_texts = 128, texts(n)
    began = time.perf_counter()
    for at in range(0, n, batch):
        predictor.predict(all_texts[at:at + batch])
    return n / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--baseline-tasks", type=int, default=10_000)
    args = parser.parse_args()

    import ray

    from annoray.scheduler.factory import start_scheduler

    with tempfile.TemporaryDirectory(prefix="annoray-bench-") as tmp:
        root = Path(tmp)
        settings = Settings(home=root / "home")
        engine = init_home(settings)
        register(settings, engine, root / "models")
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, namespace=settings.scheduler.namespace)
        start_scheduler(settings)
        token = settings.admin_token_path.read_text().strip()
        with BackgroundServer(create_app(settings, engine=engine)) as url:
            client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=600)
            server = client.post("/api/servers", json={"models": list(MODELS), "name": "five"}).json()
            while client.get(f"/api/servers/{server['id']}").json()["status"] != "running":
                time.sleep(0.5)
            results = {n: platform_run(client, server["id"], n) for n in args.sizes}
            client.delete(f"/api/servers/{server['id']}")
        ray.shutdown()
        base = baseline(root / "models", args.baseline_tasks)
        engine.dispose()

    for n, (rate, peak) in results.items():
        print(f"{n:>7} tasks: {rate:6.0f} tasks/s end to end (HTTP -> scheduler -> job -> Serve -> database), "
              f"peak RSS of the job's process {peak / 2**20:.0f} MiB")
    sizes = sorted(results)
    if len(sizes) > 1:
        print(f"peak memory ratio {sizes[-1]:,} / {sizes[0]:,} tasks: {results[sizes[-1]][1] / results[sizes[0]][1]:.2f} (flat is 1)")
    print(f"baseline: the same five models with nlp.pipe in one process: {base:.0f} tasks/s; "
          f"platform / baseline at {sizes[-1]:,} tasks: {results[sizes[-1]][0] / base:.2f}x")


if __name__ == "__main__":
    main()
