"""Visual NER on real scanned forms (EC-FUNSD): the layout-aware engine against the same model on the words alone.

EC-FUNSD (``../shared/data/ec_funsd``; its images are for research use, so the data stays outside the repository) has
149 forms with gold words, their boxes and entity labels (header, question, answer). The forms in ``data.train.txt``
order: the first 119 train, the next 30 test. In one run this prints:

- entity F1 (exact word spans) of the default engine (``spacy.visual_ner.v1``, layout on) and of the same model on
  the words alone (layout off), same data, same budget, each with the gold words and with Tesseract's words
  (gold entities carried to OCR words by the rectangles of the gold entities, as annotators' regions are);
- the layout's gain over text only, as a difference of F1;
- OCR word recall against the gold words and OCR pages per second;
- pre-annotation pages per second of the trained model (the replica's predictor, confidences included).

    python benchmarks/visual_ner.py --data ../shared/data/ec_funsd [--epochs 30] [--forms 149]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")

from annoray.platform.labeling.datasets import VisualNerExample  # noqa: E402
from annoray.platform.labeling.pages import tag_words  # noqa: E402
from annoray.platform.models.training import TrainingParams  # noqa: E402
from annoray.trainers.engines import EngineConfig, get_engine  # noqa: E402
from annoray.trainers.visual_ner import SpacyVisualNerTextOnly  # noqa: E402

LABELS = ["header", "question", "answer"]


def load_form(data: Path, name: str) -> tuple[dict, list[list], list[tuple[str, tuple]]]:
    """A form's json, its gold words in reading order ([text, x0, y0, x1, y1, block, line]) and its entities' boxes."""
    doc = json.loads((data / "jsons" / name).read_text())
    words, by_id = [], {}
    for block, segment in enumerate(doc["document"]):
        for w in segment["words"]:
            if w["text"].strip():
                by_id[w["id"]] = len(words)
                words.append([w["text"], *w["box"], block, block])
    entities = []
    for entity in doc["label_entities"]:
        boxes = [words[by_id[i]][1:5] for i in entity["word_idx"] if i in by_id]
        if boxes and entity["label"] in LABELS:
            entities.append((entity["label"], (min(b[0] for b in boxes), min(b[1] for b in boxes),
                                               max(b[2] for b in boxes), max(b[3] for b in boxes))))
    return doc, words, entities


def examples(data: Path, names: list[str], ocr: bool) -> tuple[list[VisualNerExample], float, float]:
    """The forms as examples (gold or OCR words), OCR word recall and OCR pages per second (0, 0 with gold words)."""
    from ocr_backends import matched  # beside this script

    from annoray.trainers.ocr import ocr_words

    out, hits, gold_count, seconds = [], 0, 0, 0.0
    for i, name in enumerate(names):
        doc, words, entities = load_form(data, name)
        if ocr:  # the platform's own OCR: words with their blocks and lines, in reading order
            began = time.perf_counter()
            found = ocr_words((data / doc["img"]["fname"]).read_bytes(), "en")
            seconds += time.perf_counter() - began
            hits += matched([(w[0], tuple(w[1:5])) for w in words], [(w[0], tuple(w[1:5])) for w in found])
            gold_count += len(words)
            words = found
        tags, _, _ = tag_words(words, entities)
        out.append(VisualNerExample(i, i, words, tags, doc["img"]["width"], doc["img"]["height"]))
    return out, (hits / gold_count if ocr else 0.0), (len(names) / seconds if ocr else 0.0)


def train_and_score(cls: type, train: list, test: list, epochs: int) -> tuple[float, object, Path]:
    engine = cls(EngineConfig(labels=LABELS, language="en"))
    out = Path(tempfile.mkdtemp(prefix="annoray-vner-"))
    params = TrainingParams(epochs=epochs, batch_size=4, learning_rate=0.002, dropout=0.2)
    for _ in engine.train(train=train, dev=[], params=params, output_dir=out):
        pass
    return engine.evaluate(out / "model", test)["micro"]["f1"], engine, out / "model"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/ec_funsd")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--forms", type=int, default=149)
    args = parser.parse_args()
    names = [line.strip() for line in (args.data / "data.train.txt").read_text().splitlines() if line.strip()]
    names += sorted(p.name for p in (args.data / "jsons").glob("*.json") if p.name not in set(names))
    names = names[:args.forms]
    cut = round(len(names) * 0.8)
    figures = {}
    for words in ("gold", "ocr"):
        data, recall, speed = examples(args.data, names, ocr=words == "ocr")
        train, test = data[:cut], data[cut:]
        for cls in (get_engine("spacy.visual_ner.v1"), SpacyVisualNerTextOnly):
            f1, engine, model = train_and_score(cls, train, test, args.epochs)
            figures[(words, cls.text_only)] = f1
            print(f"{words} words, {'text only' if cls.text_only else 'layout'}: entity F1 {f1:.3f}", flush=True)
        if words == "ocr":
            ocr_recall, ocr_speed = recall, speed
    from annoray.serve_apps.predictor import Predictor, ServedModel

    predictor = Predictor([ServedModel("m", "visual_ner", str(model))])
    pages = [{"words": e.words, "width": e.width, "height": e.height} for e in test]
    began = time.perf_counter()
    predictor.predict(pages)
    serve_speed = len(pages) / (time.perf_counter() - began)
    print(f"\n{len(names)} EC-FUNSD forms: {cut} train, {len(names) - cut} test; {args.epochs} epochs; labels {', '.join(LABELS)}")
    print(f"{'words':<6} {'layout F1':>10} {'text-only F1':>13} {'layout - text':>14}")
    for words in ("gold", "ocr"):
        layout, text = figures[(words, False)], figures[(words, True)]
        print(f"{words:<6} {layout:>10.3f} {text:>13.3f} {layout - text:>+14.3f}")
    print(f"OCR (Tesseract, one core): word recall {ocr_recall:.3f}, {ocr_speed:.2f} pages/s")
    print(f"pre-annotation (the replica's predictor, confidences included, one core): {serve_speed:.2f} pages/s")


if __name__ == "__main__":
    main()
