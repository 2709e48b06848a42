"""How models train: the engines there are, and a project's own NER training configs (uploaded, checked by building
and training them one step, listed, deleted)."""

from fastapi import APIRouter, Response, status

from annoray.api.deps import CurrentUser, Id, MembershipDep, SessionDep, SettingsDep
from annoray.api.schemas import EngineOut, TrainingConfigCreate, TrainingConfigOut
from annoray.platform.access.roles import ANY_MEMBER, OWNER, require_role
from annoray.platform.errors import NotFound
from annoray.platform.store.repositories import TrainingConfigRepository
from annoray.platform.store.tables import TrainingConfig
from annoray.scheduler.trainings import add_training_config, engines_here

router = APIRouter(tags=["trainings"])


def _out(config: TrainingConfig) -> TrainingConfigOut:
    return TrainingConfigOut(id=config.id, project_id=config.project_id, name=config.name, kind=config.kind, text=config.text,
                             code=config.code is not None, created_at=config.created_at)


def _of_project(m: MembershipDep, session: SessionDep, cid: int) -> TrainingConfig:
    config = session.get(TrainingConfig, cid)
    if config is None or config.project_id != m.project.id:
        raise NotFound("training config", cid)
    return config


@router.post("/api/projects/{pid}/training-configs", response_model=TrainingConfigOut, status_code=status.HTTP_201_CREATED)
def upload_training_config(body: TrainingConfigCreate, m: MembershipDep, session: SessionDep, settings: SettingsDep) -> TrainingConfigOut:
    """Keep a spaCy NER training config for this project, after building it and training it one step (errors name the
    section and key); a training request with ``"config": id`` trains NER with it. Owner."""
    require_role(m.member.role, OWNER, "upload training configs")
    session.expunge(m.project)
    session.expunge(m.user)
    session.rollback()  # building and trying the pipeline takes a moment: hold no write lock meanwhile
    config = add_training_config(session, settings, m.project, m.user, name=body.name, text=body.config, code=body.code)
    session.commit()
    return _out(config)


@router.get("/api/projects/{pid}/training-configs", response_model=list[TrainingConfigOut])
def list_training_configs(m: MembershipDep, session: SessionDep) -> list[TrainingConfigOut]:
    require_role(m.member.role, ANY_MEMBER, "list training configs")
    return [_out(c) for c in TrainingConfigRepository(session).for_project(m.project.id)]


@router.get("/api/projects/{pid}/training-configs/{cid}", response_model=TrainingConfigOut)
def get_training_config(m: MembershipDep, session: SessionDep, cid: Id) -> TrainingConfigOut:
    require_role(m.member.role, ANY_MEMBER, "read training configs")
    return _out(_of_project(m, session, cid))


@router.delete("/api/projects/{pid}/training-configs/{cid}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def delete_training_config(m: MembershipDep, session: SessionDep, cid: Id) -> Response:
    """Delete a config; trainings already requested with it keep their copy. Owner."""
    require_role(m.member.role, OWNER, "delete training configs")
    session.delete(_of_project(m, session, cid))
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/api/engines", response_model=list[EngineOut])
def list_engines(user: CurrentUser, settings: SettingsDep) -> list[EngineOut]:
    """Every training engine with its kind and languages, and whether it can train here (if not, why)."""
    return [EngineOut(**engine) for engine in engines_here(settings)]
