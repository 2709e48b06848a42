"""Active learning: count each task the first time it has a completion that can train, and trigger every N.

A task counts once, when it first has an eligible completion (submitted, not rejected: what the
selection rules can pick) while active learning is on; editing, reviewing or adding completions to
a counted task never counts it again. Counting and triggering are conditional SQL updates in the
caller's transaction, so concurrent submissions neither lose nor double a count. A trigger only
marks the project ``active_learning_pending``; the scheduler submits the training when none of the project's
trainings is queued or running, so triggers that arrive meanwhile coalesce into one follow-up.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from annoray.platform.errors import ErrorDetail, Errors, InvalidInput
from annoray.platform.labeling.selection import has_eligible_completion
from annoray.platform.models.training import TrainingParams
from annoray.platform.store.tables import Project, Task

METRICS = ("micro.f1", "macro.f1", "micro.precision", "micro.recall", "macro.precision", "macro.recall", "accuracy")


def _mark_counted(session: Session, project_id: int, task_ids: list[int] | None = None) -> int:
    """Mark the project's uncounted tasks (among ``task_ids``, or all) that have a completion the selection rules may
    pick (submitted and not rejected) as counted; returns how many it marked."""
    query = update(Task).where(Task.project_id == project_id, Task.active_learning_counted_at.is_(None),
                               has_eligible_completion())
    if task_ids is not None:
        query = query.where(Task.id.in_(task_ids))
    return session.execute(query.values(active_learning_counted_at=datetime.now(UTC)).execution_options(synchronize_session=False)).rowcount


def count_eligible(session: Session, project: Project, task_ids: Iterable[int]) -> bool:
    """Count the tasks among ``task_ids`` newly eligible; True when that makes a training due (the scheduler acts)."""
    ids = sorted(set(task_ids))
    if not project.active_learning_enabled or not ids:
        return False
    counted = _mark_counted(session, project.id, ids)
    if not counted:
        return False
    session.execute(update(Project).where(Project.id == project.id)
                    .values(active_learning_counter=Project.active_learning_counter + counted).execution_options(synchronize_session=False))
    due = session.execute(
        update(Project).where(Project.id == project.id, Project.active_learning_enabled, Project.active_learning_counter >= Project.active_learning_every)
        .values(active_learning_counter=Project.active_learning_counter % Project.active_learning_every, active_learning_pending=True)
        .execution_options(synchronize_session=False)).rowcount
    if project in session:  # the caller may hold a copy read before (its counters are the database's to move)
        session.expire(project)
    return bool(due)


def configure(session: Session, project: Project, *, enabled: bool, every: int, deploy: bool, gate: bool, metric: str,
              params: dict[str, Any] | None) -> Project:
    """Turn active learning on or off and set its deploy gate; turning it on counts from now on."""
    errors = []
    if metric not in METRICS:
        errors.append(ErrorDetail(Errors.E614.format(metric=metric, allowed=", ".join(METRICS)), field="metric"))
    try:
        checked = TrainingParams(**(params or {})).model_dump(exclude_unset=True)  # the rest: each engine's defaults
    except ValueError as exc:
        errors += [ErrorDetail(e["msg"], field="params." + ".".join(str(p) for p in e["loc"])) for e in exc.errors()]  # type: ignore[attr-defined]
    if errors:
        raise InvalidInput("invalid active-learning settings", errors)
    if enabled and not project.active_learning_enabled:
        # what is eligible now was annotated before active learning: only what becomes eligible later counts
        _mark_counted(session, project.id)
        project.active_learning_counter = 0
    project.active_learning_enabled, project.active_learning_every, project.active_learning_deploy = enabled, every, deploy
    project.deploy_gate, project.deploy_metric, project.active_learning_params = gate, metric, checked
    if not enabled:
        project.active_learning_pending = False
    session.flush()
    return project


def view(project: Project) -> dict[str, Any]:
    """The project's active-learning state as the API shows it."""
    return {"enabled": project.active_learning_enabled, "every": project.active_learning_every, "deploy": project.active_learning_deploy,
            "gate": project.deploy_gate, "metric": project.deploy_metric, "params": project.active_learning_params or {},
            "counter": project.active_learning_counter, "pending": project.active_learning_pending, "last": project.active_learning_last or {}}


def metric_value(metrics: dict[str, Any], metric: str) -> float | None:
    """``micro.f1`` -> metrics["micro"]["f1"]; None when the metrics lack it."""
    value: Any = metrics
    for part in metric.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return float(value) if isinstance(value, int | float) else None
