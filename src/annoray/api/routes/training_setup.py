"""How models train: the engines there are, and a project's own NER training configs (uploaded, checked by building
and training them one step, listed, deleted)."""

from fastapi import APIRouter, Response, status
from sqlalchemy.orm import Session

from annoray.api.deps import CurrentUser, Id, MembershipDep, SessionDep, SettingsDep, WritesDep
from annoray.api.schemas import EngineOut, TrainingConfigCreate, TrainingConfigOut
from annoray.platform.access.roles import ANY_MEMBER, OWNER, require_role
from annoray.platform.services import labeling
from annoray.platform.settings import Settings
from annoray.platform.store.repositories import TrainingConfigRepository
from annoray.platform.store.tables import TrainingConfig
from annoray.scheduler import add_training_config, engines_here

router = APIRouter(tags=["trainings"])


def _out(config: TrainingConfig) -> TrainingConfigOut:
    return TrainingConfigOut(id=config.id, project_id=config.project_id, name=config.name, kind=config.kind, text=config.text,
                             code=config.code is not None, created_at=config.created_at)


@router.post("/api/projects/{pid}/training-configs", response_model=TrainingConfigOut, status_code=status.HTTP_201_CREATED)
def upload_training_config(body: TrainingConfigCreate, m: MembershipDep, writes: WritesDep, settings: SettingsDep) -> TrainingConfigOut:
    """Keep a spaCy NER training config for this project, after building it and training it one step (errors name the
    section and key); a training request with ``"config": id`` trains NER with it. Owner."""
    require_role(m.member.role, OWNER, "upload training configs")
    return _out(add_training_config(writes, settings, m.project, m.user, name=body.name, text=body.config, code=body.code))


@router.get("/api/projects/{pid}/training-configs", response_model=list[TrainingConfigOut])
def list_training_configs(m: MembershipDep, session: SessionDep) -> list[TrainingConfigOut]:
    require_role(m.member.role, ANY_MEMBER, "list training configs")
    return configs_of(session, m.project.id)


def configs_of(session: Session, project_id: int) -> list[TrainingConfigOut]:
    return [_out(c) for c in TrainingConfigRepository(session).for_project(project_id)]


@router.get("/api/projects/{pid}/training-configs/{cid}", response_model=TrainingConfigOut)
def get_training_config(m: MembershipDep, session: SessionDep, cid: Id) -> TrainingConfigOut:
    require_role(m.member.role, ANY_MEMBER, "read training configs")
    return _out(TrainingConfigRepository(session).of_project(m.project.id, cid))


@router.delete("/api/projects/{pid}/training-configs/{cid}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def delete_training_config(m: MembershipDep, writes: WritesDep, cid: Id) -> Response:
    """Delete a config; trainings already requested with it keep their copy. Owner."""
    require_role(m.member.role, OWNER, "delete training configs")
    labeling.delete_training_config(writes, m.project.id, cid)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/api/engines", response_model=list[EngineOut])
def list_engines(user: CurrentUser, settings: SettingsDep) -> list[EngineOut]:
    """Every training engine with its kind and languages, and whether it can train here (if not, why)."""
    return engines(settings)


def engines(settings: Settings) -> list[EngineOut]:
    return [EngineOut(**engine) for engine in engines_here(settings)]
