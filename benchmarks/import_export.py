"""Big projects: import, select and export N tasks through the HTTP API, for each of ``--sizes``, with the peak memory
of each phase.

For each size a project of its own gets N annotated tasks (the sample clinical tasks, repeated) in imports of
10,000; then its training selection is exported (streamed); then, up to ``--train-max`` tasks, a training request
builds its training data (selected, turned into examples of every kind and split, in the API's request, as a user's
request does; no scheduler runs, so the jobs stay queued). The API runs in this process, and the peak of what
Python allocated (tracemalloc, server and client together) is taken for the import over its last import of
10,000 (into a project that already holds the rest) and for the training data; the export, which tracing slows
fivefold, is measured by the growth of the process's resident memory over its level before the export (sampled
every 20 ms; a coarser figure, since Python keeps memory it freed, so it can only overstate). Prints each phase's throughput and
peak at each size, and each peak at the largest size against the smallest: memory is flat when the ratio stays near
1 while the project grows tenfold (the training data holds each task's examples, so it grows with the tasks, but
must not hold their JSON as well).

    python benchmarks/import_export.py [--sizes 100000 1000000] [--train-max 100000] [--format conll]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
import tracemalloc
from collections.abc import Callable
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


def traced(run: Callable[[], object]) -> tuple[float, int]:
    """Seconds and the peak bytes Python allocated while ``run`` ran."""
    tracemalloc.start()
    began = time.perf_counter()
    run()
    seconds = time.perf_counter() - began
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak


def rss() -> int:
    return int(next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmRSS:")).split()[1]) * 1024


def rss_growth(run: Callable[[], object]) -> tuple[float, int]:
    """Seconds, and the most the resident memory grew above its level before ``run`` while it ran."""
    import threading

    before, peak, done = rss(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began = time.perf_counter()
    run()
    seconds = time.perf_counter() - began
    done.set()
    sampler.join()
    return seconds, max(0, max(peak[0], rss()) - before)


def import_tasks(client: httpx.Client, pid: int, tasks: list[dict], n: int) -> None:
    for offset in range(0, n, BATCH):
        client.post(f"/api/projects/{pid}/tasks/import",
                    json=[tasks[i % len(tasks)] for i in range(offset, min(n, offset + BATCH))]).raise_for_status()


def export(client: httpx.Client, pid: int, fmt: str) -> int:
    size = 0
    with client.stream("GET", f"/api/projects/{pid}/export", params={"format": fmt}) as r:
        r.raise_for_status()
        for chunk in r.iter_bytes():
            size += len(chunk)
    return size


def train_request(client: httpx.Client, pid: int) -> None:
    r = client.post(f"/api/projects/{pid}/trainings", json={"params": {"epochs": 1}})
    assert r.status_code == 202, r.text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--train-max", type=int, default=100_000, help="build training data only for sizes up to this")
    parser.add_argument("--format", default="conll", choices=["json", "conll", "spacy"])
    args = parser.parse_args()
    config, tasks = sample()
    rows: dict[int, dict[str, tuple[float, int]]] = {}
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), database_url=None)
        engine = init_home(settings)
        token = settings.admin_token_path.read_text().strip()
        with BackgroundServer(create_app(settings, engine=engine)) as url:
            client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=3600)
            warm = client.post("/api/projects", json={"name": "warm", "labeling_config": config}).json()["id"]
            import_tasks(client, warm, tasks, len(tasks))
            export(client, warm, args.format)  # loads spaCy's tokenizer once, outside the measurements
            for n in args.sizes:
                pid = client.post("/api/projects", json={"name": f"p{n}", "labeling_config": config}).json()["id"]
                began = time.perf_counter()
                import_tasks(client, pid, tasks, n - BATCH)
                last = traced(lambda: import_tasks(client, pid, tasks, BATCH))
                row = rows[n] = {"import": (time.perf_counter() - began, last[1])}
                row["export (RSS growth)"] = rss_growth(lambda: export(client, pid, args.format))
                if n <= args.train_max:
                    row["training data"] = traced(lambda: train_request(client, pid))
                print(f"{n:>9,} tasks: " + "; ".join(f"{phase} {n / s:,.0f} tasks/s, peak {peak / 2**20:,.1f} MiB"
                                                     for phase, (s, peak) in row.items()), flush=True)
            client.close()
        engine.dispose()
    small, large = min(rows), max(rows)
    for phase in rows[large]:
        if phase in rows[small] and small != large:
            low, high = rows[small][phase][1], rows[large][phase][1]
            print(f"{phase} peak memory, {large:,} vs {small:,} tasks ({large // small}x the tasks): "
                  f"{high / 2**20:,.1f} vs {low / 2**20:,.1f} MiB" + (f" ({high / low:.2f}x)" if low else ""))
    built = [n for n in rows if "training data" in rows[n]]
    if built:
        n = max(built)
        json_bytes = sum(len(json.dumps(tasks[i % len(tasks)])) for i in range(n))
        print(f"training data for {n:,} tasks: peak {rows[n]['training data'][1] / 2**20:,.1f} MiB = "
              f"{rows[n]['training data'][1] / json_bytes:.2f}x the tasks' JSON as bytes ({json_bytes / 2**20:,.1f} MiB; the examples "
              f"are Python objects, each a task's text and spans: the selected JSON itself is not kept)")
    print(f"process peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")


if __name__ == "__main__":
    main()
