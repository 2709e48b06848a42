"""Teams sharing the cluster and the projects in them (admins), and what each team holds (every user)."""

from typing import Annotated

from fastapi import APIRouter, Path, status

from annoray.api.deps import AdminUser, CurrentUser, Id, SchedulerDep, SessionDep, WritesDep
from annoray.api.routes.projects import project_out
from annoray.api.schemas import ProjectOut, ProjectUpdate, TeamCreate, TeamOut, TeamUpdate
from annoray.platform.access.teams import team_views
from annoray.platform.services import teams

router = APIRouter(tags=["teams"])

TeamName = Annotated[str, Path(min_length=1, max_length=100, description="Team name")]


@router.post("/api/teams", response_model=TeamOut, status_code=status.HTTP_201_CREATED)
def create_team(body: TeamCreate, admin: AdminUser, writes: WritesDep, scheduler: SchedulerDep) -> TeamOut:
    """A team with a nominal quota, a borrowing limit (null: none) and seats per licence scope."""
    view = teams.create_team(writes, body.name, body.quota.model_dump(),
                             body.borrowing_limit.model_dump() if body.borrowing_limit else None, body.seats)
    scheduler.wake()
    return TeamOut.model_validate(view)


@router.get("/api/teams", response_model=list[TeamOut])
def list_teams(user: CurrentUser, session: SessionDep) -> list[TeamOut]:
    """Every team, then `default` (the projects of no team): quota, borrowing limit, seats, projects, usage, borrowed."""
    return [TeamOut.model_validate(v) for v in team_views(session)]


@router.patch("/api/teams/{name}", response_model=TeamOut)
def update_team(name: TeamName, body: TeamUpdate, admin: AdminUser, writes: WritesDep, scheduler: SchedulerDep) -> TeamOut:
    """Change the quota, the borrowing limit (null: no limit) or the seats; what is left out stays."""
    given = body.model_fields_set
    changes = {k: getattr(body, k) for k in ("quota", "seats") if k in given and getattr(body, k) is not None}
    if "borrowing_limit" in given:
        changes["borrowing_limit"] = body.borrowing_limit.model_dump() if body.borrowing_limit else None
    if "quota" in changes:
        changes["quota"] = body.quota.model_dump()
    view = teams.update_team(writes, name, **changes)
    scheduler.wake()
    return TeamOut.model_validate(view)


@router.delete("/api/teams/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_team(name: TeamName, admin: AdminUser, writes: WritesDep, scheduler: SchedulerDep) -> None:
    """The team goes; its projects go back to `default`, their running work with them."""
    teams.delete_team(writes, name)
    scheduler.wake()


@router.patch("/api/projects/{pid}", response_model=ProjectOut)
def update_project(pid: Id, body: ProjectUpdate, admin: AdminUser, writes: WritesDep,
                   session: SessionDep, scheduler: SchedulerDep) -> ProjectOut:
    """Put the project in a team (`{"team": "<name>"}`; null or `default`: in none) or set its trainings' default priority."""
    given = body.model_fields_set
    project = teams.set_project_team(writes, pid, **({"team": body.team} if "team" in given else {}),
                                     priority=body.priority if "priority" in given else None)
    scheduler.wake()
    return project_out(session, project, admin)
