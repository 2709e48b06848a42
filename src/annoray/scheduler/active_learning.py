"""Active-learning triggers, as the scheduler acts on them: the trainings a project's trigger made due are queued."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from annoray.platform.errors import AnnorayError, Errors
from annoray.platform.models.training import TrainingParams
from annoray.platform.store.repositories import ProjectRepository, TrainingJobRepository
from annoray.scheduler.ledger import SchedulerState
from annoray.scheduler.trainings import TrainingRequest, request_trainings


def queue_due_trainings(state: SchedulerState, why_never: Callable[[dict[str, float]], str | None]) -> None:
    """Queue the trainings active learning made due, each once none of its project's trainings is queued or
    running: triggers that arrive meanwhile stay one pending follow-up (all in the database)."""
    with state.reads() as session:
        due = [ProjectRepository(session).get(pid) for pid in ProjectRepository(session).active_learning_due()
               if not TrainingJobRepository(session).busy(pid)]
        session.expunge_all()
    for project in due:
        last: dict[str, Any] = {"at": datetime.now(UTC).isoformat(), "jobs": []}
        # the data is checked through read sessions: the write lock is taken only to insert the jobs
        with state.sessions() as session:
            try:
                jobs, warnings = request_trainings(
                    session, state.reads, state.settings, project, None, TrainingRequest(
                        source="active_learning", deploy=project.active_learning_deploy, params=TrainingParams(**project.active_learning_params)),
                    why_never=why_never)
                last |= {"jobs": [j.id for j in jobs], "warnings": warnings}
            except AnnorayError as exc:  # the data cannot train (yet): say why; the next trigger tries again
                session.rollback()
                last["error"] = Errors.E616.format(why="; ".join(e.message for e in exc.errors) or exc.detail)
            if ProjectRepository(session).acted_on_trigger(project.id, last):
                session.commit()
            else:  # turned off meanwhile
                session.rollback()
        state.kick.set()
