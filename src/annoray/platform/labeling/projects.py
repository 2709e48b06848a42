"""Projects, their members and their labeling config."""

from __future__ import annotations

from sqlalchemy.orm import Session

from annoray.platform.errors import Conflict, ErrorDetail, Errors, InvalidInput
from annoray.platform.labeling.config import LabelingConfig, parse_labeling_config
from annoray.platform.labeling.datasets import LANGUAGES
from annoray.platform.settings import Settings
from annoray.platform.store.repositories import ModelRepository, ProjectRepository, UserRepository
from annoray.platform.store.tables import Member, Project, Role, User

MODEL_TYPES = ("open_source", "healthcare", "finance", "legal")


def load_config(session: Session, settings: Settings, xml: str) -> LabelingConfig:
    """Validate a config against the limits and the model catalog (every error at once)."""
    return parse_labeling_config(
        xml,
        catalog=ModelRepository(session).kinds(),
        max_bytes=settings.labeling_config.max_bytes,
        max_models=settings.labeling_config.max_models,
    )


def project_config(project: Project) -> LabelingConfig:
    """The stored (already validated) config of a project, parsed without catalog checks."""
    return parse_labeling_config(project.labeling_config, max_bytes=2**31)


def create_project(
    session: Session, settings: Settings, owner: User, *, name: str, labeling_config: str,
    language: str = "en", model_type: str = "open_source",
) -> tuple[Project, LabelingConfig]:
    errors = []
    if language not in LANGUAGES:
        errors.append(ErrorDetail(Errors.E122.format(language=language, languages=", ".join(LANGUAGES)), field="language"))
    if model_type not in MODEL_TYPES:
        errors.append(ErrorDetail(Errors.E123.format(model_type=model_type, model_types=", ".join(MODEL_TYPES)), field="model_type"))
    try:
        config = load_config(session, settings, labeling_config)
    except InvalidInput as exc:
        raise InvalidInput(exc.detail, errors + exc.errors) from None
    if errors:
        raise InvalidInput("invalid project", errors)
    repo = ProjectRepository(session)
    project = repo.add(Project(
        name=name, labeling_config=labeling_config, language=language, model_type=model_type, created_by=owner.id, team=None
    ))
    repo.add_member(Member(project_id=project.id, user_id=owner.id, role=Role.OWNER, priority=0))
    repo.add_config_version(project, "created")
    return project, config


def update_labeling_config(session: Session, settings: Settings, project: Project, xml: str, *, reason: str = "edited") -> LabelingConfig:
    config = load_config(session, settings, xml)
    project.labeling_config = xml
    project.config_version += 1
    ProjectRepository(session).add_config_version(project, reason)
    return config


def add_member(session: Session, project: Project, *, username: str, role: Role, priority: int) -> Member:
    user = UserRepository(session).by_username(username)
    if user is None:
        raise InvalidInput(Errors.E406.format(username=username), [ErrorDetail(Errors.E406.format(username=username), field="username")])
    repo = ProjectRepository(session)
    member = repo.member(project.id, user.id)
    if member is not None:
        if member.role is Role.OWNER and role is not Role.OWNER and sum(
            m.role is Role.OWNER for m in repo.members(project.id)
        ) == 1:
            raise Conflict(Errors.E509.format(username=username))
        member.role, member.priority = role, priority
        session.flush()
        return member
    return repo.add_member(Member(project_id=project.id, user_id=user.id, role=role, priority=priority))
