"""Following jobs from the CLI: a progress bar per job, redrawn until every job has ended."""

from __future__ import annotations

import time
from collections.abc import Callable

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from annoray.api.cli.render import console
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
