"""The examples a training learns from, one dataclass per kind: plain data (no spaCy objects), so they can travel to a
training worker that never touches the database; and the sentences and entity pairs they are cut from."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any


def sentence_around(doc: Any, start: int, end: int) -> tuple[int, int]:
    """Character bounds of the sentence of ``doc`` (sentences set) holding the chunk ``start:end``."""
    for sent in doc.sents:
        if sent.start_char <= start < sent.end_char:
            return sent.start_char, max(sent.end_char, end)
    return 0, len(doc.text)


def sentence_pairs(doc: Any, spans: Sequence[tuple[int, int]], *, directed: bool,
                   ) -> Iterator[tuple[tuple[int, int], list[int], int, int]]:
    """The pairs of entities (``spans``, character offsets in ``doc``, sentences set) that share a sentence: both
    orders when ``directed``, else each pair once in text order. Yields the sentence's bounds, its entities (indexes
    into ``spans``, in text order) and the pair as two positions in that list."""
    sentences: dict[tuple[int, int], list[int]] = {}
    for i in sorted(range(len(spans)), key=lambda i: spans[i]):
        sentences.setdefault(sentence_around(doc, *spans[i]), []).append(i)
    for bounds, members in sentences.items():
        for a in range(len(members)):
            for b in range(len(members)):
                if a != b and (directed or a < b):
                    yield bounds, members, a, b


@dataclass
class NerExample:
    task_id: int
    completion_id: int
    text: str
    spans: list[tuple[int, int, str]]


@dataclass
class AssertionExample:
    """An assertion label on a NER chunk; offsets are relative to ``text``, the chunk's sentence."""

    task_id: int
    completion_id: int
    text: str
    start: int
    end: int
    chunk_label: str
    label: str


@dataclass
class ClassificationExample:
    task_id: int
    completion_id: int
    text: str
    labels: list[str]


@dataclass
class RelationExample:
    """Two entities of one sentence and the relation from ``head`` to ``tail`` (or `NO_RELATION`): ``text`` is the
    sentence, ``spans`` every entity in it (offsets relative to it), ``head`` and ``tail`` indexes into them."""

    task_id: int
    completion_id: int
    text: str
    spans: list[tuple[int, int, str]]
    head: int
    tail: int
    label: str


@dataclass
class VisualNerExample:
    """A document page as a sequence of OCR words in reading order, each tagged ``O``, ``B-<label>`` or ``I-<label>``."""

    task_id: int
    completion_id: int
    words: list[list[Any]]  # [text, x0, y0, x1, y1, block, line]: pixels of the page image
    tags: list[str]
    width: int
    height: int

    @property
    def spans(self) -> list[tuple[int, int, str]]:
        """The entities as (first word, word after the last, label), as NER metrics score them."""
        return bio_spans(self.tags)


def bio_spans(tags: list[str]) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []
    for i, tag in enumerate(tags):
        if tag.startswith("B-") or (tag.startswith("I-") and (not spans or spans[-1][1] != i or spans[-1][2] != tag[2:])):
            spans.append((i, i + 1, tag[2:]))
        elif tag.startswith("I-"):
            spans[-1] = (spans[-1][0], i + 1, spans[-1][2])
    return spans


Example = NerExample | AssertionExample | ClassificationExample | VisualNerExample | RelationExample
