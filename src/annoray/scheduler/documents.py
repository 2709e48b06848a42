"""Documents in, and their OCR.

An upload is checked whole before anything is stored: every file must be what it says and within the limits, or
nothing is kept. Its pages go to the file store as upright PNGs and to the database as rows whose OCR is queued.
The scheduler's pass then OCRs queued pages, one Ray task per page spread over the cluster, at most
``ocr.max_in_flight`` at once; a page's task writes its words (or its failure) itself. A task lost with its node or
the scheduler sends its page back to the queue, within ``ocr.max_attempts`` tries.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from annoray.platform.errors import ErrorDetail, Errors, InvalidInput, describe
from annoray.platform.labeling.pages import is_page_of, page_url
from annoray.platform.labeling.projects import project_config
from annoray.platform.labeling.tasks import import_tasks
from annoray.platform.lifecycle import OcrStatus
from annoray.platform.settings import Settings
from annoray.platform.store.repositories import DocumentRepository, ProjectRepository
from annoray.platform.store.tables import Document, Page, Project, User
from annoray.trainers.documents import Limits, measure, render
from annoray.trainers.store import FileStore


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str | None
    data: bytes


@dataclass(frozen=True)
class StoredPage:
    page: int
    key: str
    width: int
    height: int


@dataclass
class Split:
    """An upload's pages, rendered and in the file store (nothing in the database yet)."""

    upload: Upload
    media_type: str
    pages: list[StoredPage]


def discard(settings: Settings, split: list[Split]) -> None:
    """The pages of split uploads whose rows did not commit: out of the file store."""
    store = FileStore(settings.resolved_file_store)
    for item in split:
        for page in item.pages:
            store.delete(page.key)


def split_uploads(settings: Settings, project_id: int, uploads: list[Upload]) -> list[Split]:
    """Every upload's pages drawn and put in the file store one at a time (one page in memory at once), after the whole
    request was measured against its limits from the files' headers: a bad file, too many files or too many pixels
    refuses it all before anything is drawn. The slow part: the caller holds no database lock meanwhile."""
    limits, budget = Limits(settings.documents.max_pixels, settings.documents.max_pages, settings.documents.pdf_dpi), settings.documents
    if not uploads:
        raise InvalidInput(Errors.E906, [ErrorDetail(Errors.E906, field="file")])
    if len(uploads) > budget.max_files:
        raise _over(Errors.E910.format(files=len(uploads), limit=budget.max_files))
    measured = [(upload, *measure(upload.filename, upload.content_type, upload.data, limits)) for upload in uploads]
    for upload, _, sizes in measured:
        if (pixels := sum(w * h for w, h in sizes)) > budget.max_pixels_per_file:
            raise _over(Errors.E911.format(filename=upload.filename, pixels=f"{pixels:,}", limit=f"{budget.max_pixels_per_file:,}"))
    if (total := sum(w * h for _, _, sizes in measured for w, h in sizes)) > budget.max_pixels_per_request:
        raise _over(Errors.E912.format(pixels=f"{total:,}", limit=f"{budget.max_pixels_per_request:,}"))
    store, batch, out = FileStore(settings.resolved_file_store), uuid.uuid4().hex, []
    try:
        for index, (upload, media_type, _) in enumerate(measured):
            split = Split(upload, media_type, [])
            out.append(split)
            for page in render(upload.filename, media_type, upload.data, limits):
                key = f"projects/{project_id}/uploads/{batch}/{index}/page-{page.page}.png"
                store.put(key, page.png)
                split.pages.append(StoredPage(page.page, key, page.width, page.height))
    except BaseException:
        discard(settings, out)
        raise
    return out


def _over(message: str) -> InvalidInput:
    return InvalidInput(message, [ErrorDetail(message, field="file")])


def accept_documents(session: Session, project: Project, user: User, split: list[Split]) -> list[Document]:
    """The rows of split uploads (OCR queued), in the session; their pages are already in the file store."""
    documents = []
    for item in split:
        document = DocumentRepository(session).add(Document(
            project_id=project.id, filename=item.upload.filename[:255], media_type=item.media_type, size=len(item.upload.data),
            sha256=hashlib.sha256(item.upload.data).hexdigest(), uploaded_by=user.id))
        for page in item.pages:
            session.add(Page(document_id=document.id, project_id=project.id, page=page.page, width=page.width,
                             height=page.height, key=page.key, ocr_status=OcrStatus.QUEUED, ocr_language=project.language))
        documents.append(document)
    session.flush()
    for document in documents:
        session.refresh(document)
    return documents


def store_documents(writes: sessionmaker[Session], settings: Settings, project_id: int, user: User, split: list[Split],
                    *, image_key: str | None) -> tuple[list[Document], list[int]]:
    """The rows of split uploads, and with ``image_key`` one unannotated task per page, in one short transaction; when
    it does not commit, their pages leave the file store. The caller wakes the scheduler (their OCR is queued)."""
    try:
        with writes.begin() as session:
            project = ProjectRepository(session).get(project_id)
            documents = accept_documents(session, project, user, split)
            task_ids = import_tasks(session, project, project_config(project), user, [
                {"data": {image_key: page_url(d.id, p.page)}} for d in documents for p in d.pages],
                is_page=is_page_of(session, project.id)) if image_key else []
            for document in documents:
                document.pages  # noqa: B018 (loaded now: the caller shows them after the session closes)
            return documents, task_ids
    except BaseException:
        discard(settings, split)
        raise


def page_image(settings: Settings, page: Page) -> bytes:
    return FileStore(settings.resolved_file_store).get(page.key)


def run_ocr_page(settings: Settings, page_id: int) -> None:
    """OCR one page and write its words; the scheduler has moved it to ``running`` and counted the try."""
    from annoray.platform.store.db import create_db_engine, session_factory
    from annoray.trainers.ocr import ocr_words

    os.environ["OMP_THREAD_LIMIT"] = str(max(1, int(settings.ocr.resources.cpus)))
    engine = create_db_engine(settings.resolved_database_url)
    sessions = session_factory(engine, write=True)
    try:
        with sessions() as session:
            page = DocumentRepository(session).pages_by_id([page_id])[page_id]
            key, language = page.key, page.ocr_language
        began = time.perf_counter()
        try:
            words = ocr_words(FileStore(settings.resolved_file_store).get(key), language,
                              upscale_below=settings.ocr.upscale_below_px, page_segmentation=settings.ocr.page_segmentation)
        except Exception as exc:  # the page's failure, kept with it; the task itself ends well
            with sessions.begin() as session:
                DocumentRepository(session).move_ocr(page_id, (OcrStatus.RUNNING,), OcrStatus.FAILED,
                                                     ocr_error=Errors.E907.format(why=describe(exc)))
            return
        with sessions.begin() as session:
            DocumentRepository(session).move_ocr(page_id, (OcrStatus.RUNNING,), OcrStatus.DONE, ocr_words=words, ocr_error=None,
                                                 ocr_seconds=round(time.perf_counter() - began, 3))
    finally:
        engine.dispose()
