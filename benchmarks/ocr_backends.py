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


def tesseract_with(psm: int = 3, scale: float = 1.0, binarize: bool = False) -> Callable[[Path], list[Word]]:
    """Tesseract with a page segmentation mode (3: a page of blocks, today's; 11 and 12: sparse text, as forms are),
    the page upscaled first (FUNSD scans are about 100 dpi; Tesseract is trained near 300), and binarized (Otsu's
    threshold) or not; boxes come back in the page's own pixels."""
    def run(path: Path) -> list[Word]:
        import numpy as np
        import pytesseract
        from PIL import Image

        image = Image.open(path).convert("L")
        if scale != 1.0:
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
        if binarize:
            image = image.point(lambda v, t=otsu(np.asarray(image)): 255 if v > t else 0)
        data = pytesseract.image_to_data(image, lang="eng", config=f"--psm {psm}", output_type=pytesseract.Output.DICT)
        return [(t, (x / scale, y / scale, (x + w) / scale, (y + h) / scale)) for t, x, y, w, h in
                zip(data["text"], data["left"], data["top"], data["width"], data["height"], strict=True) if t.strip()]

    return run


def otsu(pixels) -> int:
    """The grey level that best splits the page into ink and paper (Otsu's method)."""
    import numpy as np

    counts = np.bincount(pixels.ravel(), minlength=256).astype(float)
    levels = np.arange(256)
    weight = np.cumsum(counts)
    mean = np.cumsum(counts * levels)
    total, total_mean = weight[-1], mean[-1]
    between = (total_mean * weight - mean * total) ** 2 / np.maximum(weight * (total - weight), 1e-9)
    return int(np.argmax(between))


def combined(first: Callable[[Path], list[Word]], second: Callable[[Path], list[Word]]) -> Callable[[Path], list[Word]]:
    """Both passes' words: the first's, and the second's whose centre falls in none of the first's boxes."""
    def run(path: Path) -> list[Word]:
        words = first(path)
        for text, (a0, b0, a1, b1) in second(path):
            cx, cy = (a0 + a1) / 2, (b0 + b1) / 2
            if not any(x0 <= cx <= x1 and y0 <= cy <= y1 for _, (x0, y0, x1, y1) in words):
                words.append((text, (a0, b0, a1, b1)))
        return words

    return run


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
    parser.add_argument("--only", nargs="*", help="measure only these (and the baseline)")
    args = parser.parse_args()
    forms = sorted((args.data / "jsons").glob("*.json"))[: args.pages]
    pages = []
    for form in forms:
        doc = json.loads(form.read_text())
        gold = [(w["text"], tuple(w["box"])) for segment in doc["document"] for w in segment["words"] if norm(w["text"])]
        pages.append((args.data / doc["img"]["fname"], gold))
    backends: dict[str, Callable[[Path], list[Word]]] = {
        "tesseract": tesseract,  # what the platform runs today (psm 3, the page as uploaded)
        "psm 11": tesseract_with(psm=11),
        "psm 12": tesseract_with(psm=12),
        "x2": tesseract_with(scale=2),
        "psm 11 x2": tesseract_with(psm=11, scale=2),
        "x2 otsu": tesseract_with(scale=2, binarize=True),
        "psm 11 x2 otsu": tesseract_with(psm=11, scale=2, binarize=True),
        "3+11 x2": combined(tesseract_with(scale=2), tesseract_with(psm=11, scale=2)),
        "x1.5": tesseract_with(scale=1.5),
        "psm 11 x1.5": tesseract_with(psm=11, scale=1.5),
        "3+11": combined(tesseract_with(), tesseract_with(psm=11)),
        "3+11 x1.5": combined(tesseract_with(scale=1.5), tesseract_with(psm=11, scale=1.5)),
    }
    if args.only:
        backends = {k: v for k, v in backends.items() if k in args.only or k == "tesseract"}
    if not args.only or "rapidocr" in args.only:
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
    print(f"{'backend':<15} {'recall':>7} {'precision':>9} {'pages/s':>8} {'recall vs tesseract':>20} {'speed vs tesseract':>19}")
    for name, (recall, precision, speed) in figures.items():
        print(f"{name:<15} {recall:>7.3f} {precision:>9.3f} {speed:>8.2f} {recall / base[0]:>19.2f}x {speed / base[2]:>18.2f}x")


if __name__ == "__main__":
    main()
