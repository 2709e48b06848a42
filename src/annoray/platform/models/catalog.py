"""The model catalog's naming: models are named after kind, subject and source, and versioned, never overwritten."""

from __future__ import annotations

import re
from collections.abc import Iterable

from pathlib import Path

from sqlalchemy.orm import Session

from annoray.platform.errors import Conflict, ErrorDetail, Errors, InvalidInput
from annoray.platform.labeling.config import LabelGroup, ModelKind
from annoray.platform.store.repositories import ModelRepository
from annoray.platform.store.tables import CatalogModel

EMBEDDINGS = "embeddings"  # a word2vec-style text file, for the spaCy engines
SPARKNLP_EMBEDDINGS = "sparknlp_embeddings"  # a saved WordEmbeddingsModel folder, for the Spark NLP engines
EMBEDDINGS_OF = {"spacy": EMBEDDINGS, "spacy_words": EMBEDDINGS, "sparknlp": SPARKNLP_EMBEDDINGS}


def embeddings_dimension(folder: Path) -> int | None:
    """The dimension a saved Spark NLP WordEmbeddingsModel declares in its metadata, or None when it is not one."""
    import json

    try:
        meta = json.loads(next((folder / "metadata").glob("part-*")).read_text(encoding="utf-8").splitlines()[0])
        return int(meta["paramMap"]["dimension"]) if meta.get("class", "").endswith("WordEmbeddingsModel") else None
    except (StopIteration, OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "project"


def model_base_name(kind: ModelKind, group: LabelGroup, project_name: str, source: str) -> str:
    """``ner_<project>_annotation_manual``; a classifier is named after its ``Choices`` (``classification_age_...``)."""
    subject = group.name if kind is ModelKind.CLASSIFICATION and group.name else project_name
    return f"{kind.value}_{slug(subject)}_annotation_{slug(source)}"


def next_model_name(base: str, existing: Iterable[str]) -> str:
    """The base name for the first model, then ``<base>_v2``, ``<base>_v3``, ...: earlier versions stay."""
    taken = set(existing)
    if base not in taken:
        return base
    versions = [int(m.group(1)) for n in taken if (m := re.fullmatch(re.escape(base) + r"_v(\d+)", n))]
    return f"{base}_v{max(versions, default=1) + 1}"


def register_embeddings(session: Session, *, name: str, uri: str, language: str, kind: str = EMBEDDINGS) -> CatalogModel:
    """Enter local embeddings in the catalog, so a training can ask for them by name: a static-vectors file for the
    spaCy engines, a saved WordEmbeddingsModel folder for the Spark NLP ones."""
    found = Path(uri).is_file() if kind == EMBEDDINGS else embeddings_dimension(Path(uri)) is not None
    if not found:
        error = Errors.E605.format(path=uri, name=name) if kind == EMBEDDINGS else Errors.E625.format(path=uri)
        raise InvalidInput(error, [ErrorDetail(error, field="uri")])
    repo = ModelRepository(session)
    if repo.by_name(name) is not None:
        raise Conflict(Errors.E508.format(name=name))
    return repo.add(CatalogModel(name=name, kind=kind, labels=[], language=language, source="registered", uri=uri))
