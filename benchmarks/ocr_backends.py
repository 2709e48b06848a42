"""Which OCR backend annoray uses, decided by measurement: word recall against gold words, and pages per second.

Runs each backend that is importable here on the same scanned forms of EC-FUNSD (``../shared/data/ec_funsd``: real
forms with gold word boxes; research use only, so the data stays outside the repository) and prints, in one run:
word recall (a gold word counts when an OCR word with the same text, compared case-insensitively without surrounding
punctuation, has its centre inside the gold word's box), word precision the same way, and pages per second on one
core. Tesseract is the baseline the other is shown against.

    python benchmarks/ocr_backends.py --data ../shared/data/ec_funsd [--pages 30]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core each, as one OCR task gets

Word = tuple[str, tuple[float, float, float, float]]  # text, (x0, y0, x1, y1) in pixels


def tesseract(path: Path) -> list[Word]:
    import pytesseract
    from PIL import Image

    data = pytesseract.image_to_data(Image.open(path), lang="eng", output_type=pytesseract.Output.DICT)
    return [(t, (x, y, x + w, y + h)) for t, x, y, w, h in zip(data["text"], data["left"], data["top"], data["width"], data["height"],
                                                              strict=True) if t.strip()]


def rapidocr() -> Callable[[Path], list[Word]]:
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)

    def run(path: Path) -> list[Word]:
        result, _ = engine(str(path), return_word_box=True)
        words: list[Word] = []
        for box, text, _score, *rest in result or []:
            xs, ys = [p[0] for p in box], [p[1] for p in box]
            pieces = text.split()
            if not pieces:
                continue
            # a line: spread its width over its words by their length (rapidocr returns lines)
            x0, x1, total = min(xs), max(xs), sum(len(p) for p in pieces) + len(pieces) - 1
            at = x0
            for piece in pieces:
                width = (x1 - x0) * len(piece) / total
                words.append((piece, (at, min(ys), at + width, max(ys))))
                at += width + (x1 - x0) / total
        return words

    return run


def norm(text: str) -> str:
    return text.strip(".,:;()[]'\"-_/").lower()


def matched(gold: list[Word], found: list[Word]) -> int:
    """Gold words with a found word of the same text whose centre is inside the gold box (each found word used once)."""
    used: set[int] = set()
    hits = 0
    for text, (x0, y0, x1, y1) in gold:
        for i, (t, (a0, b0, a1, b1)) in enumerate(found):
            cx, cy = (a0 + a1) / 2, (b0 + b1) / 2
            if i not in used and norm(t) == norm(text) and x0 - 2 <= cx <= x1 + 2 and y0 - 2 <= cy <= y1 + 2:
                used.add(i)
                hits += 1
                break
    return hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/ec_funsd")
    parser.add_argument("--pages", type=int, default=30)
    args = parser.parse_args()
    forms = sorted((args.data / "jsons").glob("*.json"))[: args.pages]
    pages = []
    for form in forms:
        doc = json.loads(form.read_text())
        gold = [(w["text"], tuple(w["box"])) for segment in doc["document"] for w in segment["words"] if norm(w["text"])]
        pages.append((args.data / doc["img"]["fname"], gold))
    backends: dict[str, Callable[[Path], list[Word]]] = {"tesseract": tesseract}
    try:
        backends["rapidocr"] = rapidocr()
    except ImportError as exc:
        print(f"rapidocr not measured: {exc}")
    figures = {}
    for name, backend in backends.items():
        backend(pages[0][0])  # warm up: models loaded, caches filled
        hits = gold_words = found_words = found_hits = 0
        began = time.perf_counter()
        for path, gold in pages:
            found = backend(path)
            hit = matched(gold, found)
            hits, gold_words, found_words = hits + hit, gold_words + len(gold), found_words + len(found)
            found_hits += hit
        seconds = time.perf_counter() - began
        figures[name] = (hits / gold_words, found_hits / max(found_words, 1), len(pages) / seconds)
    base = figures["tesseract"]
    print(f"{len(pages)} EC-FUNSD pages, {sum(len(g) for _, g in pages)} gold words, one core per backend")
    print(f"{'backend':<10} {'recall':>7} {'precision':>9} {'pages/s':>8} {'recall vs tesseract':>20} {'speed vs tesseract':>19}")
    for name, (recall, precision, speed) in figures.items():
        print(f"{name:<10} {recall:>7.3f} {precision:>9.3f} {speed:>8.2f} {recall / base[0]:>19.2f}x {speed / base[2]:>18.2f}x")


if __name__ == "__main__":
    main()
