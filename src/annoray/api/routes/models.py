from fastapi import APIRouter, status

from annoray.api.deps import AdminUser, CurrentUser, SessionDep
from annoray.api.schemas import ModelOut, ModelRegister
from annoray.platform.models.catalog import register_embeddings
from annoray.platform.store.repositories import ModelRepository

router = APIRouter(tags=["models"])


@router.get("/api/models", response_model=list[ModelOut])
def list_models(user: CurrentUser, session: SessionDep, kind: str | None = None) -> list[ModelOut]:
    """The catalog: trained models with their benchmark, and registered embeddings."""
    return [ModelOut.model_validate(m) for m in ModelRepository(session).all(kind)]


@router.get("/api/models/{name}", response_model=ModelOut)
def get_model(name: str, user: CurrentUser, session: SessionDep) -> ModelOut:
    """One model: kind, labels, language, embeddings, source, and its metrics (per-label P/R/F1, confusion matrix)."""
    return ModelOut.model_validate(ModelRepository(session).get(name))


@router.post("/api/models", response_model=ModelOut, status_code=status.HTTP_201_CREATED)
def register_model(body: ModelRegister, admin: AdminUser, session: SessionDep) -> ModelOut:
    """Register static vectors under a name, for trainings that ask for ``embeddings``."""
    model = register_embeddings(session, name=body.name, uri=body.uri, language=body.language)
    session.commit()
    return ModelOut.model_validate(model)
