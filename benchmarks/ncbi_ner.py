"""NER on NCBI-disease: the platform, end to end over HTTP, against spaCy's own `spacy train`.

Both train a blank English NER pipeline with no vectors for the same number of epochs on the
train split and are scored on the devel split with the same strict entity-level F1 (as
conlleval). The baseline is `spacy train` with the default efficiency NER config
(`spacy init config --pipeline ner --optimize efficiency`). The platform run goes through
everything a user's request does: import over HTTP, a training request, the scheduler, a Ray
Train run, the model store and the catalog.

Prints both F1 scores and their difference, both wall times, and the platform's overhead:
its wall time over the bare training loop's (the sum of its epochs) and over `spacy train`.
Then the platform trains again with 2 CPUs allocated instead of 1 (its thread pools sized from
the allocation) and prints seconds per epoch with each and their ratio.

    python benchmarks/ncbi_ner.py [--epochs 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from annoray.api.app import create_app
from annoray.api.server import BackgroundServer
from annoray.platform.labeling.conll import conll_to_tasks
from annoray.platform.settings import Settings
from annoray.platform.store.home import init_home
from annoray.trainers.metrics import ner_metrics

DATA = Path(__file__).parent / "data" / "ncbi_disease"
CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Labels name="label" toName="text"><Label value="Disease"/></Labels>
</View>"""


def spans(task: dict) -> list[tuple[int, int, str]]:
    return [(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in task["annotations"][0]["result"]]


def spacy_baseline(train: list[dict], devel: list[dict], epochs: int, work: Path) -> tuple[float, float]:
    """`spacy train` with the default efficiency NER config; returns (devel F1, wall seconds)."""
    import spacy
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    for name, tasks in (("train", train), ("dev", devel)):
        docs = DocBin()
        for task in tasks:
            doc = nlp.make_doc(task["data"]["text"])
            doc.ents = [doc.char_span(s, e, label=label) for s, e, label in spans(task)]
            docs.add(doc)
        docs.to_disk(work / f"{name}.spacy")
    subprocess.run([sys.executable, "-m", "spacy", "init", "config", "-F", "--lang", "en", "--pipeline", "ner",
                    "--optimize", "efficiency", str(work / "config.cfg")], check=True, capture_output=True)
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "spacy", "train", str(work / "config.cfg"), "--output", str(work / "out"),
                    "--paths.train", str(work / "train.spacy"), "--paths.dev", str(work / "dev.spacy"),
                    f"--training.max_epochs={epochs}", "--training.max_steps=0", "--training.patience=0"],
                   check=True, capture_output=True)
    seconds = time.perf_counter() - began
    model = spacy.load(work / "out" / "model-last")
    predicted = [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in model.pipe(t["data"]["text"] for t in devel)]
    return ner_metrics([spans(t) for t in devel], predicted, ["Disease"])["micro"]["f1"], seconds


def platform_run(train: list[dict], devel: list[dict], epochs: int, work: Path, cpus: int = 1) -> tuple[float, float, float]:
    """Import, request and wait, all over HTTP, the NER job allocated ``cpus``; returns (devel F1, wall seconds from
    request to model, epoch seconds)."""
    import ray

    from annoray.platform.settings import ResourceSpec
    from annoray.scheduler.start import start_scheduler

    settings = Settings(home=work / f"home-{cpus}")
    settings = settings.model_copy(update={"training": settings.training.model_copy(update={
        "resources": settings.training.resources | {"ner": ResourceSpec(cpus=cpus, memory_gb=2)}})})
    engine = init_home(settings)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, namespace=settings.scheduler.namespace)
    start_scheduler(settings)
    token = settings.admin_token_path.read_text().strip()
    with BackgroundServer(create_app(settings, engine=engine)) as url:
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=300)
        pid = client.post("/api/projects", json={"name": "ncbi", "labeling_config": CONFIG}).json()["id"]
        client.post(f"/api/projects/{pid}/tasks/import", json=train + devel).raise_for_status()
        began = time.perf_counter()
        response = client.post(f"/api/projects/{pid}/trainings", json={
            "split": "tags", "params": {"epochs": epochs, "learning_rate": 0.001, "batch_size": 32, "dropout": 0.1}})
        response.raise_for_status()
        job_id = response.json()["jobs"][0]["id"]
        while (job := client.get(f"/api/trainings/{job_id}").json())["status"] not in ("succeeded", "failed", "cancelled"):
            time.sleep(1)
        seconds = time.perf_counter() - began
        if job["status"] != "succeeded":
            raise SystemExit(f"the platform's training {job['status']}: {job['error']}")
        log = client.get(f"/api/trainings/{job_id}/log", params={"format": "json"}).json()
        epoch_seconds = sum(e["seconds"] for e in log["epochs"])
        f1 = client.get(f"/api/models/{job['model']}").json()["metrics"]["micro"]["f1"]
    ray.shutdown()
    return f1, seconds, epoch_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    train = conll_to_tasks(DATA / "train.tsv", tags=["train"])
    devel = conll_to_tasks(DATA / "devel.tsv", tags=["test"])
    print(f"NCBI-disease: {len(train)} train / {len(devel)} devel sentences, {args.epochs} epochs, blank English NER, no vectors")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "spacy").mkdir()
        base_f1, base_s = spacy_baseline(train, devel, args.epochs, work / "spacy")
        print(f"spacy train (efficiency config): F1 {base_f1:.4f}  wall {base_s:.1f} s")
        ours_f1, ours_s, loop_s = platform_run(train, devel, args.epochs, work)
        print(f"annoray (HTTP -> scheduler -> Ray Train): F1 {ours_f1:.4f}  wall {ours_s:.1f} s  (its epochs: {loop_s:.1f} s)")
    print(f"F1 difference (annoray - spacy train): {ours_f1 - base_f1:+.4f}  (goal: within 0.02)")
    print(f"wall time ratio annoray / spacy train: {ours_s / base_s:.2f}x")
    print(f"platform overhead over its own training loop: {ours_s - loop_s:.1f} s ({ours_s / loop_s:.2f}x the epochs' time)")
    with tempfile.TemporaryDirectory() as tmp:
        _, _, two_s = platform_run(train, devel, args.epochs, Path(tmp), cpus=2)
    print(f"seconds per epoch, 1 CPU allocated: {loop_s / args.epochs:.1f}  2 CPUs: {two_s / args.epochs:.1f}  "
          f"(2 CPUs / 1 CPU: {two_s / loop_s:.2f}x the time)")


if __name__ == "__main__":
    main()
