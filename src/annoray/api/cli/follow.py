"""Following jobs from the CLI: a progress bar per job, redrawn until every job has ended; waiting for a state, and
printing trained models and a running server."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from annoray.api.cli.render import console, judged, metric_rows, table
from annoray.api.client import AnnorayClient
from annoray.platform import lifecycle

ENDED = {status.value for status in lifecycle.ENDED}
POLL_SECONDS = 1.0


def follow(fetch: Callable[[], list[dict]], bar: Callable[[dict], tuple[str, int, int, str]], out: Console) -> list[dict]:
    """A progress bar per job, redrawn from ``fetch()`` until every job has ended; ``bar`` gives (description, done,
    total, unit) of a job."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[unit]}"),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn())
    jobs = fetch()  # before any bar is drawn: an unknown job is refused on a clean line
    with Progress(*columns, console=out) as progress:
        bars: dict[int, TaskID] = {}
        while True:
            for job in jobs:
                description, done, total, unit = bar(job)
                if job["id"] not in bars:
                    bars[job["id"]] = progress.add_task(description, total=total, unit=unit, status="")
                progress.update(bars[job["id"]], completed=done, total=total, status=job["status"])
            if all(job["status"] in ENDED for job in jobs):
                return jobs
            time.sleep(POLL_SECONDS)
            jobs = fetch()


def follow_trainings(client: AnnorayClient, job_ids: list[int], out: Console = console) -> list[dict]:
    """A progress bar per training job, advanced epoch by epoch until every job has ended."""
    return follow(lambda: [client.get(f"/api/trainings/{j}") for j in job_ids],
                  lambda j: (f"training {j['kind']}", j["progress"]["epoch"], j["progress"]["epochs"], "epochs"), out)


def follow_preannotation(client: AnnorayClient, job_id: int, out: Console) -> dict:
    """A progress bar over the job's tasks until it has ended."""
    (job,) = follow(lambda: [client.get(f"/api/preannotations/{job_id}")],
                    lambda j: (f"pre-annotating with server {j['server_id']}", j["done"] + j["failed"], j["total"], "tasks"), out)
    return job


def exit_unless_succeeded(jobs: list[dict]) -> None:
    if any(job["status"] != "succeeded" for job in jobs):
        raise typer.Exit(1)


def wait(client: AnnorayClient, path: str, until: Any, what: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    with console.status(what):
        while True:
            state = client.get(path)
            if until(state) or time.monotonic() > deadline:
                return state
            time.sleep(0.5)


def print_metrics(jobs: list[dict]) -> None:
    """Each model's scores, then what they can be judged by: the held-out size and a guess with no model."""
    rows, judged_by = [], []
    for job in jobs:
        if job["status"] != "succeeded":
            console.print(f"[red]training {job['id']} ({job['kind']}) {job['status']}[/]: {job['error']}")
            continue
        for i, row in enumerate(metric_rows(job["metrics"])):
            rows.append((job["model"], job["kind"], *row) if i == 0 else ("", "", *row))
        if line := judged(job["metrics"], job["data"].get("test_examples")):
            judged_by.append(Text(f"{job['model']}: ").append(line))
    console.print(table(("model", "kind", "label", "precision", "recall", "f1", "support"), rows,
                        "trained models, scored on the held-out split"))
    for line in judged_by:
        console.print(line)


def print_server(server: dict) -> None:
    if server["status"] != "running":
        console.print(f"[red]server {server['id']} {server['status']}[/]: {server.get('error') or server.get('reason')}")
        return
    console.print(f"server [bold]{server['name']}[/] (id {server['id']}) {server['status']} on node "
                  f"{(server['node_id'] or '')[:12]}, serving:")
    for model in server["models"]:
        console.print(f"  {model['name']} ({model['kind']}): {', '.join(model['labels'])}")
