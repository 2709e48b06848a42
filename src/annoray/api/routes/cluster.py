from typing import Any

from fastapi import APIRouter

from annoray.api.deps import CurrentUser, SchedulerDep, SessionDep
from annoray.platform.access.roles import require_cluster_viewer

router = APIRouter(tags=["cluster"])


@router.get("/api/cluster")
def cluster(user: CurrentUser, session: SessionDep, scheduler: SchedulerDep) -> dict[str, Any]:
    """Nodes with free/total CPU, memory and GPU as the scheduler allocates them, running trainings, and the queue with
    reasons: for admins and the owners of some project."""
    require_cluster_viewer(session, user)
    return scheduler.cluster()


@router.get("/api/queue")
def queue(user: CurrentUser, session: SessionDep, scheduler: SchedulerDep) -> list[dict[str, Any]]:
    """The trainings waiting to start in the order the scheduler decides them: each one's position, team, priority,
    what it waits for (room on a node, to borrow beyond its team's quota, over its quota, a licence seat, its
    project's running training), the scheduler's reason, and how often it was preempted."""
    require_cluster_viewer(session, user)
    return scheduler.cluster()["queue"]
