"""The model catalog: sharing a model, registering embeddings."""

from __future__ import annotations

from annoray.platform.models.catalog import register_embeddings as register
from annoray.platform.services import Writes
from annoray.platform.store.repositories import ModelRepository
from annoray.platform.store.tables import CatalogModel


def share_model(writes: Writes, name: str, shared: bool) -> CatalogModel:
    """Share a model with every project, or take it back."""
    with writes.begin() as session:
        model = ModelRepository(session).get(name)
        model.shared = shared
        return model


def register_embeddings(writes: Writes, *, name: str, uri: str, language: str, kind: str) -> CatalogModel:
    with writes.begin() as session:
        return register(session, name=name, uri=uri, language=language, kind=kind)
