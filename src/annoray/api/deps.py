"""Every FastAPI dependency, as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from annoray.platform.errors import Errors, Forbidden, Unauthorized
from annoray.platform.settings import Settings
from annoray.platform.store.repositories import DocumentRepository, ProjectRepository, TrainingJobRepository, UserRepository
from annoray.platform.store.tables import Document, Member, Project, TrainingJob, User
from annoray.scheduler import SchedulerClient


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_sessions(request: Request) -> sessionmaker[Session]:
    return request.app.state.sessions


def get_write_sessions(request: Request) -> sessionmaker[Session]:
    return request.app.state.write_sessions


def get_session(request: Request) -> Iterator[Session]:
    """A session per request; routes commit what they change, anything else is rolled back.

    Requests that may write get a write session (on SQLite it holds the write lock from its first
    statement); reads never wait for writers.
    """
    factory = request.app.state.sessions if request.method in ("GET", "HEAD") else request.app.state.write_sessions
    with factory() as session:
        yield session


def get_scheduler(request: Request) -> SchedulerClient:
    return request.app.state.scheduler


MAX_ID = 2**63 - 1
"""The largest id a database row can have (a signed 64-bit integer): a larger one in a path is refused as invalid."""
Id = Annotated[int, Path(ge=1, le=MAX_ID, description="An id, from 1")]
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]
PageNumber = Annotated[int, Path(ge=1, le=1_000_000, description="Page number, from 1")]

SettingsDep = Annotated[Settings, Depends(get_settings)]
SchedulerDep = Annotated[SchedulerClient, Depends(get_scheduler)]
SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessions)]
WriteSessionsDep = Annotated[sessionmaker[Session], Depends(get_write_sessions)]
SessionDep = Annotated[Session, Depends(get_session)]


BEARER = HTTPBearer(auto_error=False, description="An annoray API token (`Authorization: Bearer ar_...`): the admin "
                    "token in `$ANNORAY_HOME/admin.token`, or a user's, shown once when the user is created.")


def get_current_user(session: SessionDep,
                     credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)] = None) -> User:
    token = credentials.credentials.strip() if credentials is not None else ""
    if not token:
        raise Unauthorized()
    user = UserRepository(session).by_token(token)
    if user is None:
        raise Unauthorized()
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_admin(user: CurrentUser) -> User:
    if not user.is_admin:
        raise Forbidden(Errors.E403.format(action="do this"))
    return user


AdminUser = Annotated[User, Depends(get_admin)]


@dataclass
class Membership:
    """The caller, the project addressed by the path, and the caller's role in it."""

    user: User
    project: Project
    member: Member


def membership_of(session: Session, user: User, pid: int) -> Membership:
    repo = ProjectRepository(session)
    project = repo.get(pid)
    member = repo.member(project.id, user.id)
    if member is None:
        raise Forbidden(Errors.E405.format(project_id=pid))
    return Membership(user, project, member)


def get_membership(user: CurrentUser, session: SessionDep, pid: Annotated[int, Path(ge=1, le=MAX_ID, description="Project id")]) -> Membership:
    return membership_of(session, user, pid)


MembershipDep = Annotated[Membership, Depends(get_membership)]


@dataclass
class TrainingAccess:
    """A training job and the caller's membership in its project."""

    job: TrainingJob
    membership: Membership


def get_training(user: CurrentUser, session: SessionDep, jid: Annotated[int, Path(ge=1, le=MAX_ID, description="Training job id")]) -> TrainingAccess:
    job = TrainingJobRepository(session).get(jid)
    return TrainingAccess(job, membership_of(session, user, job.project_id))


TrainingDep = Annotated[TrainingAccess, Depends(get_training)]


@dataclass
class DocumentAccess:
    """An uploaded document and the caller's membership in its project."""

    document: Document
    membership: Membership


def get_document(user: CurrentUser, session: SessionDep, fid: Annotated[int, Path(ge=1, le=MAX_ID, description="File id")]) -> DocumentAccess:
    document = DocumentRepository(session).get(fid)
    return DocumentAccess(document, membership_of(session, user, document.project_id))


DocumentDep = Annotated[DocumentAccess, Depends(get_document)]


def get_task_tags(
    tags: Annotated[str | None, Query(description="Comma-separated task tags; a task with any of them matches; default: all tasks.")] = None,
) -> tuple[str, ...]:
    return tuple(t.strip() for t in (tags or "").split(",") if t.strip())


TaskTagsDep = Annotated[tuple[str, ...], Depends(get_task_tags)]
