"""Import 100,000 tasks through the HTTP API, then export the training selection, twice.

Prints import and export throughput, the process's peak memory, and the peak memory
allocated *while exporting* at a small and at the full size: export streams, so the two
peaks should be about equal (ratio near 1) however large the project grows.

    python benchmarks/import_export.py [--tasks 100000] [--small 10000] [--format conll]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
import tracemalloc
from importlib import resources
from pathlib import Path

import httpx

from annoray.api.app import create_app
from annoray.api.server import BackgroundServer
from annoray.platform.settings import Settings
from annoray.platform.store.home import init_home

BATCH = 10_000


def sample() -> tuple[str, list[dict]]:
    samples = resources.files("annoray.platform") / "samples"
    tasks = [t for t in json.loads((samples / "clinical_tasks.json").read_text()) if t.get("annotations")]
    return (samples / "clinical_config.xml").read_text(), tasks


def import_tasks(client: httpx.Client, pid: int, tasks: list[dict], n: int) -> float:
    start = time.perf_counter()
    for offset in range(0, n, BATCH):
        batch = [tasks[i % len(tasks)] for i in range(offset, min(n, offset + BATCH))]
        r = client.post(f"/api/projects/{pid}/tasks/import", json=batch)
        r.raise_for_status()
    return time.perf_counter() - start


def export(client: httpx.Client, pid: int, fmt: str) -> tuple[float, int, int]:
    """Seconds, bytes received, and peak bytes allocated (server and client, one process) while exporting."""
    tracemalloc.start()
    start, size = time.perf_counter(), 0
    with client.stream("GET", f"/api/projects/{pid}/export", params={"format": fmt}) as r:
        r.raise_for_status()
        for chunk in r.iter_bytes():
            size += len(chunk)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, size, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--format", default="conll", choices=["json", "conll", "spacy"])
    args = parser.parse_args()
    config, tasks = sample()
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), database_url=None)
        engine = init_home(settings)
        token = settings.admin_token_path.read_text().strip()
        with BackgroundServer(create_app(settings, engine=engine)) as url:
            client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=600)
            pid = client.post("/api/projects", json={"name": "bench", "labeling_config": config}).json()["id"]
            export(client, pid, args.format)  # warm-up: loads spaCy's tokenizer once, outside the measurement
            rows = []
            done = 0
            for target in (args.small, args.tasks):
                seconds = import_tasks(client, pid, tasks, target - done)
                done = target
                ex_seconds, size, peak = export(client, pid, args.format)
                rows.append((target, seconds, ex_seconds, size, peak))
                print(f"{target:>7} tasks: imported +{target - (rows[-2][0] if len(rows) > 1 else 0)} in {seconds:6.1f} s "
                      f"({(target - (rows[-2][0] if len(rows) > 1 else 0)) / seconds:7.0f} tasks/s); "
                      f"export {args.format} {size / 2**20:6.1f} MiB in {ex_seconds:6.1f} s ({target / ex_seconds:7.0f} tasks/s), "
                      f"peak allocated while exporting {peak / 2**20:6.1f} MiB", flush=True)
            client.close()
    small, full = rows
    print(f"export peak memory, {full[0]} vs {small[0]} tasks: {full[4] / small[4]:.2f}x "
          f"(project {full[0] / small[0]:.0f}x larger; ~1x means the export streams)")
    print(f"process peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")


if __name__ == "__main__":
    main()
