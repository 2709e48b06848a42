"""A project's training selection, streamed from the store page by page, and its exports."""

from __future__ import annotations

import io
import json
import tarfile
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from annoray.platform.errors import ErrorDetail, Errors, InvalidInput
from annoray.platform.labeling.config import LabelingConfig, ModelKind
from annoray.platform.labeling.datasets import (
    DatasetBuilder,
    KindDataset,
    NerExample,
    SelectedCompletion,
    Split,
    SplitMethod,
    bio_tags,
)
from annoray.platform.labeling.pages import page_words_reader
from annoray.platform.labeling.selection import Candidate, select_completion
from annoray.platform.store.repositories import CompletionRepository, ProjectRepository, TaskRepository

EXPORT_FORMATS = ("json", "conll", "spacy")
SPACY_SHARD_SIZE = 1000


@dataclass(frozen=True)
class SelectionQuery:
    """Which completions train: tasks with any of ``tags`` (all when empty), reviewed ones only or not."""

    tags: tuple[str, ...] = ()
    reviewed_only: bool = False


def iter_selection(
    sessions: sessionmaker[Session], project_id: int, query: SelectionQuery, *, page_size: int = 500,
) -> Iterator[tuple[SelectedCompletion, Any]]:
    """Yield (selected completion, the Completion row) task by task, one short transaction per page."""
    with sessions() as session:
        priorities = ProjectRepository(session).priorities(project_id)
    after = 0
    while True:
        with sessions() as session:
            tasks = TaskRepository(session).after(project_id, tags=query.tags or None, after_id=after, limit=page_size)
            if not tasks:
                return
            after = tasks[-1].id
            by_task: dict[int, list[Any]] = defaultdict(list)
            for c in CompletionRepository(session).for_tasks([t.id for t in tasks], project_id):
                by_task[c.task_id].append(c)
            for task in tasks:
                rows = {c.id: c for c in by_task.get(task.id, ())}
                chosen = select_completion(
                    (Candidate(c.id, c.task_id, c.status, c.review_status, priorities.get(c.author_id, 0), c.updated_at)
                     for c in rows.values()),
                    reviewed_only=query.reviewed_only,
                )
                if chosen is not None:
                    row = rows[chosen.id]
                    yield SelectedCompletion(task.id, row.id, task.data, tuple(task.tags or ()), row.result), row


@dataclass
class TrainingData:
    """Everything a training request needs to know before anything is queued."""

    datasets: dict[ModelKind, KindDataset]
    split: Split
    tasks_selected: int
    issues: list[ErrorDetail]

    @property
    def errors(self) -> list[ErrorDetail]:
        return [e for d in self.datasets.values() for e in d.errors] + self.split.errors

    @property
    def warnings(self) -> list[ErrorDetail]:
        return [w for d in self.datasets.values() for w in d.warnings] + self.split.warnings + self.issues

    def kind_summary(self, kind: ModelKind) -> dict[str, Any]:
        """The data one kind's job uses: tasks, split sizes, its per-label counts."""
        summary = self.summary()
        return {"tasks_selected": summary["tasks_selected"], "split": summary["split"], **summary["kinds"][kind.value]}

    def kind_warnings(self, kind: ModelKind) -> list[str]:
        """One kind's warnings, with the split's and the selection's that concern every kind."""
        return [w.message for w in self.datasets[kind].warnings + self.split.warnings + self.issues]

    def summary(self) -> dict[str, Any]:
        return {
            "tasks_selected": self.tasks_selected,
            "split": {
                "method": self.split.method.value, "seed": self.split.seed,
                "validation_split": self.split.validation_split,
                "train_tasks": len(self.split.train_task_ids), "test_tasks": len(self.split.test_task_ids),
            },
            "kinds": {k.value: d.summary() for k, d in self.datasets.items()},
            "warnings": [w.message for w in self.warnings],
            "errors": [e.message for e in self.errors],
        }


def check_kinds(config: LabelingConfig, kinds: Sequence[ModelKind]) -> None:
    """Refuse (E303) the kinds the labeling config has no labels for."""
    missing = [k for k in kinds if config.group(k) is None]
    if missing:
        raise InvalidInput("cannot train", [ErrorDetail(Errors.E303.format(kind=k.value), field="kinds") for k in missing])


def build_training_data(
    sessions: sessionmaker[Session], project_id: int, config: LabelingConfig, *, language: str,
    kinds: Sequence[ModelKind] | None, query: SelectionQuery, split: SplitMethod = SplitMethod.RANDOM,
    validation_split: float = 0.2, seed: int = 0, min_examples: int = 40, page_size: int = 500,
) -> TrainingData:
    """Select, build and split the datasets of the requested kinds, refusing kinds the config lacks."""
    kinds = list(kinds) if kinds else config.kinds
    check_kinds(config, kinds)
    builder = DatasetBuilder(config, language=language, kinds=kinds, pages=page_words_reader(sessions, project_id))
    count = 0
    for selected, _ in iter_selection(sessions, project_id, query, page_size=page_size):
        builder.add(selected)
        count += 1
    if count == 0:
        raise InvalidInput("cannot train", [ErrorDetail(
            Errors.E304.format(tags=list(query.tags) or "all", reviewed_only=query.reviewed_only), field="task_tags"
        )])
    datasets, task_split = builder.build(
        split=split, validation_split=validation_split, seed=seed, min_examples=min_examples
    )
    return TrainingData(datasets, task_split, count, builder.issues)


def export_selection(
    sessions: sessionmaker[Session], project_id: int, config: LabelingConfig, *, language: str,
    fmt: str, query: SelectionQuery, page_size: int = 500,
) -> Iterator[bytes]:
    """Stream the selection as Label Studio JSON, CoNLL-2003 or a tar of spaCy DocBin shards."""
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(Errors.E312.format(format=fmt, formats=", ".join(EXPORT_FORMATS)),
                           [ErrorDetail(Errors.E312.format(format=fmt, formats=", ".join(EXPORT_FORMATS)), field="format")])
    if fmt == "conll" and config.ner is None or fmt == "spacy" and not (config.ner or config.classification):
        kind = "ner" if fmt == "conll" else "ner or classification"
        raise InvalidInput("cannot export", [ErrorDetail(Errors.E303.format(kind=kind), field="format")])
    selection = iter_selection(sessions, project_id, query, page_size=page_size)
    if fmt == "json":
        return _export_json(selection)
    builder = DatasetBuilder(config, language=language, kinds=[k for k in (ModelKind.NER, ModelKind.CLASSIFICATION) if config.group(k)])
    if fmt == "conll":
        return _export_conll(selection, builder)
    return _export_spacy(selection, builder)


def _export_json(selection: Iterator[tuple[SelectedCompletion, Any]]) -> Iterator[bytes]:
    yield b"["
    first = True
    for selected, row in selection:
        task = {
            "id": selected.task_id,
            "data": selected.data,
            "meta": {"tags": list(selected.tags)},
            "annotations": [{
                "id": row.id, "result": row.result, "completed_by": row.author_id,
                "review_status": row.review_status.value if row.review_status else None,
                "updated_at": row.updated_at.isoformat(),
            }],
        }
        yield (b"" if first else b",\n") + json.dumps(task, ensure_ascii=False).encode()
        first = False
    yield b"]\n"


def _export_conll(selection: Iterator[tuple[SelectedCompletion, Any]], builder: DatasetBuilder) -> Iterator[bytes]:
    yield b"-DOCSTART- -X- -X- O\n\n"
    assert builder.config.ner is not None
    for selected, _ in selection:
        builder.issues.clear()
        for example in builder.ner_examples(builder.config.ner, selected):
            assert isinstance(example, NerExample)
            lines = [f"{tok} -X- -X- {tag}" for tok, tag in bio_tags(builder.nlp, example) if " " not in tok]
            if lines:
                yield ("\n".join(lines) + "\n\n").encode()


class _Chunks(io.RawIOBase):
    """A write-only file that hands what was written to a generator, so a tar can stream."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.chunks.append(bytes(b))
        return len(b)

    def drain(self) -> bytes:
        out, self.chunks = b"".join(self.chunks), []
        return out


def _export_spacy(selection: Iterator[tuple[SelectedCompletion, Any]], builder: DatasetBuilder) -> Iterator[bytes]:
    from spacy.tokens import DocBin

    sink = _Chunks()
    tar = tarfile.open(fileobj=sink, mode="w|")
    ner, cls = builder.config.ner, builder.config.classification
    shard, n = DocBin(store_user_data=False), 0

    def flush(shard: DocBin, n: int) -> bytes:
        data = shard.to_bytes()
        info = tarfile.TarInfo(f"corpus/{n:06d}.spacy")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        return sink.drain()

    for selected, _ in selection:
        builder.issues.clear()
        text = str(selected.data.get(builder.config.data_key((ner or cls).to_name), ""))  # type: ignore[union-attr]
        doc = builder.nlp.make_doc(text)
        if ner is not None:
            example = builder.ner_examples(ner, selected)[0]
            assert isinstance(example, NerExample)
            doc.ents = [doc.char_span(s, e, label=label) for s, e, label in example.spans]
        if cls is not None:
            chosen = builder.classification_examples(cls, selected)
            if chosen:
                picked = set(chosen[0].labels)  # type: ignore[union-attr]
                doc.cats = {label: float(label in picked) for label in cls.labels}
        shard.add(doc)
        if len(shard) >= SPACY_SHARD_SIZE:
            yield flush(shard, n)
            shard, n = DocBin(store_user_data=False), n + 1
    if len(shard):
        yield flush(shard, n)
    tar.close()
    yield sink.drain()
