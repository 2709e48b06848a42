from typing import Any

from fastapi import APIRouter, Request, status
from sqlalchemy.orm import Session

from annoray.api.deps import AdminUser, CurrentUser, SessionDep, SettingsDep, WritesDep
from annoray.api.schemas import WORK_ACCEPTED, ModelImport, ModelOut, ModelRegister, ModelShare
from annoray.platform.services import models
from annoray.platform.store.repositories import ModelRepository
from annoray.platform.store.tables import CatalogModel, User
from annoray.scheduler import import_model

router = APIRouter(tags=["models"])


def model_out(model: CatalogModel, user: User) -> ModelOut:
    """A catalog entry as ``user`` may see it: the model store's paths only for admins."""
    return ModelOut.model_validate(model).model_copy(update={"uri": model.uri if user.is_admin else None,
                                                               "stored": model.uri is not None})


@router.get("/api/models", response_model=list[ModelOut])
def list_models(user: CurrentUser, session: SessionDep, kind: str | None = None) -> list[ModelOut]:
    """The catalog: trained models with their benchmark, and registered embeddings."""
    return models_for(session, user, kind)


def models_for(session: Session, user: User, kind: str | None = None) -> list[ModelOut]:
    return [model_out(m, user) for m in ModelRepository(session).all(kind)]


@router.get("/api/models/{name}", response_model=ModelOut)
def get_model(name: str, user: CurrentUser, session: SessionDep) -> ModelOut:
    """One model: kind, labels, language, embeddings, source, and its metrics (per-label P/R/F1, confusion matrix)."""
    return model_out(ModelRepository(session).get(name), user)


@router.patch("/api/models/{name}", response_model=ModelOut)
def share_model(name: str, body: ModelShare, admin: AdminUser, writes: WritesDep) -> ModelOut:
    """Share a model with every project (their servers may hold it), or take it back (servers already running keep it
    until redeployed). Admin."""
    return model_out(models.share_model(writes, name, body.shared), admin)


@router.post("/api/models", response_model=ModelOut, status_code=status.HTTP_201_CREATED)
def register_model(body: ModelRegister, admin: AdminUser, writes: WritesDep) -> ModelOut:
    """Register static vectors under a name, for trainings that ask for ``embeddings``."""
    return model_out(models.register_embeddings(writes, name=body.name, uri=body.uri, language=body.language, kind=body.kind),
                     admin)


@router.post("/api/models/import", response_model=ModelOut, status_code=status.HTTP_201_CREATED, responses=WORK_ACCEPTED)
def import_pretrained(body: ModelImport, request: Request, admin: AdminUser, writes: WritesDep, settings: SettingsDep) -> Any:
    """Bring a model trained elsewhere (a spaCy pipeline folder, a Spark NLP PipelineModel) into the catalog: its kind and
    labels are read from its own files, it is copied into the model store, and any project's config may name it. Admin.
    The copy runs off the request: one that takes more than a moment answers 202 with the work to poll."""
    done = request.app.state.works.run("model-import", admin.id, None, lambda: model_out(import_model(
        writes, settings, name=body.name, uri=body.uri, engine=body.engine, language=body.language), admin).model_dump(mode="json"))
    return ModelOut(**done.result) if done.result is not None else done.accepted()
