"""The layout-aware Visual NER engine: a spaCy NER over a page's OCR words in reading order, whose word embeddings
hash where each word sits on the page beside what it says.

spaCy's ``MultiHashEmbed`` embeds any token attribute it is given. The page's layout goes into four of them, set on
every word before the model sees it, in training and in prediction alike: ``TAG`` holds the word's cell on a coarse
grid of the page, ``LEMMA`` its size against the page's usual text, whether it starts or ends its line, and whether
the word before it on the line is a caption (ends with a colon); ``DEP`` how far the nearest words are to its left
and right on its row and above it, and whether the word to its left is a caption; ``ENT_ID`` the text of the word
right above it (lower case, digits as 0), the column's caption in a table or the caption over a field. The gaps tell
a field's caption from its value when the OCR reads them as one line, or reads the value in another block; the word
above names what a value is when its caption is not on its line. Each was measured on the developers' EC-FUNSD split
by ``benchmarks/visual_ner.py --ablation`` (README, "Benchmarks").
The window encoder then reads each word with its neighbours in reading order. ``layout_attrs`` says which the model
embeds: none is the same model on the words alone, the baseline the benchmark measures the layout against. A model
stores the attributes it embeds, so one trained before a later attribute ignores it and is served as trained.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

from annoray.platform.labeling.config import ModelKind
from annoray.platform.labeling.datasets import Example, VisualNerExample
from annoray.trainers.engines import SpacyEngine, register

TEXT_ATTRS = ["NORM", "PREFIX", "SUFFIX", "SHAPE"]
LAYOUT_ATTRS = ("TAG", "LEMMA", "DEP", "ENT_ID")
GRID = (8, 16)  # columns, rows
GAPS = (0.6, 1.5, 4.0)  # the gap's buckets, in heights of the page's usual word


def layout_features(words: Sequence[Sequence[Any]], width: int, height: int) -> list[tuple[str, str, str, str]]:
    """(grid cell, shape of the word on its line, gaps around it, the word above) per word; words are [text, x0, y0,
    x1, y1, block, line]."""
    sizes = sorted(max(w[4] - w[2], 1) for w in words) or [1]
    usual = sizes[len(sizes) // 2]
    near = neighbours(words, usual)
    out = []
    for i, (text, x0, y0, x1, y1, _block, line) in enumerate(words):
        cx, cy = (x0 + x1) / 2 / max(width, 1), (y0 + y1) / 2 / max(height, 1)
        cell = f"x{min(int(cx * GRID[0]), GRID[0] - 1)}y{min(int(cy * GRID[1]), GRID[1] - 1)}"
        size = max(-2, min(3, round(2 * math.log2(max(y1 - y0, 1) / usual))))
        first = i == 0 or words[i - 1][6] != line
        last = i == len(words) - 1 or words[i + 1][6] != line
        after_caption = not first and str(words[i - 1][0]).endswith(":")
        shape = f"s{size}{'F' if first else ''}{'L' if last else ''}{'C' if after_caption else ''}"
        gaps, above = near[i]
        out.append((cell, shape, gaps, _norm(words[above][0]) if above >= 0 else "-"))
    return out


def _norm(text: Any) -> str:
    return "".join("0" if c.isdigit() else c for c in str(text).lower())


def neighbours(words: Sequence[Sequence[Any]], usual: float) -> list[tuple[str, int]]:
    """Per word, its gaps and the index of the nearest word above it (-1 when none). The gaps are to the nearest word
    on its left and on its right on its row (a word whose box spans the word's middle height) and to the nearest above
    it (overlapping it across), each as a bucket of ``GAPS`` or ``n`` (none), then ``C`` when the word to its left is
    a caption. Words are compared with the whole page 256 at a time, so a page of thousands of words needs tens of
    megabytes, not gigabytes."""
    import numpy as np

    if not words:
        return []
    boxes = np.array([w[1:5] for w in words], dtype=np.float32)
    x0, y0, x1, y1 = boxes.T
    middle = (y0 + y1) / 2
    captions = np.array([str(w[0]).endswith(":") for w in words])
    out = []
    for start in range(0, len(words), 256):
        rows = slice(start, start + 256)
        others = np.ones((len(x0[rows]), len(words)), dtype=bool)
        others[np.arange(others.shape[0]), np.arange(start, start + others.shape[0])] = False
        on_row = others & (y0[None, :] <= middle[rows, None]) & (middle[rows, None] <= y1[None, :])
        left = np.where(on_row & (x1[None, :] <= x0[rows, None] + 2), x0[rows, None] - x1[None, :], np.inf)
        right = np.where(on_row & (x0[None, :] >= x1[rows, None] - 2), x0[None, :] - x1[rows, None], np.inf)
        across = others & (np.minimum(x1[rows, None], x1[None, :]) - np.maximum(x0[rows, None], x0[None, :]) > 0)
        above = np.where(across & (y1[None, :] <= y0[rows, None] + 2), y0[rows, None] - y1[None, :], np.inf)
        nearest = np.stack([left.min(axis=1), above.min(axis=1), right.min(axis=1)], axis=1)
        words_near = zip(nearest.tolist(), left.argmin(axis=1).tolist(), above.argmin(axis=1).tolist(), strict=True)
        for gaps, left_word, above_word in words_near:
            caption = "C" if not math.isinf(gaps[0]) and captions[left_word] else ""
            out.append(("".join(_bucket(gap, usual) for gap in gaps) + caption, -1 if math.isinf(gaps[1]) else above_word))
    return out


def _bucket(gap: float, usual: float) -> str:
    if math.isinf(gap):
        return "n"
    return str(sum(gap / max(usual, 1) >= edge for edge in GAPS))


def page_doc(nlp: Any, words: Sequence[Sequence[Any]], width: int, height: int, *, layout: bool = True) -> Any:
    """The page as a spaCy Doc of its OCR words, each carrying its layout (what the model saw in training)."""
    from spacy.tokens import Doc

    doc = Doc(nlp.vocab, words=[str(w[0]) for w in words], spaces=[True] * len(words))
    if layout:
        for token, (cell, shape, gaps, above) in zip(doc, layout_features(words, width, height), strict=True):
            token.tag_, token.lemma_, token.dep_, token.ent_id_ = cell, shape, gaps, above
    return doc


@register
class SpacyVisualNer(SpacyEngine):
    name = "spacy.visual_ner.v1"
    kind = ModelKind.VISUAL_NER
    layout_attrs: ClassVar[tuple[str, ...]] = LAYOUT_ATTRS
    defaults = {"epochs": 30, "batch_size": 4, "learning_rate": 0.002, "dropout": 0.2}
    """A page is one example, so a project has few: batches of 32 over 10 epochs made about 40 updates and learned
    nothing (micro F1 0.076 on 149 EC-FUNSD forms); `benchmarks/visual_ner.py` measured these."""

    def _pipe_name(self) -> str:
        return "ner"

    def _model_config(self) -> dict[str, Any]:
        attrs = [*TEXT_ATTRS, *self.layout_attrs]
        rows = [5000, 1000, 2500, 2500, 500, 500, 500, 2500][:len(attrs)]
        return {
            "@architectures": "spacy.TransitionBasedParser.v2", "state_type": "ner", "extra_state_tokens": False,
            "hidden_width": 64, "maxout_pieces": 2, "use_upper": True, "nO": None,
            "tok2vec": {
                "@architectures": "spacy.Tok2Vec.v2",
                "embed": {"@architectures": "spacy.MultiHashEmbed.v2", "width": 96, "attrs": attrs, "rows": rows,
                          "include_static_vectors": bool(self.config.embeddings)},
                "encode": {"@architectures": "spacy.MaxoutWindowEncoder.v2", "width": 96, "depth": 4, "window_size": 1,
                           "maxout_pieces": 3},
            },
        }

    def page_doc(self, nlp: Any, words: Sequence[Sequence[Any]], width: int, height: int) -> Any:
        return page_doc(nlp, words, width, height, layout=bool(self.layout_attrs))

    def _to_spacy(self, nlp: Any, example: Example) -> Any:
        from spacy.training import Example as SpacyExample
        from spacy.training import iob_to_biluo

        assert isinstance(example, VisualNerExample)
        doc = self.page_doc(nlp, example.words, example.width, example.height)
        return SpacyExample.from_dict(doc, {"entities": iob_to_biluo(example.tags)})

    def predict_pages(self, nlp: Any, pages: Sequence[tuple[Sequence[Sequence[Any]], int, int]]) -> list[list[tuple[int, int, str]]]:
        """Entities per page as (first word, word after the last, label)."""
        docs = [self.page_doc(nlp, words, width, height) for words, width, height in pages]
        return [[(ent.start, ent.end, ent.label_) for ent in doc.ents] for doc in nlp.pipe(docs, batch_size=16)]

    def _score(self, nlp: Any, dev: Sequence[Example]) -> dict[str, Any]:
        from annoray.trainers.metrics import classification_metrics, ner_metrics

        pages = [e for e in dev if isinstance(e, VisualNerExample)]
        predicted = self.predict_pages(nlp, [(e.words, e.width, e.height) for e in pages])
        metrics = ner_metrics([e.spans for e in pages], predicted, self.config.labels)
        gold_words = [tag[2:] if tag != "O" else "O" for e in pages for tag in e.tags]
        found_words = [label for e, spans in zip(pages, predicted, strict=True) for label in _word_labels(spans, len(e.words))]
        words = classification_metrics(gold_words, found_words, [*self.config.labels, "O"])
        return metrics | {"confusion_matrix": words["confusion_matrix"], "word_accuracy": words["accuracy"]}


@register
class SpacyVisualNerTextOnly(SpacyVisualNer):
    """The same model on the words alone, their places on the page ignored: ``"engine": "spacy_words"`` in a training
    request, to measure what the layout brings on one's own forms (the benchmark's baseline)."""

    name = "spacy_words.visual_ner.v1"
    family = "spacy_words"
    layout_attrs = ()


def _word_labels(spans: Sequence[tuple[int, int, str]], count: int) -> list[str]:
    labels = ["O"] * count
    for start, end, label in spans:
        labels[start:end] = [label] * (end - start)
    return labels
