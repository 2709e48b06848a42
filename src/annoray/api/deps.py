"""Every FastAPI dependency, as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from annoray.platform.access.tokens import Caller, authenticate, check_scope
from annoray.platform.errors import Errors, Forbidden
from annoray.platform.settings import Settings
from annoray.platform.store.repositories import DocumentRepository, ProjectRepository, TrainingJobRepository
from annoray.platform.store.tables import MAX_ID, Document, Member, Project, TokenScope, TrainingJob, User
from annoray.scheduler import SchedulerClient


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_sessions(request: Request) -> sessionmaker[Session]:
    return request.app.state.sessions


def get_write_sessions(request: Request) -> sessionmaker[Session]:
    return request.app.state.write_sessions


def get_session(request: Request) -> Iterator[Session]:
    """A read-only session per request: authentication, checks and reads. What a request changes is a short
    transaction of the service function that owns the rule (``WritesDep``), never this session's, so no request holds
    a write lock while it authenticates, checks or waits, and none waits for another's."""
    with request.app.state.sessions() as session:
        yield session


def get_scheduler(request: Request) -> SchedulerClient:
    return request.app.state.scheduler


Id = Annotated[int, Path(ge=1, le=MAX_ID, description="An id, from 1")]
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]
PageNumber = Annotated[int, Path(ge=1, le=1_000_000, description="Page number, from 1")]

SettingsDep = Annotated[Settings, Depends(get_settings)]
SchedulerDep = Annotated[SchedulerClient, Depends(get_scheduler)]
SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessions)]
WritesDep = Annotated[sessionmaker[Session], Depends(get_write_sessions)]
"""The factory of short write transactions, handed to the service functions that own the rules (never opened here)."""
SessionDep = Annotated[Session, Depends(get_session)]


BEARER = HTTPBearer(auto_error=False, description="An annoray API token (`Authorization: Bearer ar_...`): the admin "
                    "token in `$ANNORAY_HOME/admin.token`, or a user's, shown once when the user is created.")


def identify(request: Request, session: Session, secret: str, now: datetime) -> Caller:
    """Who sent the request, by its token, recorded for the audit trail, with the token's scope applied: refused a
    method the scope forbids; an admin with a token narrower than ``admin`` becomes, for this request, a copy of the
    user with no admin flag, belonging to no session."""
    caller = authenticate(session, secret, now)
    request.state.caller = caller.user.id, caller.user.username, caller.token.id if caller.token else None
    check_scope(caller, request.method)
    if caller.user.is_admin and caller.scope is not TokenScope.ADMIN:
        u = caller.user
        caller = replace(caller, user=User(id=u.id, username=u.username, token_hash=u.token_hash, is_admin=False,
                                           is_service=u.is_service, active=u.active, created_at=u.created_at))
    return caller


def get_caller(request: Request, session: SessionDep,
               credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)] = None) -> Caller:
    """Who sent the request, by its bearer token, with the token's scope applied.

    A token narrower than ``admin`` makes an admin an ordinary user for this request: the caller's user is then a
    copy with no admin flag, belonging to no session (nothing writes it back), so every check downstream
    (``user.is_admin``) sees an ordinary user.
    """
    now = datetime.now(UTC)
    caller = identify(request, session, credentials.credentials.strip() if credentials is not None else "", now)
    if caller.token is not None:  # written out of band (ops.TokenUses): authentication never writes
        request.app.state.token_uses.note(caller.token.id, now)
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]


def get_current_user(caller: CallerDep) -> User:
    return caller.user


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
