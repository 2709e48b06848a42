"""Teams and the projects in them: each write a short transaction of its own (the scheduler reads them every pass)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from annoray.platform.access.teams import DEFAULT_TEAM, team_views
from annoray.platform.errors import Conflict, Errors, NotFound
from annoray.platform.services import Writes
from annoray.platform.store.repositories import ProjectRepository, TeamRepository
from annoray.platform.store.tables import Project, Team

UNSET = object()


def create_team(writes: Writes, name: str, quota: dict[str, float], borrowing_limit: dict[str, float] | None,
                seats: dict[str, int]) -> dict[str, Any]:
    """A team with its nominal quota, borrowing limit (None: no limit) and seats per licence scope; its view."""
    if name == DEFAULT_TEAM:
        raise Conflict(Errors.E519)
    try:
        with writes.begin() as session:
            repo = TeamRepository(session)
            if repo.by_name(name) is not None:
                raise Conflict(Errors.E518.format(name=name))
            repo.add(Team(name=name, quota=quota, borrowing_limit=borrowing_limit, seats=seats))
            return _view(session, name)
    except IntegrityError:  # the same name taken by a request that committed first
        raise Conflict(Errors.E518.format(name=name)) from None


def update_team(writes: Writes, name: str, *, quota: dict[str, float] | None = None,
                borrowing_limit: Any = UNSET, seats: dict[str, int] | None = None) -> dict[str, Any]:
    """Change what is given (``borrowing_limit`` None: no limit); its view."""
    with writes.begin() as session:
        team = _team(session, name)
        if quota is not None:
            team.quota = quota
        if borrowing_limit is not UNSET:
            team.borrowing_limit = borrowing_limit
        if seats is not None:
            team.seats = seats
        session.flush()
        return _view(session, name)


def delete_team(writes: Writes, name: str) -> None:
    """The team goes; its projects go back to the default team (their work runs on, counted against it)."""
    with writes.begin() as session:
        TeamRepository(session).delete(_team(session, name))


def set_project_team(writes: Writes, project_id: int, *, team: Any = UNSET, priority: int | None = None) -> Project:
    """Put a project in a team (None or ``default``: in none) and/or set its trainings' default priority; the project."""
    with writes.begin() as session:
        project = ProjectRepository(session).get(project_id)
        if team is not UNSET:
            project.team = None if team in (None, DEFAULT_TEAM) else _team(session, team)
        if priority is not None:
            project.priority = priority
        session.flush()
        return project


def _team(session, name: str) -> Team:
    team = TeamRepository(session).by_name(name)
    if team is None:
        raise NotFound("team", name)
    return team


def _view(session, name: str) -> dict[str, Any]:
    return next(v for v in team_views(session) if v["name"] == name)
