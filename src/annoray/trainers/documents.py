"""Uploaded documents into pages: the type read from the bytes, the limits checked before anything is decoded, and
every page an upright PNG (EXIF orientation applied), the image annotators, OCR and models all see."""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from annoray.platform.errors import ErrorDetail, Errors, InvalidInput, describe

PDF = "application/pdf"
MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"II*\x00", "image/tiff"),
         (b"MM\x00*", "image/tiff"), (b"%PDF-", PDF))
BY_EXTENSION = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".tif": "image/tiff", ".tiff": "image/tiff",
                ".pdf": PDF}
KNOWN = frozenset(BY_EXTENSION.values())


@dataclass(frozen=True)
class PageImage:
    page: int  # from 1
    png: bytes
    width: int
    height: int


@dataclass(frozen=True)
class Limits:
    max_pixels: int
    max_pages: int
    pdf_dpi: int


def sniff(data: bytes) -> str | None:
    """The media type the bytes are, by their signature."""
    return next((media_type for magic, media_type in MAGIC if data.startswith(magic)), None)


def declared_type(filename: str, content_type: str | None) -> str | None:
    """What the upload says it is: its part's content type when that names a known type, else its file extension."""
    if content_type in KNOWN:
        return content_type
    return BY_EXTENSION.get(PurePath(filename).suffix.lower())


def measure(filename: str, content_type: str | None, data: bytes, limits: Limits) -> tuple[str, list[tuple[int, int]]]:
    """The file's media type and the size of each page it would render to, read from its headers alone (nothing is
    decoded or rendered); `InvalidInput` (E901-E905) for a file that is not what it says, too big a page, too many
    pages, or bytes that cannot be read."""
    found = sniff(data)
    if found is None:
        raise _refused(Errors.E901.format(filename=filename, found=_what(data)))
    declared = declared_type(filename, content_type)
    if declared is not None and declared != found:
        raise _refused(Errors.E902.format(filename=filename, declared=declared, found=found))
    with _read(filename):
        sizes = _pdf_sizes(filename, data, limits) if found == PDF else _image_sizes(filename, data, limits)
    if not sizes:
        raise _refused(Errors.E905.format(filename=filename, why="it has no pages"))
    for page, (width, height) in enumerate(sizes, start=1):
        if width * height > limits.max_pixels:
            raise _refused(Errors.E903.format(filename=filename, page=page, size=f"{width}x{height} = {width * height} pixels",
                                              limit=limits.max_pixels))
    return found, sizes


def render(filename: str, media_type: str, data: bytes, limits: Limits) -> Iterator[PageImage]:
    """The file's pages, one at a time (a caller stores each before the next is drawn: one page in memory at once);
    the file was measured first."""
    with _read(filename):
        yield from (_pdf_pages(data, limits) if media_type == PDF else _image_pages(_open_image(filename, data, limits)))


@contextmanager
def _read(filename: str) -> Iterator[None]:
    try:
        yield
    except InvalidInput:
        raise
    except Exception as exc:  # truncated or corrupt bytes behind a valid signature
        raise _refused(Errors.E905.format(filename=filename, why=describe(exc, 200))) from None


def _open_image(filename: str, data: bytes, limits: Limits) -> Any:
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))  # reads the header only
    except Image.DecompressionBombError as exc:  # Pillow's own guard, at twice its limit: the size is in its message
        size = f"{m.group(1)} pixels" if (m := re.search(r"\((\d+) pixels\)", str(exc))) else "too many pixels"
        raise _refused(Errors.E903.format(filename=filename, page=1, size=size, limit=limits.max_pixels)) from None


def _image_sizes(filename: str, data: bytes, limits: Limits) -> list[tuple[int, int]]:
    """Each frame's size (EXIF orientation may swap its sides later, never its pixels)."""
    image = _open_image(filename, data, limits)
    frames = getattr(image, "n_frames", 1)
    if frames > limits.max_pages:
        raise _refused(Errors.E904.format(filename=filename, pages=frames, limit=limits.max_pages))
    sizes = []
    for index in range(frames):
        image.seek(index)
        sizes.append(image.size)
    return sizes


def _image_pages(image: Any) -> Iterator[PageImage]:
    from PIL import ImageOps

    for index in range(getattr(image, "n_frames", 1)):
        image.seek(index)
        yield _png(index + 1, ImageOps.exif_transpose(image))


def _pdf_sizes(filename: str, data: bytes, limits: Limits) -> list[tuple[int, int]]:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    try:
        if len(pdf) > limits.max_pages:
            raise _refused(Errors.E904.format(filename=filename, pages=len(pdf), limit=limits.max_pages))
        scale = limits.pdf_dpi / 72
        return [tuple(round(side * scale) for side in pdf.get_page_size(index)) for index in range(len(pdf))]  # type: ignore[misc]
    finally:
        pdf.close()


def _pdf_pages(data: bytes, limits: Limits) -> Iterator[PageImage]:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    try:
        for index in range(len(pdf)):
            page = pdf[index]
            try:
                yield _png(index + 1, page.render(scale=limits.pdf_dpi / 72).to_pil())
            finally:
                page.close()
    finally:
        pdf.close()


def _png(page: int, image: Any) -> PageImage:
    if image.mode not in ("1", "L", "RGB"):
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return PageImage(page, out.getvalue(), image.width, image.height)


def _what(data: bytes) -> str:
    return "an empty file" if not data else f"bytes starting {data[:8]!r}"


def _refused(message: str) -> InvalidInput:
    return InvalidInput(message, [ErrorDetail(message, field="file")])
