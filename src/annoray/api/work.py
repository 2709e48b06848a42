"""Slow work off the request thread: splitting an upload's pages, checking a training config, importing a model.

A request checks what it can at once (refusing bad input as ever), then hands the slow part to its API process's
bounded pool and waits for it a moment (``api.work_wait_s``). Done by then, the request answers as it always did;
not yet, it answers 202 with the work to poll (``GET /api/work/{id}``, its ``Location``), whose ``result`` is then
that same answer, or whose ``error`` the refusal. The work writes through short transactions of its own, never the
request's, and a request thread never waits longer than that moment.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as StillRunning
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker

from annoray.api.errors import STATUS
from annoray.platform.errors import AnnorayError, Errors
from annoray.platform.services.work import fail_work, finish_work, open_work, start_work

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """The work's answer when it ended within the request's wait, else None; and its id."""

    result: dict[str, Any] | None
    work_id: int
    kind: str

    def accepted(self) -> JSONResponse:
        """The 202 that hands the client the work to poll."""
        url = f"/api/work/{self.work_id}"
        return JSONResponse({"id": self.work_id, "kind": self.kind, "status": "running", "url": url}, status_code=202,
                            headers={"Location": url})


class _Handoff:
    """One piece of work between the request that asked for it and the pool thread doing it: until the request's wait is
    over the outcome stays here (no row is written: a refusal within the wait changes nothing); after, in its row."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.work_id: int | None = None
        self.started = False


class Works:
    """The API process's pool for slow work: ``threads`` at once, more wait their turn (queued)."""

    def __init__(self, writes: sessionmaker[Session], threads: int, wait_s: float):
        self.writes, self.wait_s = writes, wait_s
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="annoray-work")
        self.handed_off: dict[int, Future[dict[str, Any]]] = {}
        self.lock = threading.Lock()

    def run(self, kind: str, user_id: int, project_id: int | None, work: Callable[[], dict[str, Any]]) -> Outcome:
        """Run ``work`` (which answers what the request would, as JSON) in the pool. Ended within the wait, its answer
        is returned, or its refusal raised here as the request's own; else its row is written for the client to poll."""
        handoff = _Handoff()
        future = self.pool.submit(self._do, handoff, kind, work)
        try:
            return Outcome(future.result(timeout=self.wait_s), 0, kind)
        except StillRunning:
            pass
        with handoff.lock:
            if not future.done():
                handoff.work_id = open_work(self.writes, kind, user_id, project_id, running=handoff.started)
                with self.lock:
                    self.handed_off[handoff.work_id] = future
                future.add_done_callback(lambda _, work_id=handoff.work_id: self._forget(work_id))
                return Outcome(None, handoff.work_id, kind)
        return Outcome(future.result(), 0, kind)  # it ended just as the wait did

    def _forget(self, work_id: int) -> None:
        with self.lock:
            self.handed_off.pop(work_id, None)

    def _do(self, handoff: _Handoff, kind: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        with handoff.lock:
            handoff.started = True
            if handoff.work_id is not None:
                start_work(self.writes, handoff.work_id)
        try:
            result = work()
        except AnnorayError as exc:
            status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 422)
            detail, errors = exc.detail, [e.as_dict() for e in exc.errors]
            self._end(handoff, lambda work_id: fail_work(self.writes, work_id, status, detail, errors))
            raise
        except BaseException:
            logger.exception("%s work failed", kind)
            self._end(handoff, lambda work_id: fail_work(self.writes, work_id, 500, Errors.E517.format(work_id=work_id, kind=kind), []))
            raise
        self._end(handoff, lambda work_id: finish_work(self.writes, work_id, result))
        return result

    @staticmethod
    def _end(handoff: _Handoff, record: Callable[[int], None]) -> None:
        """Write how the work ended, when the request has handed it off (else the request answers it)."""
        with handoff.lock:
            if handoff.work_id is not None:
                record(handoff.work_id)

    def close(self) -> None:
        """Stop: work running ends first; work still waiting its turn is failed (E516), so nobody polls it forever."""
        with self.lock:
            waiting = [work_id for work_id, f in self.handed_off.items() if f.cancel()]
        for work_id in waiting:
            fail_work(self.writes, work_id, 503, Errors.E516.format(work_id=work_id, kind="work"), [])
        self.pool.shutdown(wait=True)
