"""Training engines under versioned names (``spacy.ner.v1``, ...), one small base class each.

An engine turns a split dataset into a model folder, yielding one `EpochReport` per epoch
and checkpointing after each, so a restarted worker resumes where the killed one stopped.
"""

from __future__ import annotations

import copy
import json
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from annoray.platform.labeling.config import CHOSEN_FROM, ModelKind
from annoray.platform.labeling.datasets import LANGUAGES, Example
from annoray.platform.models.training import TrainingParams
from annoray.platform.settings import Settings

MODEL_DIR = "model"
CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_STATE = "state.json"


class EngineConfig(BaseModel):
    """What every engine is configured with besides the training parameters."""

    language: str = Field("en", description="Language of the blank pipeline.")
    labels: list[str] = Field(description="Labels the model learns, in config order.")
    multiple: bool = Field(False, description="Classification only: several labels per example.")
    directed: bool = Field(True, description="Relation only: from one entity to the other, or either way.")
    embeddings: Path | None = Field(None, description="Local static vectors file (word2vec text); none: hash embeddings.")
    custom: dict[str, Any] | None = Field(None, description="NER only: the project's own training config ('text', 'code').")
    spark: dict[str, Any] | None = Field(None, description="Spark NLP only: jar, graphs, cpus, memory_gb, node_ip, dim.")


@dataclass
class EpochReport:
    epoch: int
    epochs: int
    loss: float
    seconds: float
    learning_rate: float
    metrics: dict[str, Any] = field(default_factory=dict)


class TrainingEngine(ABC):
    """One model kind trained one way: ``train()`` yields an `EpochReport` per epoch and leaves ``MODEL_DIR``."""

    name: ClassVar[str]
    family: ClassVar[str]
    kind: ClassVar[ModelKind]
    languages: ClassVar[tuple[str, ...]]
    Config: ClassVar[type[EngineConfig]] = EngineConfig
    defaults: ClassVar[dict[str, Any]] = {}
    """Training parameters whose default differs for this engine from `TrainingParams`' (set from measurement)."""

    def __init__(self, config: EngineConfig):
        self.config = config

    @classmethod
    def params(cls, given: TrainingParams) -> TrainingParams:
        """What a job of this engine trains with: the parameters the request gave, this engine's defaults for the rest."""
        return TrainingParams(**(cls.defaults | given.model_dump(exclude_unset=True)))

    @classmethod
    def unavailable(cls, settings: Settings) -> str | None:
        """Why this engine cannot train here (a missing jar or library), or None when it can."""
        return None

    @classmethod
    def versions(cls) -> dict[str, str]:
        """The libraries this engine trains with, for the training log."""
        return {}

    @abstractmethod
    def train(
        self, *, train: Sequence[Example], dev: Sequence[Example], params: TrainingParams, output_dir: Path,
    ) -> Iterator[EpochReport]:
        """Train, checkpointing in ``output_dir/CHECKPOINT_DIR`` each epoch, resuming from it when present."""

    @abstractmethod
    def evaluate(self, model_dir: Path, dev: Sequence[Example]) -> dict[str, Any]:
        """Metrics of a saved model on held-out examples."""


ENGINES: dict[str, type[TrainingEngine]] = {}


def register(cls: type[TrainingEngine]) -> type[TrainingEngine]:
    ENGINES[cls.name] = cls
    return cls


def engine_name(family: str, kind: ModelKind) -> str:
    return f"{family}.{kind.value}.v1"


def engine_families() -> list[str]:
    return sorted({cls.family for cls in ENGINES.values()})


def get_engine(name: str) -> type[TrainingEngine]:
    try:
        return ENGINES[name]
    except KeyError:
        raise KeyError(f"no training engine '{name}'; available: {', '.join(sorted(ENGINES))}") from None


class SpacyEngine(TrainingEngine):
    """The built-in engine: spaCy blank pipelines (no downloads), hash embeddings or local vectors."""

    family = "spacy"
    languages = LANGUAGES

    @classmethod
    def versions(cls) -> dict[str, str]:
        import spacy
        import thinc

        return {"spacy": spacy.__version__, "thinc": thinc.__version__}

    def _blank(self):  # type: ignore[no-untyped-def]
        import spacy

        if self.config.language not in self.languages:
            raise ValueError(f"language '{self.config.language}' is not supported; use one of: {', '.join(self.languages)}")
        nlp = spacy.blank(self.config.language)
        if self.config.embeddings:
            load_vectors(nlp, self.config.embeddings)
        return nlp

    @abstractmethod
    def _pipe_name(self) -> str: ...

    @abstractmethod
    def _model_config(self) -> dict[str, Any]:
        """spaCy's default model of the pipe, with static vectors switched on when embeddings are given."""

    def _new_pipeline(self) -> Any:
        """The untrained pipeline: a blank one of the language with the engine's pipe, given the labels."""
        nlp = self._blank()
        pipe = nlp.add_pipe(self._pipe_name(), config={"model": self._model_config()})
        for label in self.config.labels:
            pipe.add_label(label)
        return nlp

    def _load(self, path: Path) -> Any:
        import spacy

        return spacy.load(path)

    @abstractmethod
    def _to_spacy(self, nlp: Any, example: Example) -> Any: ...

    @abstractmethod
    def _score(self, nlp: Any, dev: Sequence[Example]) -> dict[str, Any]: ...

    def train(
        self, *, train: Sequence[Example], dev: Sequence[Example], params: TrainingParams, output_dir: Path,
    ) -> Iterator[EpochReport]:
        from spacy.util import fix_random_seed, minibatch

        checkpoint = output_dir / CHECKPOINT_DIR
        state_file = checkpoint / CHECKPOINT_STATE
        output_dir.mkdir(parents=True, exist_ok=True)
        fix_random_seed(params.seed)
        if state_file.exists():
            nlp = self._load(checkpoint)
            optimizer = nlp.resume_training()
            start = json.loads(state_file.read_text())["epoch"]
        else:
            nlp = self._new_pipeline()
            optimizer = None
            start = 0
        examples = [self._to_spacy(nlp, e) for e in train]
        if optimizer is None:
            optimizer = nlp.initialize(lambda: examples)
        for epoch in range(start, params.epochs):
            rng = random.Random(params.seed + epoch)  # per epoch, so a resumed run shuffles as the killed one would have
            began = time.perf_counter()
            optimizer.learn_rate = params.learning_rate_at(epoch)
            order = examples[:]
            rng.shuffle(order)
            losses: dict[str, float] = {}
            for batch in minibatch(order, size=params.batch_size):
                nlp.update(batch, drop=params.dropout, sgd=optimizer, losses=losses)
            metrics = self._score(nlp, dev) if dev else {}
            nlp.to_disk(checkpoint)
            state_file.write_text(json.dumps({"epoch": epoch + 1}))
            yield EpochReport(epoch + 1, params.epochs, round(float(sum(losses.values())), 4),
                              round(time.perf_counter() - began, 3), float(optimizer.learn_rate), metrics)
        nlp.to_disk(output_dir / MODEL_DIR)

    def evaluate(self, model_dir: Path, dev: Sequence[Example]) -> dict[str, Any]:
        return self._score(self._load(model_dir), dev)


def load_vectors(nlp: Any, path: Path) -> None:
    """Static vectors from a local word2vec-style text file ("word v1 v2 ..."), header line optional."""
    import numpy

    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.rstrip().split(" ")
            if len(parts) <= 2:
                continue
            nlp.vocab.set_vector(parts[0], numpy.asarray(parts[1:], dtype="float32"))


@register
class SpacyNer(SpacyEngine):
    name = "spacy.ner.v1"
    kind = ModelKind.NER

    def _pipe_name(self) -> str:
        return "ner"

    def _new_pipeline(self) -> Any:
        """The project's own config when the training names one, else the built-in NER."""
        if not self.config.custom:
            return super()._new_pipeline()
        from annoray.trainers.custom import ner_pipeline

        return ner_pipeline(self.config.custom["text"], language=self.config.language, labels=self.config.labels,
                            code=self.config.custom.get("code"))

    def _load(self, path: Path) -> Any:
        from annoray.trainers.custom import load_with_code

        return load_with_code(path, (self.config.custom or {}).get("code"))

    def train(self, *, train: Sequence[Example], dev: Sequence[Example], params: TrainingParams,
              output_dir: Path) -> Iterator[EpochReport]:
        from annoray.trainers.custom import with_code

        yield from super().train(train=train, dev=dev, params=params, output_dir=output_dir)
        with_code(output_dir / MODEL_DIR, (self.config.custom or {}).get("code"))

    def _model_config(self) -> dict[str, Any]:
        from spacy.pipeline.ner import DEFAULT_NER_MODEL

        model = copy.deepcopy(DEFAULT_NER_MODEL)
        model["tok2vec"]["pretrained_vectors"] = True if self.config.embeddings else None
        return model

    def _to_spacy(self, nlp: Any, example: Example) -> Any:
        from spacy.training import Example as SpacyExample

        doc = nlp.make_doc(example.text)  # type: ignore[union-attr]
        return SpacyExample.from_dict(doc, {"entities": [(s, e, label) for s, e, label in example.spans]})  # type: ignore[union-attr]

    def _score(self, nlp: Any, dev: Sequence[Example]) -> dict[str, Any]:
        from annoray.trainers.metrics import ner_metrics

        docs = nlp.pipe([e.text for e in dev], batch_size=256)  # type: ignore[union-attr]
        predicted = [[(ent.start_char, ent.end_char, ent.label_) for ent in doc.ents] for doc in docs]
        return ner_metrics([e.spans for e in dev], predicted, self.config.labels)  # type: ignore[union-attr]


CHUNK_OPEN, CHUNK_CLOSE = "⟦", "⟧"


def mark_chunk(text: str, start: int, end: int) -> str:
    """The sentence with its chunk between markers, so a text classifier sees which chunk is asked about."""
    return f"{text[:start]} {CHUNK_OPEN} {text[start:end]} {CHUNK_CLOSE} {text[end:]}"


class SpacyTextcat(SpacyEngine):
    def _pipe_name(self) -> str:
        return "textcat_multilabel" if self.config.multiple else "textcat"

    def _model_config(self) -> dict[str, Any]:
        from spacy.pipeline.textcat import DEFAULT_SINGLE_TEXTCAT_MODEL
        from spacy.pipeline.textcat_multilabel import DEFAULT_MULTI_TEXTCAT_MODEL

        model = copy.deepcopy(DEFAULT_MULTI_TEXTCAT_MODEL if self.config.multiple else DEFAULT_SINGLE_TEXTCAT_MODEL)
        model["tok2vec"]["embed"]["include_static_vectors"] = bool(self.config.embeddings)
        return model

    @abstractmethod
    def _text(self, example: Example) -> str: ...

    @abstractmethod
    def _gold(self, example: Example) -> list[str]: ...

    def _to_spacy(self, nlp: Any, example: Example) -> Any:
        from spacy.training import Example as SpacyExample

        gold = set(self._gold(example))
        cats = {label: float(label in gold) for label in self.config.labels}
        return SpacyExample.from_dict(nlp.make_doc(self._text(example)), {"cats": cats})

    def predict(self, nlp: Any, texts: Sequence[str]) -> list[list[str]]:
        out = []
        for doc in nlp.pipe(texts, batch_size=256):
            if self.config.multiple:
                out.append([label for label, score in doc.cats.items() if score >= CHOSEN_FROM])
            else:
                out.append([max(doc.cats, key=doc.cats.get)])
        return out

    def _score(self, nlp: Any, dev: Sequence[Example]) -> dict[str, Any]:
        from annoray.trainers.metrics import classification_metrics, multilabel_metrics

        predicted = self.predict(nlp, [self._text(e) for e in dev])
        gold = [self._gold(e) for e in dev]
        if self.config.multiple:
            return multilabel_metrics(gold, predicted, self.config.labels)
        return classification_metrics([g[0] for g in gold], [p[0] for p in predicted], self.config.labels)


@register
class SpacyAssertion(SpacyTextcat):
    name = "spacy.assertion.v1"
    kind = ModelKind.ASSERTION

    def _text(self, example: Example) -> str:
        return mark_chunk(example.text, example.start, example.end)  # type: ignore[union-attr]

    def _gold(self, example: Example) -> list[str]:
        return [example.label]  # type: ignore[union-attr]


@register
class SpacyClassification(SpacyTextcat):
    name = "spacy.classification.v1"
    kind = ModelKind.CLASSIFICATION

    def _text(self, example: Example) -> str:
        return example.text  # type: ignore[union-attr]

    def _gold(self, example: Example) -> list[str]:
        return list(example.labels)  # type: ignore[union-attr]
