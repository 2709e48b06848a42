"""Per-kind training datasets built from selected completions (as the examples of ``examples.py``), their split and
their label counts."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from annoray.platform.errors import ErrorDetail, Errors
from annoray.platform.labeling.config import NO_RELATION, LabelGroup, LabelingConfig, ModelKind, region_labels
from annoray.platform.labeling.examples import (  # noqa: F401  (the examples are read from here too)
    AssertionExample, ClassificationExample, Example, NerExample, RelationExample, VisualNerExample, bio_spans,
    sentence_around, sentence_pairs,
)
from annoray.platform.labeling.pages import PageWords, rectangle_pixels, tag_words
from annoray.platform.lifecycle import OcrStatus

LANGUAGES = ("en", "de", "es", "pt", "it", "da", "ro")


class SplitMethod(StrEnum):
    RANDOM = "random"
    TAGS = "tags"


@dataclass(frozen=True)
class SelectedCompletion:
    """One task with the completion selection chose for it."""

    task_id: int
    completion_id: int
    data: Mapping[str, Any]
    tags: tuple[str, ...]
    result: list[Any]


@dataclass
class Split:
    method: SplitMethod
    seed: int | None
    validation_split: float | None
    train_task_ids: set[int]
    test_task_ids: set[int]
    errors: list[ErrorDetail] = field(default_factory=list)
    warnings: list[ErrorDetail] = field(default_factory=list)


@dataclass
class KindDataset:
    """The examples of one model kind, split, with the counts that decide warnings and errors."""

    kind: ModelKind
    group: LabelGroup
    train: list[Example]
    test: list[Example]
    label_counts: dict[str, int]
    warnings: list[ErrorDetail]
    errors: list[ErrorDetail]

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "labels": list(self.group.labels),
            "name": self.group.name,
            "multiple": self.group.multiple,
            "train_examples": len(self.train),
            "test_examples": len(self.test),
            "label_counts": self.label_counts,
            "warnings": [w.message for w in self.warnings],
            "errors": [e.message for e in self.errors],
        }


def split_tasks(
    task_ids: Iterable[int],
    tags: Mapping[int, tuple[str, ...]],
    *,
    method: SplitMethod = SplitMethod.RANDOM,
    validation_split: float = 0.2,
    seed: int = 0,
) -> Split:
    """Split tasks into train and test: seeded random by ratio (each task keeps its side as tasks are added), or by `train`/`test` tags."""
    ids = sorted(set(task_ids))
    if method is SplitMethod.TAGS:
        train = {t for t in ids if "train" in tags.get(t, ())}
        test = {t for t in ids if "test" in tags.get(t, ()) and t not in train}
        errors, warnings = [], []
        if not test:
            errors.append(ErrorDetail(Errors.E309.format(count=len(ids)), field="split"))
        if not train:
            errors.append(ErrorDetail(Errors.E310.format(count=len(ids)), field="split"))
        untagged = len(ids) - len(train) - len(test)
        if untagged:
            warnings.append(ErrorDetail(Errors.E311.format(count=untagged), field="split"))
        return Split(method, None, None, train, test, errors, warnings)
    # Each task draws its side from (seed, task id) alone, so a task keeps its side as the project grows: a model
    # trained earlier never saw the tasks a later training holds out, and the two can be compared on them.
    draws = {t: _draw(seed, t) for t in ids}
    test = {t for t in ids if draws[t] < validation_split}
    if validation_split > 0 and len(ids) >= 2 and not test:
        test = {min(ids, key=draws.__getitem__)}
    if len(test) == len(ids) and len(ids) >= 2:
        test.discard(max(ids, key=draws.__getitem__))
    return Split(method, seed, validation_split, set(ids) - test, test)


def _draw(seed: int, task_id: int) -> float:
    """A uniform number in [0, 1) fixed by the seed and the task id."""
    digest = hashlib.blake2b(f"{seed}:{task_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class DatasetBuilder:
    """Turns selected completions into per-kind examples, reporting every span it cannot use."""

    def __init__(self, config: LabelingConfig, *, language: str = "en", kinds: Iterable[ModelKind] | None = None,
                 pages: Callable[[str], PageWords | None] | None = None):
        import spacy

        self.config = config
        self.pages = pages or (lambda url: None)  # a task's image value -> its page (Visual NER)
        self.waiting_for_ocr: list[int] = []
        self.kinds = [k for k in (kinds or config.kinds) if config.group(k) is not None]
        self.nlp = spacy.blank(language)
        self.nlp.add_pipe("sentencizer")
        self.examples: dict[ModelKind, list[Example]] = {k: [] for k in self.kinds}
        self.issues: list[ErrorDetail] = []
        self.tags: dict[int, tuple[str, ...]] = {}

    def add(self, selected: SelectedCompletion) -> None:
        self.tags[selected.task_id] = selected.tags
        for kind in self.kinds:
            group = self.config.group(kind)
            assert group is not None
            self.examples[kind].extend(self._examples(kind, group, selected))

    def add_all(self, selection: Iterable[SelectedCompletion]) -> DatasetBuilder:
        for selected in selection:
            self.add(selected)
        return self

    def _text(self, group: LabelGroup, selected: SelectedCompletion) -> str:
        return str(selected.data.get(self.config.data_key(group.to_name), ""))

    def _regions(self, group: LabelGroup, result: list[Any]) -> Iterator[tuple[dict[str, Any], list[str]]]:
        for item in result:
            if not isinstance(item, dict) or item.get("from_name") not in group.from_names:
                continue
            value = item.get("value") or {}
            labels = region_labels(value)
            yield value, [label for label in labels if label in group.labels]

    def _examples(self, kind: ModelKind, group: LabelGroup, s: SelectedCompletion) -> list[Example]:
        if kind is ModelKind.NER:
            return self.ner_examples(group, s)
        if kind is ModelKind.ASSERTION:
            return self._assertion(group, s)
        if kind is ModelKind.CLASSIFICATION:
            return self.classification_examples(group, s)
        if kind is ModelKind.RELATION:
            return self._relations(group, s)
        return self._visual(group, s)

    def ner_examples(self, group: LabelGroup, s: SelectedCompletion) -> list[Example]:
        text = self._text(group, s)
        doc = self.nlp.make_doc(text)
        spans: list[tuple[int, int, str]] = []
        taken: list[tuple[int, int]] = []
        for value, labels in self._regions(group, s.result):
            for label in labels:
                start, end = int(value.get("start", -1)), int(value.get("end", -1))
                span = doc.char_span(start, end, label=label)
                if span is None:
                    wide = doc.char_span(start, end, alignment_mode="expand")
                    self.issues.append(ErrorDetail(
                        Errors.E305.format(task_id=s.task_id, start=start, end=end, text=text[start:end],
                                           expanded=wide.text if wide is not None else ""),
                        field="completions",
                    ))
                    continue
                if any(start < e and b < end for b, e in taken):
                    self.issues.append(ErrorDetail(
                        Errors.E306.format(task_id=s.task_id, start=start, end=end, text=text[start:end], label=label),
                        field="completions",
                    ))
                    continue
                taken.append((start, end))
                spans.append((start, end, label))
        return [NerExample(s.task_id, s.completion_id, text, sorted(spans))]

    def _assertion(self, group: LabelGroup, s: SelectedCompletion) -> list[Example]:
        ner = self.config.ner
        text = self._text(group, s)
        chunks: dict[tuple[int, int], str] = {}
        if ner is not None:
            for value, labels in self._regions(ner, s.result):
                for label in labels:
                    chunks[(int(value.get("start", -1)), int(value.get("end", -1)))] = label
        out: list[Example] = []
        doc = None
        for value, labels in self._regions(group, s.result):
            for label in labels:
                start, end = int(value.get("start", -1)), int(value.get("end", -1))
                chunk_label = chunks.get((start, end))
                if chunk_label is None:
                    self.issues.append(ErrorDetail(
                        Errors.E307.format(task_id=s.task_id, label=label, start=start, end=end), field="completions"
                    ))
                    continue
                doc = doc if doc is not None else self.nlp(text)
                sent_start, sent_end = sentence_around(doc, start, end)
                out.append(AssertionExample(
                    s.task_id, s.completion_id, text[sent_start:sent_end], start - sent_start, end - sent_start,
                    chunk_label, label,
                ))
        return out

    def _relations(self, group: LabelGroup, s: SelectedCompletion) -> list[Example]:
        """Every pair of the completion's entities in one sentence: the annotated pairs with their relation, the others
        with `NO_RELATION`. Directed relations: both orders of a pair, each its own example (Label Studio's
        ``direction``: ``right`` from ``from_id`` to ``to_id``, ``left`` back, ``bi`` both ways); undirected: each pair
        once, in text order."""
        assert self.config.ner is not None  # a relation group needs one (E124)
        entities: dict[str, tuple[int, int, str]] = {}
        for item in s.result:
            if isinstance(item, dict) and item.get("id") is not None and item.get("from_name") in self.config.ner.from_names:
                value = item.get("value") or {}
                labels = [label for label in region_labels(value) if label in self.config.ner.labels]
                if labels:
                    entities[str(item["id"])] = (int(value.get("start", -1)), int(value.get("end", -1)), labels[0])
        annotated: dict[tuple[str, str], str] = {}
        for item in s.result:
            if not isinstance(item, dict) or item.get("type") != "relation":
                continue
            labels = [label for label in item.get("labels") or [] if label in group.labels]
            ends = (str(item.get("from_id")), str(item.get("to_id")))
            if not labels:
                continue
            if not all(end in entities for end in ends):
                self.issues.append(ErrorDetail(Errors.E318.format(task_id=s.task_id, label=labels[0], from_id=ends[0],
                                                                  to_id=ends[1]), field="completions"))
                continue
            direction = item.get("direction", "right")
            pairs = [ends[::-1]] if direction == "left" else [ends, ends[::-1]] if direction == "bi" else [ends]
            for pair in pairs:
                if not group.directed:
                    pair = tuple(sorted(pair, key=lambda region: entities[region][:2]))
                annotated[pair] = labels[0]  # type: ignore[index]
        text = self._text(group, s)
        regions = list(entities)
        out: list[Example] = []
        placed: set[tuple[str, str]] = set()
        for (start, end), members, a, b in sentence_pairs(self.nlp(text), [entities[r][:2] for r in regions],
                                                           directed=group.directed):
            pair = (regions[members[a]], regions[members[b]])
            placed.add(pair)
            spans = [(entities[regions[i]][0] - start, entities[regions[i]][1] - start, entities[regions[i]][2]) for i in members]
            out.append(RelationExample(s.task_id, s.completion_id, text[start:end], spans, a, b, annotated.get(pair, NO_RELATION)))
        for pair, label in annotated.items():
            if pair not in placed:
                self.issues.append(ErrorDetail(Errors.E319.format(task_id=s.task_id, label=label, from_id=pair[0],
                                                                  to_id=pair[1]), field="completions"))
        return out

    def classification_examples(self, group: LabelGroup, s: SelectedCompletion) -> list[Example]:
        chosen = [label for _, labels in self._regions(group, s.result) for label in labels]
        if not chosen:
            return []
        if not group.multiple and len(set(chosen)) > 1:
            self.issues.append(ErrorDetail(
                Errors.E308.format(task_id=s.task_id, name=group.name, count=len(set(chosen))), field="completions"
            ))
            return []
        return [ClassificationExample(s.task_id, s.completion_id, self._text(group, s), sorted(set(chosen)))]

    def _visual(self, group: LabelGroup, s: SelectedCompletion) -> list[Example]:
        url = self._text(group, s)
        page = self.pages(url)
        if page is None:
            self.issues.append(ErrorDetail(Errors.E315.format(task_id=s.task_id, url=url[:200]), field="completions"))
            return []
        if page.status is OcrStatus.FAILED:
            self.issues.append(ErrorDetail(Errors.E317.format(task_id=s.task_id, why="see the page's error"), field="completions"))
            return []
        if page.status is not OcrStatus.DONE:
            self.waiting_for_ocr.append(s.task_id)
            return []
        regions = [(value, label) for value, labels in self._regions(group, s.result) for label in labels
                   if all(isinstance(value.get(k), int | float) for k in ("x", "y", "width", "height"))]
        tags, empty, overlapping = tag_words(page.words, [(label, rectangle_pixels(value, page.width, page.height))
                                                          for value, label in regions])
        for code, indexes in ((Errors.E313, empty), (Errors.E314, overlapping)):
            for i in indexes:
                self.issues.append(ErrorDetail(code.format(task_id=s.task_id, region=i, label=regions[i][1]), field="completions"))
        return [VisualNerExample(s.task_id, s.completion_id, page.words, tags, page.width, page.height)]

    def build(
        self,
        *,
        split: SplitMethod = SplitMethod.RANDOM,
        validation_split: float = 0.2,
        seed: int = 0,
        min_examples: int = 40,
    ) -> tuple[dict[ModelKind, KindDataset], Split]:
        """Split the examples by task and count them per label, with warnings and errors."""
        if self.waiting_for_ocr:
            self.issues.append(ErrorDetail(Errors.E316.format(count=len(self.waiting_for_ocr), task_id=self.waiting_for_ocr[0]),
                                           field="completions"))
            self.waiting_for_ocr = []
        task_split = split_tasks(
            self.tags, self.tags, method=split, validation_split=validation_split, seed=seed
        )
        out = {}
        for kind in self.kinds:
            group = self.config.group(kind)
            assert group is not None
            examples = self.examples[kind]
            counts = Counter({label: 0 for label in group.labels})
            for ex in examples:
                counts.update(_labels_of(ex))
            negatives = counts.pop(NO_RELATION, None) if kind is ModelKind.RELATION else None
            warnings, errors = [], []
            for label, count in counts.items():
                if count == 0:
                    errors.append(ErrorDetail(Errors.E301.format(label=label), field=f"{kind.value}.{label}"))
                elif count < min_examples:
                    warnings.append(ErrorDetail(
                        Errors.E302.format(label=label, count=count, minimum=min_examples), field=f"{kind.value}.{label}"
                    ))
            if kind is ModelKind.RELATION:
                counts[NO_RELATION] = negatives or 0  # the negatives: entity pairs of a sentence that no relation joins
            out[kind] = KindDataset(
                kind=kind, group=group,
                train=[e for e in examples if e.task_id in task_split.train_task_ids],
                test=[e for e in examples if e.task_id in task_split.test_task_ids],
                label_counts=dict(counts), warnings=warnings, errors=errors,
            )
        return out, task_split


def _labels_of(example: Example) -> list[str]:
    if isinstance(example, NerExample):
        return [label for _, _, label in example.spans]
    if isinstance(example, AssertionExample | RelationExample):
        return [example.label]
    if isinstance(example, ClassificationExample):
        return example.labels
    return [label for _, _, label in example.spans]


def bio_tags(nlp: Any, example: NerExample) -> list[tuple[str, str]]:
    """(token, IOB2 tag) pairs of an NER example, whitespace tokens left out."""
    from spacy.training import biluo_to_iob, offsets_to_biluo_tags

    doc = nlp.make_doc(example.text)
    aligned = [(start, end, label) for start, end, label in example.spans if doc.char_span(start, end) is not None]
    tags = biluo_to_iob(offsets_to_biluo_tags(doc, aligned))
    return [(tok.text, tag) for tok, tag in zip(doc, tags) if not tok.is_space]
