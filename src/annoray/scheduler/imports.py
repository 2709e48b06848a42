"""Models brought from outside into the catalog: inspected from their own files, copied into the model store, and
entered with ``source: imported``, to be named in any project's config, deployed and served."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from annoray.platform.errors import Conflict, ErrorDetail, Errors, InvalidInput
from annoray.platform.settings import Settings
from annoray.platform.store.repositories import ModelRepository
from annoray.platform.store.tables import CatalogModel
from annoray.trainers.imported import INSPECTORS, NotServable, local_copy
from annoray.trainers.store import ModelStore


def import_model(writes: sessionmaker[Session], settings: Settings, *, name: str, uri: str, engine: str, language: str = "en") -> CatalogModel:
    """Inspect the folder at ``uri``, copy it into the model store under ``name`` and catalog it; refused with the reason,
    and nothing kept, when annoray could not serve it. ``language`` is a Spark NLP pipeline's (a spaCy one says its own)."""
    inspect = INSPECTORS.get(engine)
    if inspect is None:
        raise InvalidInput(Errors.E511.format(engine=engine, importable=", ".join(INSPECTORS)),
                           [ErrorDetail(Errors.E511.format(engine=engine, importable=", ".join(INSPECTORS)), field="engine")])
    store = ModelStore(settings.resolved_model_store)
    try:
        path, copied = local_copy(uri)
        try:
            facts = inspect(path, settings, language)
            stored = store.put(path, name)
        finally:
            if copied is not None:
                copied.cleanup()
    except NotServable as exc:
        message = Errors.E510.format(uri=uri, why=exc)
        raise InvalidInput(message, [ErrorDetail(message, field="uri")]) from None
    except FileExistsError:
        raise Conflict(Errors.E508.format(name=name)) from None
    try:  # the database only now: no transaction is open while the folder is read and copied
        with writes.begin() as session:
            repo = ModelRepository(session)
            if repo.by_name(name) is not None:
                raise Conflict(Errors.E508.format(name=name))
            return repo.add(CatalogModel(name=name, kind=facts.kind.value, labels=facts.labels, language=facts.language,
                                         embeddings=facts.vectors, engine=facts.engine, source="imported", uri=stored,
                                         metrics={}))
    except BaseException:
        store.delete(name)
        raise
