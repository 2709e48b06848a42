"""The README's sizing guide, one prediction checked on a simulated two-node cluster.

The guide says: on nodes of K CPUs, trainings that each need C CPUs run floor(K / C) at once per node, so M such
trainings on N nodes finish in ceil(M / (N * floor(K / C))) waves of one training's time. Here two worker nodes of
8 logical CPUs (``ray.cluster_utils.Cluster``; a head with none) and NER trainings of 8 CPUs: one per node at once.
One training runs alone first (its wall time, request to end, is T); then ``--trainings`` (4) are requested
together. Prints the predicted and measured peak of trainings running at once, and the predicted and measured wall
time of the batch as a ratio (the nodes share this machine's 2 cores, and spaCy trains on one thread, so two at
once should not slow each other much).

    python benchmarks/sizing.py [--trainings 4] [--epochs 3]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chaos import FINDINGS, NER_CONFIG, finding_task, platform, two_workers, wait  # noqa: E402  (beside this script)

NODE_CPUS, TRAINING_CPUS = 8, 8


def run_batch(client, pid: int, count: int, epochs: int) -> tuple[float, int]:
    """Request ``count`` trainings of one project's data (one project each: one training per project and kind at a
    time); return the wall time until all end and the most that ran at once."""
    projects = []
    for i in range(count):
        other = client.post("/api/projects", json={"name": f"p{pid}-{i}", "labeling_config": NER_CONFIG, "language": "de"}).json()["id"]
        client.post(f"/api/projects/{other}/tasks/import", json=[finding_task(f) for f in FINDINGS] * 6).raise_for_status()
        projects.append(other)
    peak, stop = [0], threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], len(client.get("/api/cluster").json()["trainings"]))
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    began = time.monotonic()
    ids = [client.post(f"/api/projects/{p}/trainings", json={"params": {"epochs": epochs}}).json()["jobs"][0]["id"] for p in projects]
    watcher.start()
    for job_id in ids:
        job = wait(f"training {job_id}", lambda: (j := client.get(f"/api/trainings/{job_id}").json())["status"] in
                   ("succeeded", "failed", "cancelled") and j, timeout=1800, every=0.5)
        assert job["status"] == "succeeded", job  # type: ignore[index]
    seconds = time.monotonic() - began
    stop.set()
    watcher.join()
    return seconds, peak[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trainings", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    from annoray.platform.settings import ResourceSpec, Settings

    with tempfile.TemporaryDirectory(prefix="annoray-sizing-") as tmp, two_workers(cpus=NODE_CPUS, memory_gb=16), \
            platform(Path(tmp) / "home", resources=Settings().training.resources | {"ner": ResourceSpec(cpus=TRAINING_CPUS, memory_gb=4)}) as (client, _):
        alone, _ = run_batch(client, 0, 1, args.epochs)
        batch, peak = run_batch(client, 1, args.trainings, args.epochs)
    at_once = 2 * (NODE_CPUS // TRAINING_CPUS)
    waves = math.ceil(args.trainings / at_once)
    print(f"two nodes of {NODE_CPUS} CPUs, NER trainings of {TRAINING_CPUS} CPUs, {args.epochs} epochs each")
    print(f"one training alone: {alone:.1f} s (T)")
    print(f"{args.trainings} trainings at once: predicted {at_once} running at once, measured {peak}; "
          f"predicted {waves} waves = {waves * alone:.1f} s, measured {batch:.1f} s ({batch / (waves * alone):.2f}x the prediction)")


if __name__ == "__main__":
    main()
