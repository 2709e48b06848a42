from fastapi import APIRouter, status

from annoray.api.deps import AdminUser, CurrentUser, SessionDep, SettingsDep
from annoray.api.schemas import ModelImport, ModelOut, ModelRegister, ModelShare
from annoray.platform.models.catalog import register_embeddings
from annoray.platform.store.repositories import ModelRepository
from annoray.platform.store.tables import CatalogModel, User
from annoray.scheduler.imports import import_model

router = APIRouter(tags=["models"])


def model_out(model: CatalogModel, user: User) -> ModelOut:
    """A catalog entry as ``user`` may see it: the model store's paths only for admins."""
    return ModelOut.model_validate(model).model_copy(update={"uri": model.uri if user.is_admin else None,
                                                               "stored": model.uri is not None})


@router.get("/api/models", response_model=list[ModelOut])
def list_models(user: CurrentUser, session: SessionDep, kind: str | None = None) -> list[ModelOut]:
    """The catalog: trained models with their benchmark, and registered embeddings."""
    return [model_out(m, user) for m in ModelRepository(session).all(kind)]


@router.get("/api/models/{name}", response_model=ModelOut)
def get_model(name: str, user: CurrentUser, session: SessionDep) -> ModelOut:
    """One model: kind, labels, language, embeddings, source, and its metrics (per-label P/R/F1, confusion matrix)."""
    return model_out(ModelRepository(session).get(name), user)


@router.patch("/api/models/{name}", response_model=ModelOut)
def share_model(name: str, body: ModelShare, admin: AdminUser, session: SessionDep) -> ModelOut:
    """Share a model with every project (their servers may hold it), or take it back (servers already running keep it
    until redeployed). Admin."""
    model = ModelRepository(session).get(name)
    model.shared = body.shared
    session.commit()
    return model_out(model, admin)


@router.post("/api/models", response_model=ModelOut, status_code=status.HTTP_201_CREATED)
def register_model(body: ModelRegister, admin: AdminUser, session: SessionDep) -> ModelOut:
    """Register static vectors under a name, for trainings that ask for ``embeddings``."""
    model = register_embeddings(session, name=body.name, uri=body.uri, language=body.language, kind=body.kind)
    session.commit()
    return model_out(model, admin)


@router.post("/api/models/import", response_model=ModelOut, status_code=status.HTTP_201_CREATED)
def import_pretrained(body: ModelImport, admin: AdminUser, session: SessionDep, settings: SettingsDep) -> ModelOut:
    """Bring a model trained elsewhere (a spaCy pipeline folder, a Spark NLP PipelineModel) into the catalog: its kind and
    labels are read from its own files, it is copied into the model store, and any project's config may name it. Admin."""
    session.rollback()  # reading and copying the folder takes a while: hold no write lock meanwhile
    model = import_model(session, settings, name=body.name, uri=body.uri, engine=body.engine, language=body.language)
    session.commit()
    return model_out(model, admin)
