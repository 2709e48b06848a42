"""OCR of a page image into words with pixel boxes, in reading order: Tesseract (the backend chosen by
``benchmarks/ocr_backends.py``), run through ``pytesseract``, in the project's language."""

from __future__ import annotations

import io
import shutil

# the seeds' languages, as Tesseract names its language packs (Debian: tesseract-ocr-<code>)
TESSERACT_LANGUAGES = {"en": "eng", "de": "deu", "es": "spa", "pt": "por", "it": "ita", "da": "dan", "ro": "ron"}

Word = list  # [text, x0, y0, x1, y1, block, line]: pixels of the page image; block and line number from 0, page-wide


def tesseract_language(language: str) -> str:
    return TESSERACT_LANGUAGES.get(language, "eng")


def unavailable(language: str) -> str | None:
    """Why OCR in ``language`` cannot run on this machine, or None."""
    if shutil.which("tesseract") is None:
        return "Tesseract is not installed here (Debian: apt-get install tesseract-ocr)"
    import pytesseract

    code = tesseract_language(language)
    if code not in pytesseract.get_languages(config=""):
        return f"Tesseract has no '{code}' language pack here (Debian: apt-get install tesseract-ocr-{code})"
    return None


def ocr_words(png: bytes, language: str, *, upscale_below: int = 0, page_segmentation: int = 3) -> list[Word]:
    """The page's words in Tesseract's reading order (blocks, paragraphs, lines, words), with their boxes in the
    page's own pixels. A page whose longer side has fewer than ``upscale_below`` pixels is scaled up to it first (at
    most 3x): a 100 dpi scan is read much better at 150 (``benchmarks/ocr_backends.py``). ``page_segmentation`` is
    Tesseract's ``--psm``: 3 reads a page of text blocks (its default), 11 finds sparse text in any order, as on a
    form. Tesseract uses as many threads as ``OMP_THREAD_LIMIT`` allows (the OCR task sets it to its CPUs)."""
    import pytesseract
    from PIL import Image

    if why := unavailable(language):
        raise RuntimeError(why)
    image = Image.open(io.BytesIO(png))
    scale = min(3.0, upscale_below / max(image.size)) if max(image.size) < upscale_below else 1.0
    if scale != 1.0:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    data = pytesseract.image_to_data(image, lang=tesseract_language(language), config=f"--psm {page_segmentation}",
                                     output_type=pytesseract.Output.DICT)
    words: list[Word] = []
    blocks: dict[int, int] = {}
    lines: dict[tuple[int, int, int], int] = {}
    for i, text in enumerate(data["text"]):
        if not text.strip():
            continue
        block = blocks.setdefault(data["block_num"][i], len(blocks))
        line = lines.setdefault((data["block_num"][i], data["par_num"][i], data["line_num"][i]), len(lines))
        x, y, w, h = (v / scale for v in (data["left"][i], data["top"][i], data["width"][i], data["height"][i]))
        words.append([text.strip(), round(x), round(y), round(x + w), round(y + h), block, line])
    return words
