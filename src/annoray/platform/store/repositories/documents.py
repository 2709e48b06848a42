"""Documents and their pages, and the pages' OCR as it moves through its lifecycle."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update

from annoray.platform.errors import NotFound
from annoray.platform.lifecycle import OcrStatus
from annoray.platform.store.repositories.base import RowRepository, move_status
from annoray.platform.store.tables import Document, Page


class DocumentRepository(RowRepository[Document]):
    row, noun = Document, "file"

    def for_project(self, project_id: int) -> Sequence[Document]:
        return self.session.scalars(select(Document).where(Document.project_id == project_id).order_by(Document.id)).all()

    def page(self, document_id: int, number: int) -> Page:
        found = self.session.scalar(select(Page).where(Page.document_id == document_id, Page.page == number))
        if found is None:
            raise NotFound(f"page of file {document_id}", number)
        return found

    def pages_by_id(self, page_ids: Sequence[int]) -> dict[int, Page]:
        return {p.id: p for p in self.session.scalars(select(Page).where(Page.id.in_(page_ids)))} if page_ids else {}

    def ocr_counts(self, project_id: int) -> dict[str, int]:
        """How many of the project's pages are in each OCR status."""
        rows = self.session.execute(select(Page.ocr_status, func.count()).where(Page.project_id == project_id).group_by(Page.ocr_status))
        return {status.value: count for status, count in rows}

    def pages_with_ocr(self, *statuses: OcrStatus, limit: int | None = None) -> Sequence[Page]:
        query = select(Page).where(Page.ocr_status.in_(statuses)).order_by(Page.id)
        return self.session.scalars(query.limit(limit) if limit else query).all()

    def move_ocr(self, page_id: int, among: Sequence[OcrStatus], to: OcrStatus, **values: Any) -> bool:
        return move_status(self.session, Page, page_id, among, to, values, column="ocr_status")

    def start_ocr(self, page: Page) -> bool:
        """Move a queued page's OCR to running and count the try; False when someone else started it first."""
        return self.move_ocr(page.id, (OcrStatus.QUEUED,), OcrStatus.RUNNING, ocr_attempts=page.ocr_attempts + 1)

    def requeue_running_ocr(self) -> int:
        """Pages whose OCR task died with the scheduler go back to the queue (their tries are counted when they start)."""
        done = self.session.execute(update(Page).where(Page.ocr_status == OcrStatus.RUNNING).values(ocr_status=OcrStatus.QUEUED))
        return done.rowcount  # type: ignore[attr-defined]
