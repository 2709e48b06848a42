from typing import Any

from fastapi import APIRouter

from annoray.api.deps import CurrentUser, SchedulerDep

router = APIRouter(tags=["cluster"])


@router.get("/api/cluster")
def cluster(user: CurrentUser, scheduler: SchedulerDep) -> dict[str, Any]:
    """Nodes with free/total CPU, memory and GPU as the scheduler allocates them, running trainings, and the queue with reasons."""
    return scheduler.cluster()
