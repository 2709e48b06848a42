"""Teams sharing the cluster, as users see them: each team's quota, borrowing limit and seats, its projects, and what
they run now (usage, and what of it is borrowed beyond the quota). The scheduler's admission (`scheduler.admission`)
decides with the same quotas."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from annoray.platform.resources import Resources
from annoray.platform.store.repositories import TeamRepository
from annoray.platform.store.tables import Team

DEFAULT_TEAM = "default"  # the team of every project in no team: no quota of its own, it only borrows


def team_views(session: Session) -> list[dict[str, Any]]:
    """Every team, then the default team: quota, borrowing limit, seats, projects, usage and borrowed."""
    repo = TeamRepository(session)
    teams = list(repo.all())
    projects = repo.projects()
    usage: dict[int | None, Resources] = {}
    for team_id, resources, count in repo.holding():
        usage[team_id] = usage.get(team_id, Resources()) + Resources.of(resources) * count
    rows: list[tuple[Team | None, str]] = [(t, t.name) for t in teams] + [(None, DEFAULT_TEAM)]
    views = []
    for team, name in rows:
        key = team.id if team else None
        quota = Resources.of(team.quota) if team else Resources()
        used = usage.get(key, Resources())
        borrowed = used - quota
        views.append({
            "name": name, "quota": quota.as_dict(), "borrowing_limit": team.borrowing_limit if team else None,
            "seats": team.seats if team else {}, "projects": projects.get(key, []), "usage": used.as_dict(),
            "borrowed": Resources(max(borrowed.cpus, 0), max(borrowed.memory, 0), max(borrowed.gpus, 0)).as_dict(),
        })
    return views
