from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import StreamingResponse

from sqlalchemy.orm import Session, sessionmaker

from annoray.api.deps import Membership, CurrentUser, MembershipDep, SchedulerDep, SessionDep, SessionsDep, SettingsDep, TaskTagsDep, WritesDep
from annoray.api.schemas import (
    ActiveLearningIn,
    ActiveLearningOut,
    LabelingConfigUpdate,
    MemberCreate,
    MemberOut,
    ProjectCreate,
    ProjectOut,
    TrainingDataOut,
)
from annoray.platform.access.teams import DEFAULT_TEAM
from annoray.platform.access.roles import ANY_MEMBER, OWNER, OWNER_MANAGER, require_role
from annoray.platform.labeling.config import LabelingConfig, ModelKind
from annoray.platform.labeling.datasets import SplitMethod
from annoray.platform.labeling.projects import project_config
from annoray.platform.labeling.training_data import SelectionQuery, build_training_data, export_selection
from annoray.platform.models import active_learning
from annoray.platform.services import labeling
from annoray.platform.settings import Settings
from annoray.platform.store.repositories import ProjectRepository
from annoray.platform.store.tables import Project, Role, User

router = APIRouter(tags=["projects"])

MEDIA_TYPES = {"json": "application/json", "conll": "text/plain; charset=utf-8", "spacy": "application/x-tar"}
EXTENSIONS = {"json": "json", "conll": "conll", "spacy": "tar"}


def _out(project: Project, config: LabelingConfig, role: Role | None) -> ProjectOut:
    return ProjectOut(
        id=project.id, name=project.name, labeling_config=project.labeling_config,
        config_version=project.config_version, language=project.language, model_type=project.model_type,
        created_at=project.created_at, role=role, kinds=config.summary(), models=config.models,
        active_learning=ActiveLearningOut(**active_learning.view(project)),
        team=project.team.name if project.team else DEFAULT_TEAM, priority=project.priority,
    )


@router.post("/api/projects", response_model=ProjectOut, status_code=status.HTTP_201_CREATED)
def create(body: ProjectCreate, user: CurrentUser, writes: WritesDep, settings: SettingsDep) -> ProjectOut:
    project, config = labeling.create_project(writes, settings, user, name=body.name, labeling_config=body.labeling_config,
                                              language=body.language, model_type=body.model_type)
    return _out(project, config, Role.OWNER)


def projects_of(session: Session, user: User) -> list[ProjectOut]:
    repo = ProjectRepository(session)
    return [_out(p, project_config(p), repo.member(p.id, user.id).role) for p in repo.for_user(user.id)]  # type: ignore[union-attr]


def project_out(session: Session, project: Project, user: User) -> ProjectOut:
    """The project as ``user`` sees it (no role when not a member: an admin)."""
    member = ProjectRepository(session).member(project.id, user.id)
    return _out(project, project_config(project), member.role if member else None)


def project_view(m: Membership) -> ProjectOut:
    return _out(m.project, project_config(m.project), m.member.role)


def members_of(session: Session, project_id: int) -> list[MemberOut]:
    return [MemberOut(user_id=x.user_id, username=x.user.username, role=x.role, priority=x.priority)
            for x in ProjectRepository(session).members(project_id)]


@router.get("/api/projects", response_model=list[ProjectOut])
def list_projects(user: CurrentUser, session: SessionDep) -> list[ProjectOut]:
    return projects_of(session, user)


@router.get("/api/projects/{pid}", response_model=ProjectOut)
def get_project(m: MembershipDep) -> ProjectOut:
    return project_view(m)


@router.put("/api/projects/{pid}/labeling-config", response_model=ProjectOut)
def put_labeling_config(body: LabelingConfigUpdate, m: MembershipDep, writes: WritesDep, settings: SettingsDep,
                        scheduler: SchedulerDep) -> ProjectOut:
    """Save a new version of the config (422 with every error); the project's servers then serve the models it names."""
    require_role(m.member.role, OWNER_MANAGER, "change the labeling config")
    project, config, retargeted = labeling.update_labeling_config(writes, settings, m.project.id, body.labeling_config)
    if retargeted:  # the project's servers follow the models it names: a deploy on demand
        scheduler.wake()
    return _out(project, config, m.member.role)


@router.put("/api/projects/{pid}/active-learning", response_model=ActiveLearningOut)
def put_active_learning(body: ActiveLearningIn, m: MembershipDep, writes: WritesDep) -> ActiveLearningOut:
    """Every `every` newly eligible completions train the project's kinds (source `active_learning`), deploying
    them when `deploy`; triggers while one of its trainings runs coalesce into one follow-up."""
    require_role(m.member.role, OWNER_MANAGER, "configure active learning")
    project = labeling.configure_active_learning(writes, m.project.id, enabled=body.enabled, every=body.every,
                                                 deploy=body.deploy, gate=body.gate, metric=body.metric, params=body.params)
    return ActiveLearningOut(**active_learning.view(project))


@router.get("/api/projects/{pid}/active-learning", response_model=ActiveLearningOut)
def get_active_learning(m: MembershipDep) -> ActiveLearningOut:
    return ActiveLearningOut(**active_learning.view(m.project))


@router.post("/api/projects/{pid}/members", response_model=MemberOut, status_code=status.HTTP_201_CREATED)
def post_member(body: MemberCreate, m: MembershipDep, writes: WritesDep) -> MemberOut:
    require_role(m.member.role, OWNER, "add members")
    member = labeling.add_member(writes, m.project.id, username=body.username, role=body.role, priority=body.priority)
    return MemberOut(user_id=member.user_id, username=body.username, role=member.role, priority=member.priority)


@router.get("/api/projects/{pid}/members", response_model=list[MemberOut])
def list_members(m: MembershipDep, session: SessionDep) -> list[MemberOut]:
    require_role(m.member.role, ANY_MEMBER, "list members")
    return members_of(session, m.project.id)


@router.get("/api/projects/{pid}/training-data", response_model=TrainingDataOut)
def training_data(
    m: MembershipDep,
    sessions: SessionsDep,
    settings: SettingsDep,
    tags: TaskTagsDep,
    kinds: Annotated[list[ModelKind] | None, Query(description="Kinds to build; default: all the config has.")] = None,
    reviewed_only: bool = False,
    split: SplitMethod = SplitMethod.RANDOM,
    validation_split: Annotated[float, Query(ge=0.0, lt=1.0)] = 0.2,
    seed: int = 0,
) -> TrainingDataOut:
    """What a training would use: the selection, the split and per-label counts, with warnings and errors."""
    return training_data_summary(m, sessions, settings, tags, kinds, reviewed_only, split, validation_split, seed)


def training_data_summary(m: Membership, sessions: sessionmaker[Session], settings: Settings, tags: tuple[str, ...],
                          kinds: list[ModelKind] | None, reviewed_only: bool, split: SplitMethod, validation_split: float,
                          seed: int) -> TrainingDataOut:
    require_role(m.member.role, OWNER_MANAGER, "inspect training data")
    data = build_training_data(
        sessions, m.project.id, project_config(m.project), language=m.project.language, kinds=kinds,
        query=SelectionQuery(tags, reviewed_only), split=split, validation_split=validation_split,
        seed=seed, min_examples=settings.dataset.min_examples_per_label, page_size=settings.dataset.export_page_size,
    )
    return TrainingDataOut(**data.summary())


@router.get(
    "/api/projects/{pid}/export",
    responses={200: {"content": {"application/json": {}, "text/plain": {}, "application/x-tar": {}}}},
)
def export(
    m: MembershipDep,
    sessions: SessionsDep,
    settings: SettingsDep,
    tags: TaskTagsDep,
    format: Annotated[str, Query(description="json, conll or spacy")] = "json",
    reviewed_only: bool = False,
) -> StreamingResponse:
    """The training selection, streamed: Label Studio JSON, CoNLL-2003, or a tar of spaCy DocBin shards. CoNLL holds
    entities alone: the `Annoray-Left-Out` header says what else the project's completions hold that it leaves out
    (relations); Label Studio JSON keeps everything."""
    require_role(m.member.role, OWNER_MANAGER, "export training data")
    config = project_config(m.project)
    chunks = export_selection(
        sessions, m.project.id, config, language=m.project.language, fmt=format,
        query=SelectionQuery(tags, reviewed_only), page_size=settings.dataset.export_page_size,
    )
    filename = f"project-{m.project.id}.{EXTENSIONS[format]}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if format == "conll" and config.relation is not None:
        headers["Annoray-Left-Out"] = "relations: CoNLL holds entities alone; export json to keep them"
    return StreamingResponse(chunks, media_type=MEDIA_TYPES[format], headers=headers)
