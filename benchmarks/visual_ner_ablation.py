"""``benchmarks/visual_ner.py --ablation``: what each change to Visual NER brought, in one process, on EC-FUNSD.

The OCR options (the pages as uploaded; upscaled; upscaled and read as sparse text, as the platform reads them now)
run over every form with ``annoray.trainers.ocr.ocr_words``, one process per core; the words are tagged by the
entities' rectangles with the platform's own ``tag_words``; each engine variant trains with the Visual NER defaults
and is scored on the held-out forms, one training per core. The default engine is trained again at other seeds on the
platform's OCR words: one seed moves its F1 by a few hundredths.
"""

from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from ocr_backends import matched
from visual_ner import LABELS, load_form

from annoray.platform.labeling.datasets import VisualNerExample
from annoray.platform.labeling.pages import tag_words
from annoray.platform.models.training import TrainingParams
from annoray.platform.settings import OcrSettings
from annoray.trainers.engines import EngineConfig
from annoray.trainers.visual_ner import SpacyVisualNer

PLATFORM_OCR = OcrSettings()
OCR = {"as uploaded": (0, 3), f"upscaled below {PLATFORM_OCR.upscale_below_px} px": (PLATFORM_OCR.upscale_below_px, 3),
       f"upscaled, sparse text (psm {PLATFORM_OCR.page_segmentation})":  # (upscale_below, --psm)
       (PLATFORM_OCR.upscale_below_px, PLATFORM_OCR.page_segmentation)}
VARIANTS = {"text only": (), "grid + line shape": ("TAG", "LEMMA"), "+ gaps": ("TAG", "LEMMA", "DEP"),
            "+ word above (default)": SpacyVisualNer.layout_attrs}
PLATFORM = list(OCR)[-1]  # the words the platform reads with its default settings


def read(data: Path, name: str, option: tuple[int, int]) -> tuple[list[list[Any]], float]:
    from annoray.trainers.ocr import ocr_words

    doc, _, _ = load_form(data, name)
    png = (data / doc["img"]["fname"]).read_bytes()
    began = time.perf_counter()
    words = ocr_words(png, "en", upscale_below=option[0], page_segmentation=option[1])
    return words, time.perf_counter() - began


def examples(data: Path, names: list[str], words: list[list[list[Any]]] | None) -> list[VisualNerExample]:
    """The forms as the platform's training data: the given words (the gold ones when None), tagged by rectangles."""
    out = []
    for i, name in enumerate(names):
        doc, gold, entities = load_form(data, name)
        page = gold if words is None else words[i]
        tags, _, _ = tag_words(page, entities)
        out.append(VisualNerExample(i, i, page, tags, doc["img"]["width"], doc["img"]["height"]))
    return out


def f1(layout: tuple[str, ...], train: list[VisualNerExample], test: list[VisualNerExample], seed: int = 0) -> float:
    engine_type = type("Variant", (SpacyVisualNer,), {"layout_attrs": layout})
    engine = engine_type(EngineConfig(labels=LABELS))
    params = engine.params(TrainingParams(seed=seed))
    with tempfile.TemporaryDirectory(prefix="annoray-ablation-") as tmp:
        *_, last = engine.train(train=train, dev=test, params=params, output_dir=Path(tmp))
    return last.metrics["micro"]["f1"]


def ablation(data: Path, names: list[str], cut: int, seeds: int = 3) -> None:
    cores = os.cpu_count() or 1
    word_sets: dict[str, list[list[list[Any]]] | None] = {"gold": None}
    gold = [load_form(data, name)[1] for name in names]
    with ProcessPoolExecutor(cores) as pool:
        for option, settings in OCR.items():
            began = time.perf_counter()
            pages = list(pool.map(read, [data] * len(names), names, [settings] * len(names)))
            word_sets[option] = [words for words, _ in pages]
            hits = sum(matched([(w[0], tuple(w[1:5])) for w in g], [(w[0], tuple(w[1:5])) for w in words])
                       for g, (words, _) in zip(gold, pages, strict=True))
            print(f"OCR {option}: word recall {hits / sum(len(g) for g in gold):.3f}, "
                  f"{len(pages) / sum(s for _, s in pages):.2f} pages/s on one core "
                  f"({time.perf_counter() - began:.0f} s for {len(pages)} pages on {cores} cores)", flush=True)
        runs = {}
        for words, pages in word_sets.items():
            forms = examples(data, names, pages)
            for variant, layout in VARIANTS.items():
                runs[(words, variant)] = pool.submit(f1, layout, forms[:cut], forms[cut:])
            if words == PLATFORM:
                for seed in range(1, seeds):
                    runs[(words, seed)] = pool.submit(f1, SpacyVisualNer.layout_attrs, forms[:cut], forms[cut:], seed)
        figures = {key: run.result() for key, run in runs.items()}
    print(f"\n{len(names)} EC-FUNSD forms: {cut} train, {len(names) - cut} test; entity F1 with the Visual NER defaults "
          f"({', '.join(f'{k} {v}' for k, v in SpacyVisualNer.defaults.items())})")
    print(f"{'words':<40}" + "".join(f"{variant:>24}" for variant in VARIANTS))
    for words in word_sets:
        print(f"{words:<40}" + "".join(f"{figures[(words, variant)]:>24.3f}" for variant in VARIANTS))
    at_seeds = [figures[(PLATFORM, list(VARIANTS)[-1])]] + [figures[(PLATFORM, seed)] for seed in range(1, seeds)]
    print(f"\nthe default on OCR {PLATFORM}, seeds 0 to {seeds - 1}: " + ", ".join(f"{f:.3f}" for f in at_seeds)
          + f"; mean {sum(at_seeds) / len(at_seeds):.3f}, lowest {min(at_seeds):.3f}")
