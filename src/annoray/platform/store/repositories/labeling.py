"""Users, projects and their members, tasks, completions, predictions and the model catalog."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from annoray.platform.errors import NotFound
from annoray.platform.store.repositories.base import RowRepository
from annoray.platform.store.tables import (
    CatalogModel, Completion, LabelingConfigVersion, Member, Prediction, Project, Role, Task, TaskTag, User,
)
from annoray.platform.store.tokens import hash_token


class UserRepository:
    def __init__(self, session: Session):
        self.session = session

    def by_token(self, token: str) -> User | None:
        return self.session.scalar(select(User).where(User.token_hash == hash_token(token)))

    def by_username(self, username: str) -> User | None:
        return self.session.scalar(select(User).where(User.username == username))

    def add(self, username: str, token: str, *, is_admin: bool = False, is_service: bool = False) -> User:
        user = User(username=username, token_hash=hash_token(token), is_admin=is_admin, is_service=is_service)
        self.session.add(user)
        self.session.flush()
        return user

    def count(self) -> int:
        return self.session.scalar(select(func.count(User.id))) or 0

    def all(self) -> Sequence[User]:
        return self.session.scalars(select(User).order_by(User.id)).all()


class ProjectRepository(RowRepository[Project]):
    row, noun = Project, "project"

    def add_config_version(self, project: Project, reason: str) -> None:
        self.session.add(LabelingConfigVersion(
            project_id=project.id, version=project.config_version, labeling_config=project.labeling_config, reason=reason
        ))
        self.session.flush()

    def member(self, project_id: int, user_id: int) -> Member | None:
        return self.session.scalar(select(Member).where(Member.project_id == project_id, Member.user_id == user_id))

    def add_member(self, member: Member) -> Member:
        self.session.add(member)
        self.session.flush()
        return member

    def members(self, project_id: int) -> Sequence[Member]:
        return self.session.scalars(select(Member).where(Member.project_id == project_id).order_by(Member.id)).all()

    def for_user(self, user_id: int) -> Sequence[Project]:
        return self.session.scalars(
            select(Project).join(Member).where(Member.user_id == user_id).order_by(Project.id)
        ).all()

    def active_learning_due(self) -> list[int]:
        """Projects whose active learning has a training due that the scheduler has not queued yet."""
        return list(self.session.scalars(select(Project.id).where(Project.active_learning_pending, Project.active_learning_enabled).order_by(Project.id)))

    def acted_on_trigger(self, project_id: int, last: dict[str, Any]) -> bool:
        """Clear the project's due trigger, recording what came of it; False if active learning was turned off."""
        return bool(self.session.execute(
            update(Project).where(Project.id == project_id, Project.active_learning_pending, Project.active_learning_enabled)
            .values(active_learning_pending=False, active_learning_last=last).execution_options(synchronize_session=False)).rowcount)

    def has_role_anywhere(self, user_id: int, roles: Collection[Role]) -> bool:
        """Whether the user holds one of ``roles`` in some project."""
        return self.session.scalar(select(Member.id).where(Member.user_id == user_id, Member.role.in_(roles)).limit(1)) is not None

    def priorities(self, project_id: int) -> dict[int, int]:
        rows = self.session.execute(select(Member.user_id, Member.priority).where(Member.project_id == project_id))
        return {user_id: priority for user_id, priority in rows}


class TaskRepository:
    def __init__(self, session: Session):
        self.session = session

    def get(self, project_id: int, task_id: int) -> Task:
        task = self.session.get(Task, task_id)
        if task is None or task.project_id != project_id:
            raise NotFound("task", task_id)
        return task

    def add_many(self, project_id: int, rows: list[dict[str, Any]]) -> list[int]:
        """Insert tasks in one statement per batch, returning ids in input order."""
        if not rows:
            return []
        ids = list(self.session.scalars(
            insert(Task).returning(Task.id, sort_by_parameter_order=True),
            [{"project_id": project_id, "data": r["data"], "tags": r["tags"]} for r in rows],
        ))
        tag_rows = [
            {"task_id": tid, "tag": tag, "project_id": project_id}
            for tid, r in zip(ids, rows) for tag in dict.fromkeys(r["tags"])
        ]
        if tag_rows:
            self.session.execute(insert(TaskTag), tag_rows)
        return ids

    def _filtered(self, project_id: int, tags: Sequence[str] | None, completed: bool | None = None):  # type: ignore[no-untyped-def]
        query = select(Task).where(Task.project_id == project_id)
        if completed is not None:
            done = Task.id.in_(select(Completion.task_id).where(Completion.project_id == project_id))
            query = query.where(done if completed else ~done)
        if tags:
            query = query.where(Task.id.in_(
                select(TaskTag.task_id).where(TaskTag.project_id == project_id, TaskTag.tag.in_(tags))
            ))
        return query

    def page(self, project_id: int, *, tags: Sequence[str] | None, offset: int, limit: int,
             by_uncertainty: bool = False, completed: bool | None = None) -> Sequence[Task]:
        """A page of tasks by id, or the ones the last pre-annotation was least sure of first (never pre-annotated last);
        ``completed``: only those with (True) or without (False) a completion."""
        order = (Task.uncertainty.desc().nulls_last(), Task.id) if by_uncertainty else (Task.id,)
        query = self._filtered(project_id, tags, completed).order_by(*order).offset(offset).limit(limit)
        return self.session.scalars(query).all()

    def count(self, project_id: int, *, tags: Sequence[str] | None = None, completed: bool | None = None) -> int:
        sub = self._filtered(project_id, tags, completed).subquery()
        return self.session.scalar(select(func.count()).select_from(sub)) or 0

    def after(self, project_id: int, *, tags: Sequence[str] | None, after_id: int, limit: int) -> Sequence[Task]:
        """Keyset page: tasks with id > after_id, so a 100,000-task scan never uses OFFSET."""
        return self.session.scalars(
            self._filtered(project_id, tags).where(Task.id > after_id).order_by(Task.id).limit(limit)
        ).all()


class CompletionRepository:
    def __init__(self, session: Session):
        self.session = session

    def get(self, project_id: int, completion_id: int) -> Completion:
        completion = self.session.get(Completion, completion_id)
        if completion is None or completion.project_id != project_id:
            raise NotFound("completion", completion_id)
        return completion

    def add(self, completion: Completion) -> Completion:
        self.session.add(completion)
        self.session.flush()
        return completion

    def add_many(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.session.execute(insert(Completion), rows)

    def for_tasks(self, task_ids: Sequence[int], project_id: int) -> Sequence[Completion]:
        """The tasks' completions, oldest first, read through the (project, task) index, so a page of a big project
        costs its own rows, not a scan of every completion."""
        return self.session.scalars(select(Completion).where(Completion.project_id == project_id, Completion.task_id.in_(task_ids))
                                    .order_by(Completion.id)).all()

    def for_task(self, task_id: int, project_id: int) -> Sequence[Completion]:
        return self.for_tasks([task_id], project_id)


class PredictionRepository:
    def __init__(self, session: Session):
        self.session = session

    def get(self, project_id: int, prediction_id: int) -> Prediction:
        prediction = self.session.get(Prediction, prediction_id)
        if prediction is None or prediction.project_id != project_id:
            raise NotFound("prediction", prediction_id)
        return prediction

    def add_many(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.session.execute(insert(Prediction), rows)

    def for_task(self, task_id: int, project_id: int) -> Sequence[Prediction]:
        """Read through the (project, task) index: no scan of every prediction."""
        return self.session.scalars(select(Prediction).where(Prediction.project_id == project_id, Prediction.task_id == task_id)
                                    .order_by(Prediction.id)).all()


class ModelRepository:
    def __init__(self, session: Session):
        self.session = session

    def kinds(self) -> dict[str, str]:
        """Catalog model name -> kind, what labeling config validation checks names against."""
        return {name: kind for name, kind in self.session.execute(select(CatalogModel.name, CatalogModel.kind))}

    def get(self, name: str) -> CatalogModel:
        model = self.by_name(name)
        if model is None:
            raise NotFound("model", name)
        return model

    def by_name(self, name: str) -> CatalogModel | None:
        return self.session.scalar(select(CatalogModel).where(CatalogModel.name == name))

    def all(self, kind: str | None = None) -> Sequence[CatalogModel]:
        query = select(CatalogModel).order_by(CatalogModel.id)
        if kind:
            query = query.where(CatalogModel.kind == kind)
        return self.session.scalars(query).all()

    def trained_for(self, project_id: int) -> set[str]:
        """Names of the models this project's trainings produced (any other model counts as pretrained to it)."""
        return set(self.session.scalars(select(CatalogModel.name).where(
            CatalogModel.project_id == project_id, CatalogModel.training_job_id.is_not(None))))

    def names_starting(self, prefix: str) -> list[str]:
        return list(self.session.scalars(select(CatalogModel.name).where(CatalogModel.name.startswith(prefix, autoescape=True))))

    def add(self, model: CatalogModel) -> CatalogModel:
        self.session.add(model)
        self.session.flush()
        return model
