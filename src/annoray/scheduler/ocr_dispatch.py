"""The scheduler's side of OCR: queued pages started as Ray tasks (their body is ``documents.run_ocr_page``), lost
tasks' pages queued again or failed."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from annoray.platform.errors import Errors, describe
from annoray.platform.lifecycle import OcrStatus
from annoray.platform.store.repositories import DocumentRepository
from annoray.scheduler.ledger import SchedulerState

logger = logging.getLogger(__name__)


class OcrDispatch:
    """The scheduler's side of OCR: queued pages started as tasks, lost tasks' pages queued again or failed."""

    def __init__(self, state: SchedulerState):
        self.state = state
        self.running: dict[int, Any] = {}  # page id -> its task's reference

    def requeue_after_restart(self, session: Session) -> None:
        if count := DocumentRepository(session).requeue_running_ocr():
            logger.info("%d pages whose OCR died with the scheduler are queued again", count)

    def dispatch(self) -> None:
        from annoray.scheduler.factory import start_ocr_page

        room = self.state.settings.ocr.max_in_flight - len(self.running)
        if room <= 0:
            return
        with self.state.reads() as session:  # most passes have none: they take no write lock
            if not DocumentRepository(session).pages_with_ocr(OcrStatus.QUEUED, limit=1):
                return
        with self.state.sessions.begin() as session:
            pages = DocumentRepository(session)
            for page in pages.pages_with_ocr(OcrStatus.QUEUED, limit=room):
                if pages.start_ocr(page):
                    self.running[page.id] = start_ocr_page(self.state.settings, page.id)

    def ended(self, page_id: int, ref: Any) -> None:
        """A page's task ended; one that died (its node, a kill) leaves its page running: queue it again or fail it."""
        import ray

        try:
            ray.get(ref)
        except Exception as exc:
            with self.state.sessions.begin() as session:  # raises while the database is down: handled again next tick
                pages = DocumentRepository(session)
                page = pages.pages_by_id([page_id]).get(page_id)
                if page is not None and page.ocr_status is OcrStatus.RUNNING:
                    again = page.ocr_attempts < self.state.settings.ocr.max_attempts
                    pages.move_ocr(page_id, (OcrStatus.RUNNING,), OcrStatus.QUEUED if again else OcrStatus.FAILED,
                                   ocr_error=describe(exc) if again else Errors.E908.format(count=page.ocr_attempts, why=describe(exc)))
        with self.state.lock:  # only once its end is written
            if self.running.get(page_id) is ref:
                del self.running[page_id]
        self.state.kick.set()
