"""Document pages as tasks see them: a page's address (what a task's image value holds), its OCR words, and which
words an annotator's labeled rectangles cover."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from annoray.platform.errors import ErrorDetail, Errors, InvalidInput
from annoray.platform.lifecycle import OcrStatus
from annoray.platform.store.repositories import DocumentRepository
from annoray.platform.store.tables import Document, Page

PAGE_PATH = re.compile(r"^/api/files/(\d{1,18})/pages/(\d{1,9})$")
COVERED = 0.5  # a word belongs to a rectangle when at least half of its area is inside it

Word = list  # [text, x0, y0, x1, y1, block, line], pixels of the page image


def page_url(document_id: int, page: int) -> str:
    """A page's address, as the API serves it and as a task's image value holds it (relative, or on any host)."""
    return f"/api/files/{document_id}/pages/{page}"


def page_ref(url: str) -> tuple[int, int] | None:
    """(document id, page number) of a page address, or None when the value is not one."""
    parts = urlsplit(url) if isinstance(url, str) else None
    found = PAGE_PATH.match(parts.path) if parts is not None and parts.scheme in ("", "http", "https") else None
    return (int(found[1]), int(found[2])) if found else None


def page_of(session: Session, project_id: int, url: str) -> Page | None:
    """The project's page a task's image value points at, or None."""
    ref = page_ref(url)
    if ref is None:
        return None
    return session.scalar(select(Page).join(Document).where(Document.id == ref[0], Document.project_id == project_id,
                                                            Page.page == ref[1]))


def is_page_of(session: Session, project_id: int) -> Callable[[str], bool]:
    return lambda url: page_of(session, project_id, url) is not None


def replace_words(session: Session, page: Page, words: list[Word]) -> None:
    """A page's words from an OCR of the user's own, in reading order: checked against the page whole (one bad box
    refuses them all), then they are the page's, its OCR done."""
    errors = [ErrorDetail(Errors.E909.format(index=i, text=text[:40], box=[x0, y0, x1, y1], width=page.width, height=page.height),
                          field=f"words.{i}.box")
              for i, (text, x0, y0, x1, y1, *_) in enumerate(words)
              if not (0 <= x0 <= x1 <= page.width and 0 <= y0 <= y1 <= page.height)]
    if errors:
        raise InvalidInput(errors[0].message, errors[:20])
    DocumentRepository(session).move_ocr(page.id, list(OcrStatus), OcrStatus.DONE, ocr_words=words, ocr_error=None,
                                         ocr_seconds=None)


@dataclass(frozen=True)
class PageWords:
    """What a dataset needs of a page: its size, whether its OCR is done, and its words."""

    width: int
    height: int
    status: OcrStatus
    words: list[Word]


def page_words_reader(sessions: sessionmaker[Session], project_id: int) -> Callable[[str], PageWords | None]:
    def read(url: str) -> PageWords | None:
        with sessions() as session:
            page = page_of(session, project_id, url)
            return None if page is None else PageWords(page.width, page.height, page.ocr_status, list(page.ocr_words or []))
    return read


def rectangle_pixels(value: Mapping[str, Any], width: int, height: int) -> tuple[float, float, float, float]:
    """A Label Studio rectangle (percent of the page, rotated by ``rotation`` degrees about its top-left corner) as the
    pixel box that holds it."""
    x, y = value["x"] * width / 100, value["y"] * height / 100
    w, h = value["width"] * width / 100, value["height"] * height / 100
    angle = math.radians(value.get("rotation") or 0)
    cos, sin = math.cos(angle), math.sin(angle)
    corners = [(x + dx * cos - dy * sin, y + dx * sin + dy * cos) for dx, dy in ((0, 0), (w, 0), (0, h), (w, h))]
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
    return min(xs), min(ys), max(xs), max(ys)


def covered(word: Word, box: tuple[float, float, float, float]) -> float:
    """The share of the word's area inside the box."""
    x0, y0, x1, y1 = word[1:5]
    area = max(x1 - x0, 1) * max(y1 - y0, 1)
    inside = max(0.0, min(x1, box[2]) - max(x0, box[0])) * max(0.0, min(y1, box[3]) - max(y0, box[1]))
    return inside / area


def tag_words(words: list[Word], regions: Iterable[tuple[str, tuple[float, float, float, float]]]) -> tuple[list[str], list[int], list[int]]:
    """BIO tags of the words, from labeled pixel boxes: each word at least half inside a box gets its label, the first
    of them in reading order ``B-``. Returns the tags, the indexes of the regions no word fell in, and of the regions
    that overlap an earlier one on some word (left out)."""
    tags = ["O"] * len(words)
    empty, overlapping = [], []
    for index, (label, box) in enumerate(regions):
        inside = [i for i, word in enumerate(words) if covered(word, box) >= COVERED]
        if not inside:
            empty.append(index)
        elif any(tags[i] != "O" for i in inside):
            overlapping.append(index)
        else:
            for n, i in enumerate(inside):
                tags[i] = f"{'B' if n == 0 else 'I'}-{label}"
    return tags, empty, overlapping
