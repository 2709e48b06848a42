"""Bulk pre-annotation: throughput against what a user would otherwise run, memory that stays flat with the task
count, and the quality of the confidences that order the uncertainty queue.

Five small spaCy models (two NER, one assertion, two classifiers, trained here in seconds on
clinical-style sentences) are stored in the catalog and served by one Ray Serve application
placed by the scheduler. A project of N tasks is pre-annotated through the API; the job's own
process (the Ray task ``preannotation-job-<id>``) is sampled for its resident memory meanwhile.

Prints, in one run:

- with 1 and 2 replicas of the same server (``--replicas``), tasks per second end to end over the same
  ``--replica-tasks`` tasks, and their ratio (near 2x where the models are what limits; on this 2-core machine
  the job, the API and the database share the cores with the replicas);
- for 10,000 and 100,000 tasks: tasks per second end to end (submit to last prediction written) and the
  peak RSS of the job's process, and their ratio to the baseline: the bare ``nlp.pipe`` of the same five
  models in one process (no confidences, no Ray, no database: what a Label Studio ML backend runs), the
  assertion model over the chunks the NER models found; and the predictor's own code in one process
  (entities with confidences), against the same baseline;
- on NCBI-disease (a blank English NER trained here on 1,500 train sentences, 5 epochs, as ``spacy
  train`` does): sentences per second on the devel split for bare ``nlp.pipe``, the confidences read from
  the greedy parse (today's) and the beam search of width 8 (the earlier ones); for both kinds of
  confidence, the expected calibration error of the entities' confidences (10 bins; an entity is right
  when its span and label are exactly gold's) and the area under the ROC curve of "least confident first"
  finding the sentences with an error (a sentence's uncertainty is 1 - its lowest entity confidence, 0
  with none; an error is any entity missed or wrong).

    python benchmarks/preannotation.py [--sizes 10000 100000] [--replicas 1 2] [--replica-tasks 10000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from annoray.api.app import create_app  # noqa: E402
from annoray.api.server import BackgroundServer  # noqa: E402
from annoray.platform.settings import Settings  # noqa: E402
from annoray.platform.store.home import init_home  # noqa: E402
from tests.conftest import CLINICAL_CONFIG, clinical_sentences, tiny_models  # noqa: E402

GIB = 2**30
BATCH = 128
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

    trained, store = tiny_models(), ModelStore(settings.resolved_model_store)
    with Session(engine) as session:
        for name, kind in MODELS.items():
            session.add(CatalogModel(name=name, kind=kind, labels=LABELS[kind], language="en", engine=f"spacy.{kind}.v1",
                                     source="manual", uri=store.put(trained[kind], name), metrics={}))
        session.commit()


def running_server(client: httpx.Client, name: str, replicas: int = 1) -> int:
    server = client.post("/api/servers", json={"models": list(MODELS), "name": name, "replicas": replicas}).json()
    while client.get(f"/api/servers/{server['id']}").json()["status"] != "running":
        time.sleep(0.5)
    return server["id"]


def platform_run(client: httpx.Client, server_id: int, n: int) -> tuple[float, int]:
    config = CLINICAL_CONFIG.format(rules="", ner="ner_a", assertion="assertion_a", classification="classification_a")
    pid = client.post("/api/projects", json={"name": f"bench-{n}-{server_id}", "labeling_config": config}).json()["id"]
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


def in_process(root: Path, n: int) -> float:
    """The predictor's own code (every model, entities with confidences) in one process: tasks per second."""
    from annoray.serve_apps.predictor import Predictor, ServedModel

    trained = tiny_models()
    predictor = Predictor([ServedModel(name, kind, str(trained[kind])) for name, kind in MODELS.items()])
    all_texts = texts(n)
    began = time.perf_counter()
    for at in range(0, n, BATCH):
        predictor.predict(all_texts[at:at + BATCH])
    return n / (time.perf_counter() - began)


def bare_pipe(root: Path, n: int) -> float:
    """The baseline: each model's plain ``nlp.pipe`` in one process, no confidences; the assertion model over the
    chunks the NER models found (marked, as the predictor marks them). Tasks per second."""
    from annoray.trainers.custom import load_with_code
    from annoray.trainers.engines import mark_chunk

    trained = tiny_models()
    nlps = {name: load_with_code(Path(trained[kind])) for name, kind in MODELS.items()}
    all_texts = texts(n)
    began = time.perf_counter()
    for at in range(0, n, BATCH):
        chunk, marked = all_texts[at:at + BATCH], []
        for name, kind in MODELS.items():
            if kind != "assertion":
                for text, doc in zip(chunk, nlps[name].pipe(chunk, batch_size=64), strict=True):
                    marked += [mark_chunk(text, e.start_char, e.end_char) for e in doc.ents]
        for name in (name for name, kind in MODELS.items() if kind == "assertion"):
            list(nlps[name].pipe(marked, batch_size=64))
    return n / (time.perf_counter() - began)


def calibration_error(confidences: list[float], right: list[bool], bins: int = 10) -> float:
    """Expected calibration error: per bin of confidence, |accuracy - mean confidence|, weighted by the bin's size."""
    c, y = np.array(confidences), np.array(right, dtype=float)
    which = np.minimum((c * bins).astype(int), bins - 1)
    return float(sum(abs(y[which == b].mean() - c[which == b].mean()) * (which == b).sum()
                     for b in range(bins) if (which == b).any()) / len(c))


def ranking_auc(uncertainty: list[float], wrong: list[bool]) -> float:
    """The probability that a sentence with an error is ranked less confident than one without (ties count half)."""
    u, w = np.array(uncertainty), np.array(wrong)
    bad, good = u[w], u[~w]
    return float(((bad[:, None] > good[None, :]).sum() + 0.5 * (bad[:, None] == good[None, :]).sum()) / (len(bad) * len(good)))


def confidence_quality(docs: list[Any], confidences: list[list[float]], gold: list[set[tuple[int, int, str]]]) -> tuple[float, float]:
    """(expected calibration error, AUC of least confident first finding errors)."""
    flat, right, uncertainty, wrong = [], [], [], []
    for doc, scores, truth in zip(docs, confidences, gold, strict=True):
        found = [(e.start_char, e.end_char, e.label_) for e in doc.ents]
        flat += scores
        right += [f in truth for f in found]
        uncertainty.append(1 - min(scores) if scores else 0.0)
        wrong.append(set(found) != truth)
    return calibration_error(flat, right), ranking_auc(uncertainty, wrong)


def ncbi_confidences(work: Path, rounds: int = 3) -> dict[str, Any]:
    """Train a blank English NER on 1,500 NCBI sentences, then time and score confidences on the devel split."""
    import spacy

    from annoray.platform.labeling.conll import conll_to_tasks
    from annoray.serve_apps.confidence import beam_confidences, pipe_with_confidence
    from benchmarks.ncbi_ner import DATA, spacy_baseline, spans

    devel = conll_to_tasks(DATA / "devel.tsv")
    work.mkdir(parents=True, exist_ok=True)
    f1, _ = spacy_baseline(conll_to_tasks(DATA / "train.tsv")[:1500], devel, 5, work)
    nlp = spacy.load(work / "out" / "model-last")
    sentences, gold = [t["data"]["text"] for t in devel], [set(spans(t)) for t in devel]

    def bare() -> tuple[list[Any], list[list[float]]]:
        return list(nlp.pipe(sentences, batch_size=64)), []

    def greedy() -> tuple[list[Any], list[list[float]]]:
        pairs = list(pipe_with_confidence(nlp, sentences, 64))
        return [d for d, _ in pairs], [c for _, c in pairs]

    def beam() -> tuple[list[Any], list[list[float]]]:
        docs = list(nlp.pipe(sentences, batch_size=64))
        return docs, [c for at in range(0, len(docs), 64) for c in beam_confidences(nlp.get_pipe("ner"), docs[at:at + 64])]

    best: dict[str, float] = {}
    results: dict[str, tuple[list[Any], list[list[float]]]] = {}
    for _ in range(rounds):  # interleaved, the best of each: the machine is shared
        for name, run in (("bare", bare), ("greedy", greedy), ("beam", beam)):
            began = time.perf_counter()
            results[name] = run()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - began)
    assert [[(e.start, e.end, e.label_) for e in d.ents] for d in results["greedy"][0]] == \
        [[(e.start, e.end, e.label_) for e in d.ents] for d in results["bare"][0]], "the greedy pass finds what nlp.pipe finds"
    return {"f1": f1, "sentences": len(sentences), **{f"{k}_rate": len(sentences) / v for k, v in best.items()},
            **{f"{k}_quality": confidence_quality(*results[k], gold) for k in ("greedy", "beam")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--baseline-tasks", type=int, default=10_000)
    parser.add_argument("--replicas", type=int, nargs="*", default=[1, 2], help="replica counts to compare")
    parser.add_argument("--replica-tasks", type=int, default=10_000)
    args = parser.parse_args()

    import ray

    from annoray.scheduler.start import start_scheduler

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
            by_replicas = {}
            for replicas in args.replicas:  # one server at a time: the two cores hold two replicas at most
                server_id = running_server(client, f"five-{replicas}", replicas)
                by_replicas[replicas] = platform_run(client, server_id, args.replica_tasks)[0]
                client.delete(f"/api/servers/{server_id}")
            server_id = running_server(client, "five")
            results = {n: platform_run(client, server_id, n) for n in args.sizes}
            client.delete(f"/api/servers/{server_id}")
        ray.shutdown()
        base = bare_pipe(root / "models", args.baseline_tasks)
        ours = in_process(root / "models", args.baseline_tasks)
        ncbi = ncbi_confidences(root / "ncbi")
        engine.dispose()

    for replicas, rate in by_replicas.items():
        print(f"{replicas} replica{'s' if replicas > 1 else ''}: {rate:6.0f} tasks/s end to end over {args.replica_tasks:,} tasks"
              f" ({rate / by_replicas[min(by_replicas)]:.2f}x {min(by_replicas)})")
    for n, (rate, peak) in results.items():
        print(f"{n:>7} tasks: {rate:6.0f} tasks/s end to end (HTTP -> scheduler -> job -> Serve -> database), "
              f"{rate / base:.2f}x the baseline; peak RSS of the job's process {peak / 2**20:.0f} MiB")
    sizes = sorted(results)
    if len(sizes) > 1:
        print(f"peak memory ratio {sizes[-1]:,} / {sizes[0]:,} tasks: {results[sizes[-1]][1] / results[sizes[0]][1]:.2f} (flat is 1)")
    print(f"baseline: the same five models with bare nlp.pipe in one process: {base:.0f} tasks/s")
    print(f"the predictor in one process (entities with confidences): {ours:.0f} tasks/s, {ours / base:.2f}x the baseline")
    print(f"NCBI-disease devel ({ncbi['sentences']} sentences; NER F1 {ncbi['f1']:.3f}): bare nlp.pipe {ncbi['bare_rate']:.0f} sentences/s")
    for name, what in (("greedy", "confidences from the greedy parse (now)"), ("beam", "beam search of width 8 (before)")):
        ece, auc = ncbi[f"{name}_quality"]
        print(f"  {what:<42} {ncbi[f'{name}_rate']:6.0f} sentences/s ({ncbi[f'{name}_rate'] / ncbi['bare_rate']:.2f}x bare); "
              f"calibration error {ece:.3f}; AUC least confident first finds errors {auc:.3f}")


if __name__ == "__main__":
    main()
