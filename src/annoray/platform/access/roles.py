"""Who may do what in a project (roles per project; admins are platform-wide)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from annoray.platform.errors import Errors, Forbidden
from annoray.platform.store.repositories import ProjectRepository
from annoray.platform.store.tables import CatalogModel, PreannotationServer, Role, User

OWNER_MANAGER = frozenset({Role.OWNER, Role.MANAGER})
REVIEWERS = frozenset({Role.REVIEWER, Role.OWNER, Role.MANAGER})
OWNER = frozenset({Role.OWNER})
ANY_MEMBER = frozenset(Role)


def require_role(role: Role, allowed: frozenset[Role], action: str) -> None:
    if role not in allowed:
        raise Forbidden(Errors.E402.format(
            role=role.value, action=action, allowed=", ".join(sorted(r.value for r in allowed))
        ))


def require_manager_somewhere(session: Session, user: User) -> None:
    """Admins, and owners or managers of some project, may deploy servers from models and define rules."""
    if user.is_admin or ProjectRepository(session).has_role_anywhere(user.id, OWNER_MANAGER):
        return
    raise Forbidden(Errors.E402.format(role="member", action="do this", allowed="owner, manager (of any project), admin"))


def require_server_manager(session: Session, user: User, server: PreannotationServer) -> None:
    """Who may delete a server: an admin, whoever deployed it from models, or an owner or manager of its project."""
    if user.is_admin or (server.project_id is None and server.requested_by == user.id):
        return
    if server.project_id is None:
        raise Forbidden(Errors.E403.format(action="delete a server another user deployed from models"))
    member = ProjectRepository(session).member(server.project_id, user.id)
    if member is None:
        raise Forbidden(Errors.E405.format(project_id=server.project_id))
    require_role(member.role, OWNER_MANAGER, "delete servers")


def may_serve(user: User | None, project_id: int | None, model: CatalogModel) -> bool:
    """Whether a server of ``project_id`` may hold ``model``: one trained on that project, imported by an admin (only
    admins import) or shared by an admin; an admin, and the platform itself (no user), may serve any."""
    return (user is None or user.is_admin or model.shared or model.source == "imported"
            or (project_id is not None and model.project_id == project_id))


def require_server_of(user: User, project_id: int, server: PreannotationServer) -> None:
    """A project's members use their project's servers and the shared ones (no project); admins use any."""
    if user.is_admin or server.project_id is None or server.project_id == project_id:
        return
    raise Forbidden(Errors.E823.format(server_id=server.id, owner=server.project_id, project_id=project_id))


def may_see_cluster(session: Session, user: User) -> bool:
    """The cluster (every project's running trainings and servers, who holds license seats) is for admins and the
    owners of some project."""
    return user.is_admin or ProjectRepository(session).has_role_anywhere(user.id, OWNER)


def require_cluster_viewer(session: Session, user: User) -> None:
    if not may_see_cluster(session, user):
        raise Forbidden(Errors.E402.format(role="member", action="see the cluster", allowed="owner (of any project), admin"))
