"""How models train: the engines there are, and a project's own NER training configs (uploaded, checked by building
and training them one step, listed, deleted)."""

from typing import Any

from fastapi import APIRouter, Request, Response, status
from sqlalchemy.orm import Session

from annoray.api.deps import CurrentUser, Id, MembershipDep, SessionDep, SettingsDep, WritesDep
from annoray.api.schemas import WORK_ACCEPTED, EngineOut, TrainingConfigCreate, TrainingConfigOut
from annoray.platform.access.roles import ANY_MEMBER, OWNER, require_role
from annoray.platform.errors import Conflict, Errors
from annoray.platform.services import labeling
from annoray.platform.settings import Settings
from annoray.platform.store.repositories import TrainingConfigRepository
from annoray.platform.store.tables import TrainingConfig
from annoray.scheduler import add_training_config, engines_here

router = APIRouter(tags=["trainings"])


def _out(config: TrainingConfig) -> TrainingConfigOut:
    return TrainingConfigOut(id=config.id, project_id=config.project_id, name=config.name, kind=config.kind, text=config.text,
                             code=config.code is not None, created_at=config.created_at)


@router.post("/api/projects/{pid}/training-configs", response_model=TrainingConfigOut, status_code=status.HTTP_201_CREATED,
             responses=WORK_ACCEPTED)
def upload_training_config(body: TrainingConfigCreate, request: Request, m: MembershipDep, session: SessionDep,
                           writes: WritesDep, settings: SettingsDep) -> Any:
    """Keep a spaCy NER training config for this project, after building it and training it one step (errors name the
    section and key); a training request with ``"config": id`` trains NER with it. Owner. The check runs off the
    request: one that takes more than a moment answers 202 with the work to poll (its result is this answer)."""
    require_role(m.member.role, OWNER, "upload training configs")
    if TrainingConfigRepository(session).by_name(m.project.id, body.name) is not None:  # at once (and again when kept)
        raise Conflict(Errors.E624.format(name=body.name))
    project, user = m.project, m.user
    done = request.app.state.works.run("training-config", user.id, project.id, lambda: _out(add_training_config(
        writes, settings, project, user, name=body.name, text=body.config, code=body.code)).model_dump(mode="json"))
    return TrainingConfigOut(**done.result) if done.result is not None else done.accepted()


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
