"""Completions submitted while slow work runs: does an upload or a config check stall the annotators?

Each database gets a fresh ``annoray up`` (its own process, its scheduler on this command's Ray). One NER project
gets tasks and ``--clients`` annotators. Each annotator submits ``--submissions`` completions, one after another,
all annotators at once: first with nothing else running (the baseline, "quiet"), then while an owner uploads a
``--pages``-page PDF (split into pages by the API) and checks a spaCy training config (built and trained one step
in a process of its own), each again and again until the submissions are done ("busy"). It prints the p50 and p99
of a submission's latency, quiet and busy, and busy as a ratio of quiet, per database. Every 5xx is a defect.

Before the service layer, a write request held SQLite's write lock from its authentication on, and requests that
may write went in one at a time (``OneWriterAtATime``): one upload stalled every submission for its whole split.

    python benchmarks/writers.py [--clients 20] [--submissions 10] [--pages 60] [--databases sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chaos import FINDINGS, NER_CONFIG, finding_task, postgres  # noqa: E402
from load import GIB, api_up, percentile  # noqa: E402

IMAGE_CONFIG = """<View><Image name="image" value="$image"/>
<RectangleLabels name="label" toName="image"><Label value="Total"/></RectangleLabels></View>"""


def pdf(pages: int) -> bytes:
    """A PDF of ``pages`` letter-size pages of text, drawn with Pillow (no network, no fonts to fetch)."""
    from PIL import Image, ImageDraw

    images = []
    for n in range(pages):
        image = Image.new("RGB", (1275, 1650), "white")  # letter at 150 dpi
        draw = ImageDraw.Draw(image)
        for line in range(40):
            draw.text((100, 100 + line * 36), f"page {n + 1} line {line + 1}: Total 12.{line:02d} EUR", fill="black")
        images.append(image)
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:], resolution=150)
    return out.getvalue()


def ner_config() -> str:
    from spacy.cli.init_config import init_config

    return init_config(lang="de", pipeline=["ner"], optimize="efficiency").to_str()


def set_up(url: str, admin_token: str, clients: int) -> tuple[list[tuple[str, list[int]]], int, str]:
    """Annotators (token, tasks of theirs), and the documents project's id and its owner's (the admin's) token."""
    admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=300)
    pid = admin.post("/api/projects", json={"name": "writers", "labeling_config": NER_CONFIG, "language": "de"}).json()["id"]
    admin.post(f"/api/projects/{pid}/tasks/import", json=[finding_task(f) for f in FINDINGS] * 40).raise_for_status()
    ids = [t["id"] for t in admin.get(f"/api/projects/{pid}/tasks", params={"page_size": 1000}).json()["items"]]
    seats = []
    for c in range(clients):
        user = admin.post("/api/users", json={"username": f"annotator-{uuid.uuid4().hex[:8]}"}).json()
        admin.post(f"/api/projects/{pid}/members", json={"username": user["username"], "role": "annotator"}).raise_for_status()
        seats.append((user["token"], ids[c::clients]))
    documents = admin.post("/api/projects", json={"name": "forms", "labeling_config": IMAGE_CONFIG, "language": "de"}).json()["id"]
    return seats, documents, admin_token


async def submissions(url: str, pid: int, seats: list[tuple[str, list[int]]], each: int) -> tuple[list[float], list[int]]:
    """Every annotator submits ``each`` completions in turn, all at once: the latencies, and the statuses."""
    latencies: list[float] = []
    statuses: list[int] = []

    async def annotate(token: str, tasks: list[int]) -> None:
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=300) as http:
            for task in (tasks * each)[:each]:
                started = time.perf_counter()
                try:
                    status = (await http.post(f"/api/projects/{pid}/tasks/{task}/completions", json={"result": []})).status_code
                except httpx.TransportError:
                    status = 0
                latencies.append(time.perf_counter() - started)
                statuses.append(status)

    await asyncio.gather(*(annotate(token, tasks) for token, tasks in seats))
    return latencies, statuses


def ended(http: httpx.Client, response: httpx.Response) -> int:
    """The status a request ends with, following its work (202) to the end when it handed the work off."""
    if response.status_code != 202:
        return response.status_code
    while (state := http.get(response.headers["location"]).json())["status"] in ("queued", "running"):
        time.sleep(0.2)
    return 201 if state["status"] == "succeeded" else state["error"]["status"]


def slow_work(url: str, token: str, documents: int, pages: bytes, config: str, stop: threading.Event) -> dict[str, int]:
    """Upload the PDF and check the config, again and again until ``stop``: how many of each ran, and their 5xx."""
    done = {"uploads": 0, "config checks": 0, "5xx": 0}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=600) as http:
        while not stop.is_set():
            answer = ended(http, http.post(f"/api/projects/{documents}/files", files={"file": ("form.pdf", pages, "application/pdf")}))
            done["uploads"] += 1
            done["5xx"] += answer >= 500
            if stop.is_set():
                break
            answer = ended(http, http.post(f"/api/projects/{documents}/training-configs",
                                           json={"name": f"c{uuid.uuid4().hex[:6]}", "config": config}))
            done["config checks"] += 1
            done["5xx"] += answer >= 500
    return done


def run_database(database: str, work: Path, ray_address: str, clients: int, each: int, pages: bytes, config: str) -> bool:
    with contextlib.nullcontext() if database == "sqlite" else postgres() as pg:
        home = work / database
        with api_up(home, ray_address, pg[0] if pg else None) as url:
            seats, documents, token = set_up(url, (home / "admin.token").read_text().strip(), clients)
            pid = httpx.get(f"{url}/api/projects", headers={"Authorization": f"Bearer {token}"}).json()[0]["id"]
            asyncio.run(submissions(url, pid, seats, 2))  # warm: connections, caches, the first request of each path
            quiet, quiet_statuses = asyncio.run(submissions(url, pid, seats, each))
            stop = threading.Event()
            background: dict[str, int] = {}
            worker = threading.Thread(target=lambda: background.update(slow_work(url, token, documents, pages, config, stop)))
            worker.start()
            time.sleep(1.0)  # the first upload is being split
            started = time.perf_counter()
            busy, busy_statuses = asyncio.run(submissions(url, pid, seats, each))
            busy_s = time.perf_counter() - started
            stop.set()
            worker.join()
    q50, q99, b50, b99 = (percentile(sorted(v), q) for v, q in ((quiet, 50), (quiet, 99), (busy, 50), (busy, 99)))
    print(f"\n{database}: {len(busy)} submissions from {clients} clients in {busy_s:.1f} s; meanwhile {background}")
    print(f"  quiet  p50 {q50 * 1e3:8.1f} ms   p99 {q99 * 1e3:8.1f} ms")
    print(f"  busy   p50 {b50 * 1e3:8.1f} ms   p99 {b99 * 1e3:8.1f} ms")
    print(f"  busy/quiet  p50 {b50 / q50:.2f}x   p99 {b99 / q99:.2f}x   (goal: p99 at most 1.5x)")
    errors = sum(s >= 500 or s == 0 for s in quiet_statuses + busy_statuses) + background.get("5xx", 0)
    refused = sum(400 <= s < 500 for s in quiet_statuses + busy_statuses)
    print(f"  4xx {refused}   5xx and transport errors {errors}")
    return errors == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--submissions", type=int, default=10, help="completions per client")
    parser.add_argument("--pages", type=int, default=60)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    import ray

    ray.init(address="local", num_cpus=8, _memory=32 * GIB, include_dashboard=False, log_to_driver=False,
             namespace="annoray-writers")
    work = Path(tempfile.mkdtemp(prefix="annoray-writers-"))
    pages, config = pdf(args.pages), ner_config()
    ok = [False]
    try:
        ok = [run_database(db, work, ray.get_runtime_context().gcs_address, args.clients, args.submissions, pages, config)
              for db in args.databases.split(",")]
    finally:
        ray.shutdown()
        if all(ok):
            shutil.rmtree(work, ignore_errors=True)
    print("\nno 5xx and no transport error" if all(ok) else f"\nERRORS: see the API logs in {work}")
    sys.exit(0 if all(ok) else 1)


if __name__ == "__main__":
    main()
