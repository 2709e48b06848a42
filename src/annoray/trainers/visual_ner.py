"""The layout-aware Visual NER engine: a spaCy NER over a page's OCR words in reading order, whose word embeddings
hash where each word sits on the page beside what it says.

spaCy's ``MultiHashEmbed`` embeds any token attribute it is given. The page's layout goes into two of them, set on
every word before the model sees it, in training and in prediction alike: ``TAG`` holds the word's cell on a coarse
grid of the page, ``LEMMA`` its size against the page's usual text, whether it starts or ends its line, and whether
the word before it on the line is a caption (ends with a colon). The window encoder then reads each word with its
neighbours in reading order. ``text_only`` switches the layout off: the same model on the words alone, the
baseline the benchmark measures the layout against.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from annoray.platform.labeling.config import ModelKind
from annoray.platform.labeling.datasets import Example, VisualNerExample
from annoray.trainers.engines import SpacyEngine, register

TEXT_ATTRS = ["NORM", "PREFIX", "SUFFIX", "SHAPE"]
LAYOUT_ATTRS = ["TAG", "LEMMA"]
GRID = (8, 16)  # columns, rows


def layout_features(words: Sequence[Sequence[Any]], width: int, height: int) -> list[tuple[str, str]]:
    """(grid cell, shape of the word on its line) per word; words are [text, x0, y0, x1, y1, block, line]."""
    sizes = sorted(max(w[4] - w[2], 1) for w in words) or [1]
    usual = sizes[len(sizes) // 2]
    out = []
    for i, (text, x0, y0, x1, y1, _block, line) in enumerate(words):
        cx, cy = (x0 + x1) / 2 / max(width, 1), (y0 + y1) / 2 / max(height, 1)
        cell = f"x{min(int(cx * GRID[0]), GRID[0] - 1)}y{min(int(cy * GRID[1]), GRID[1] - 1)}"
        size = max(-2, min(3, round(2 * math.log2(max(y1 - y0, 1) / usual))))
        first = i == 0 or words[i - 1][6] != line
        last = i == len(words) - 1 or words[i + 1][6] != line
        after_caption = not first and str(words[i - 1][0]).endswith(":")
        out.append((cell, f"s{size}{'F' if first else ''}{'L' if last else ''}{'C' if after_caption else ''}"))
    return out


def page_doc(nlp: Any, words: Sequence[Sequence[Any]], width: int, height: int, *, layout: bool = True) -> Any:
    """The page as a spaCy Doc of its OCR words, each carrying its layout (what the model saw in training)."""
    from spacy.tokens import Doc

    doc = Doc(nlp.vocab, words=[str(w[0]) for w in words], spaces=[True] * len(words))
    if layout:
        for token, (cell, shape) in zip(doc, layout_features(words, width, height), strict=True):
            token.tag_, token.lemma_ = cell, shape
    return doc


@register
class SpacyVisualNer(SpacyEngine):
    name = "spacy.visual_ner.v1"
    kind = ModelKind.VISUAL_NER
    text_only = False
    defaults = {"epochs": 30, "batch_size": 4, "learning_rate": 0.002, "dropout": 0.2}
    """A page is one example, so a project has few: batches of 32 over 10 epochs made about 40 updates and learned
    nothing (micro F1 0.076 on 149 EC-FUNSD forms); `benchmarks/visual_ner.py` measured these."""

    def _pipe_name(self) -> str:
        return "ner"

    def _model_config(self) -> dict[str, Any]:
        attrs = TEXT_ATTRS + ([] if self.text_only else LAYOUT_ATTRS)
        rows = [5000, 1000, 2500, 2500, 500, 500][:len(attrs)]
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
        return page_doc(nlp, words, width, height, layout=not self.text_only)

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
    text_only = True


def _word_labels(spans: Sequence[tuple[int, int, str]], count: int) -> list[str]:
    labels = ["O"] * count
    for start, end, label in spans:
        labels[start:end] = [label] * (end - start)
    return labels
