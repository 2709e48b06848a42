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

EMBEDDINGS = "embeddings"


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


def register_embeddings(session: Session, *, name: str, uri: str, language: str) -> CatalogModel:
    """Enter a local static-vectors file in the catalog, so a training can ask for it by name."""
    if not Path(uri).is_file():
        raise InvalidInput("cannot register", [ErrorDetail(Errors.E605.format(path=uri, name=name), field="uri")])
    repo = ModelRepository(session)
    if repo.by_name(name) is not None:
        raise Conflict(Errors.E508.format(name=name))
    return repo.add(CatalogModel(name=name, kind=EMBEDDINGS, labels=[], language=language, source="registered", uri=uri))
