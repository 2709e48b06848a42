"""One pre-annotation job: the body of the Ray task the scheduler launches once the job's server runs.

Memory stays flat whatever the task count: tasks stream from the database in pages by id, a bounded number of
requests wait on the server (enough to keep every replica it may scale to busy, and to make Serve's autoscaler
see the load), and predictions are written in batches, with how many tasks each replica predicted. A request that
fails (a replica killed) is sent again; a task that keeps failing alone is recorded as failed and
the job goes on. Each task gets at most one prediction per job (a unique index, and tasks this job
already predicted are skipped), so a retried batch or a relaunched job never writes a task twice.
A task the models cannot take comes back as an error for itself alone and is recorded, not retried.
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, sessionmaker

from annoray.platform.errors import Errors, describe
from annoray.platform.labeling.config import LabelingConfig
from annoray.platform.labeling.pages import page_of
from annoray.platform.lifecycle import OcrStatus
from annoray.platform.labeling.predictions import keep_predictions, label_studio_result, marked_entities, task_text
from annoray.platform.labeling.projects import project_config
from annoray.platform.labeling.selection import has_no_completion
from annoray.platform.settings import Settings
from annoray.platform.store.repositories import (
    DocumentRepository, PreannotationJobRepository, ProjectRepository, ServerRepository,
)
from annoray.platform.store.tables import Completion, JobStatus, Prediction, Task


PAGE_SIZE = 1024
REQUEST_SIZE = 128  # tasks per request at most: bigger requests cost the replica and the job less per task
MIN_REQUEST_SIZE = 16
IN_FLIGHT_PER_REPLICA = 4  # requests a job keeps waiting on each replica the server may scale to (at least 8)
WRITE_BATCH = 256
RETRIES = 4
KEPT_FAILURES = 100


class TaskInputs:
    """What a server reads from each task: its text (with the entities of its latest completion, when the job reads
    them from there), or for a Visual NER project its page's OCR words and size. A page not OCR'd yet is OCR'd first
    (here, when its OCR is still queued; one a task is OCR-ing is waited for)."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], project_id: int, config: LabelingConfig,
                 entities_from: str = "models", reads: sessionmaker[Session] | None = None):
        self.settings, self.sessions, self.project_id, self.config = settings, sessions, project_id, config
        self.reads = reads or sessions
        self.key = config.data_key(config.visual_ner.to_name) if config.visual_ner else None
        self.marked = entities_from == "completion"

    def __call__(self, task: Task) -> str | dict[str, Any]:
        """The task's input; raises with the reason when its page cannot be read."""
        if self.marked:
            with self.reads() as session:
                result = session.scalars(select(Completion.result).where(Completion.task_id == task.id)
                                         .order_by(Completion.updated_at.desc(), Completion.id.desc()).limit(1)).first()
            if result is None:
                raise ValueError(Errors.E826.format(task_id=task.id))
            return {"text": task_text(self.config, task.data), "entities": marked_entities(self.config, result)}
        if self.key is None:
            return task_text(self.config, task.data)
        from annoray.scheduler.documents import run_ocr_page

        url = str(task.data.get(self.key, ""))
        deadline = time.monotonic() + 600
        while True:
            with self.sessions.begin() as session:
                page = page_of(session, self.project_id, url)
                if page is None:
                    raise ValueError(Errors.E315.format(task_id=task.id, url=url[:200]))
                status, page_id = page.ocr_status, page.id
                if status is OcrStatus.DONE:
                    return {"words": page.ocr_words or [], "width": page.width, "height": page.height}
                if status is OcrStatus.FAILED:
                    raise ValueError(page.ocr_error or Errors.E907.format(why="unknown"))
                claimed = status is OcrStatus.QUEUED and DocumentRepository(session).start_ocr(page)
            if claimed:
                run_ocr_page(self.settings, page_id)
            elif time.monotonic() > deadline:
                raise TimeoutError(f"the OCR of page {url} did not end within 600 s")
            else:
                time.sleep(0.5)


def request_size(tasks: int, in_flight: int) -> int:
    """Tasks per request for a page of ``tasks``: as many as fill the ``in_flight`` requests, between 16 and 128.
    Bigger requests cost less per task (``benchmarks/preannotation.py``, one replica against bare ``nlp.pipe``:
    16 tasks 0.82x, 64 0.89x, 128 0.90x), but a page must make enough requests for every replica to get some."""
    return max(MIN_REQUEST_SIZE, min(REQUEST_SIZE, -(-tasks // in_flight)))


def pending_tasks(reads: sessionmaker[Session], project_id: int, job_id: int, task_ids: list[int] | None,
                  marked: bool = False) -> Iterator[list[Task]]:
    """Pages of the job's tasks not yet predicted by it, by id (keyset), so memory does not grow with the project.
    Without ``task_ids``: the tasks with no completion, or with ``marked`` those with one."""
    after = 0
    while True:
        query = select(Task).where(Task.project_id == project_id, Task.id > after,
                                   ~exists().where(Prediction.preannotation_job_id == job_id, Prediction.task_id == Task.id))
        if task_ids is not None:
            query = query.where(Task.id.in_(task_ids))
        else:
            query = query.where(~has_no_completion() if marked else has_no_completion())
        with reads() as session:
            page = list(session.scalars(query.order_by(Task.id).limit(PAGE_SIZE)))
            session.expunge_all()
        if not page:
            return
        yield page
        after = page[-1].id


def database_unreachable(exc: BaseException) -> bool:
    """Whether an error is the database being away (stopped, restarting, the network), not the job's own fault."""
    from sqlalchemy.exc import OperationalError

    return isinstance(exc, OperationalError) or isinstance(exc.__context__, OperationalError)


class Writer:
    """Buffers predictions and failures, and writes them with the job's counters in one transaction."""

    def __init__(self, sessions: sessionmaker[Session], job_id: int, project_id: int, model_version: str):
        self.sessions, self.job_id, self.project_id, self.model_version = sessions, job_id, project_id, model_version
        self.rows: list[dict[str, Any]] = []
        self.failed: list[dict[str, Any]] = []

    def add(self, task_id: int, result: list[dict[str, Any]], score: float | None, replica: str | None = None) -> None:
        self.rows.append({"task_id": task_id, "result": result, "score": score, "replica": replica})
        if len(self.rows) >= WRITE_BATCH:
            self.flush()

    def fail(self, task_id: int, error: str) -> None:
        self.failed.append({"task_id": task_id, "error": error[:300]})

    def flush(self) -> None:
        if not self.rows and not self.failed:
            return
        with self.sessions.begin() as session:
            fresh = keep_predictions(session, self.project_id, self.rows, self.model_version, job_id=self.job_id)
            repo = PreannotationJobRepository(session)
            job = repo.get(self.job_id)
            failures = (job.failures or []) + self.failed
            used = dict(job.replicas_used or {})
            for r in fresh:
                if r["replica"]:
                    used[r["replica"]] = used.get(r["replica"], 0) + 1
            repo.set(self.job_id, done=job.done + len(fresh), failed=job.failed + len(self.failed),
                     failures=failures[:KEPT_FAILURES], replicas_used=used)
        self.rows, self.failed = [], []


class Requests:
    """A job's requests to its server, at most ``limit`` in flight: a thread of its own waits on each answer (Serve has
    no public wait over many responses), and answers are taken in the order they come, whichever request was first."""

    def __init__(self, handle: Any, limit: int, answered: Callable[[list[Any], list[dict[str, Any]]], None],
                 failed: Callable[[Any, Exception], None]):
        self.handle, self.limit, self.answered, self.failed = handle, limit, answered, failed
        self.waiters = ThreadPoolExecutor(limit, thread_name_prefix="annoray-preannotation")
        self.in_flight: dict[Future[Any], tuple[list[Any], list[Any], int]] = {}

    def send(self, tasks: list[Any], inputs: list[Any], attempt: int = 0) -> None:
        while len(self.in_flight) >= self.limit:
            self.settle_first()
        self.in_flight[self.waiters.submit(self.handle.remote(inputs).result, timeout_s=600)] = (tasks, inputs, attempt)

    def settle_first(self) -> None:
        """Take the answers that came first; a failed request is sent again, then each of its tasks alone, then each
        task is recorded failed."""
        done, _ = wait(self.in_flight, return_when=FIRST_COMPLETED)
        for future in done:
            tasks, inputs, attempt = self.in_flight.pop(future)
            try:
                outputs = future.result()
            except Exception as exc:  # a replica died
                if attempt < RETRIES:
                    time.sleep(min(2.0 ** attempt, 10.0))
                    self.send(tasks, inputs, attempt + 1)
                elif len(tasks) > 1:
                    for task, one in zip(tasks, inputs, strict=True):
                        self.send([task], [one], RETRIES)
                else:
                    self.failed(tasks[0], exc)
                continue
            self.answered(tasks, outputs)

    def drain(self) -> None:
        while self.in_flight:
            self.settle_first()

    def close(self) -> None:
        self.waiters.shutdown(wait=False, cancel_futures=True)


def run_preannotation_job(settings: Settings, job_id: int) -> None:
    """Pre-annotate the job's tasks with its server; the scheduler has already moved the job to ``running``."""
    from ray import serve

    from annoray.platform.store.db import create_db_engine, session_factory
    from annoray.serve_apps.server import app_name

    engine = create_db_engine(settings.resolved_database_url)
    sessions, reads = session_factory(engine, write=True), session_factory(engine)
    try:
        with reads() as session:
            job = PreannotationJobRepository(session).get(job_id)
            project = ProjectRepository(session).get(job.project_id)
            server = ServerRepository(session).get(job.server_id or 0)
            session.expunge_all()
        config = project_config(project)
        handle = serve.get_app_handle(app_name(server.id))
        writer = Writer(sessions, job_id, project.id, f"{server.name}:{'+'.join(server.models)}")
        read = TaskInputs(settings, sessions, project.id, config, job.entities_from, reads)
        in_flight_limit = max(8, IN_FLIGHT_PER_REPLICA * server.max_replicas)

        def answered(tasks: list[Task], outputs: list[dict[str, Any]]) -> None:
            for task, output in zip(tasks, outputs, strict=True):
                if "error" in output:
                    writer.fail(task.id, output["error"])
                    continue
                result, score = label_studio_result(config, output)
                writer.add(task.id, result, score, output.get("replica"))

        requests = Requests(handle, in_flight_limit, answered, lambda task, exc: writer.fail(task.id, describe(exc)))
        try:
            for page in pending_tasks(reads, project.id, job_id, job.task_ids, job.entities_from == "completion"):
                size = request_size(len(page), in_flight_limit)
                for at in range(0, len(page), size):
                    chunk, inputs = [], []
                    for task in page[at:at + size]:
                        try:
                            inputs.append(read(task))
                            chunk.append(task)
                        except Exception as exc:  # its page is not one of the project's, or its OCR failed
                            writer.fail(task.id, describe(exc) if not str(exc).startswith("[E") else str(exc))
                    if not chunk:
                        continue
                    requests.send(chunk, inputs)
            requests.drain()
        finally:
            requests.close()
        writer.flush()
        with sessions.begin() as session:
            PreannotationJobRepository(session).transition(job_id, (JobStatus.RUNNING,), JobStatus.SUCCEEDED, reason=None,
                                                           finished_at=datetime.now(UTC))
    except Exception as exc:
        if not database_unreachable(exc):  # an unreachable database: the scheduler queues the job again, to resume
            with sessions.begin() as session:
                PreannotationJobRepository(session).transition(job_id, (JobStatus.RUNNING,), JobStatus.FAILED, reason=None,
                                                               error=Errors.E816.format(why=describe(exc)),
                                                               finished_at=datetime.now(UTC))
        raise
    finally:
        engine.dispose()
