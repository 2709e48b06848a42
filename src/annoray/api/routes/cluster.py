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
