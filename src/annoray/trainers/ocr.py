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


def ocr_words(png: bytes, language: str) -> list[Word]:
    """The page's words in Tesseract's reading order (blocks, paragraphs, lines, words), with their boxes. Tesseract
    uses as many threads as ``OMP_THREAD_LIMIT`` allows (the OCR task sets it to its CPUs)."""
    import pytesseract
    from PIL import Image

    if why := unavailable(language):
        raise RuntimeError(why)
    data = pytesseract.image_to_data(Image.open(io.BytesIO(png)), lang=tesseract_language(language),
                                     output_type=pytesseract.Output.DICT)
    words: list[Word] = []
    blocks: dict[int, int] = {}
    lines: dict[tuple[int, int, int], int] = {}
    for i, text in enumerate(data["text"]):
        if not text.strip():
            continue
        block = blocks.setdefault(data["block_num"][i], len(blocks))
        line = lines.setdefault((data["block_num"][i], data["par_num"][i], data["line_num"][i]), len(lines))
        x, y, w, h = data["left"][i], data["top"][i], data["width"][i], data["height"][i]
        words.append([text.strip(), x, y, x + w, y + h, block, line])
    return words
