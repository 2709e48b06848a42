"""Queries and writes of the store; repositories only flush, the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session, load_only

from annoray.platform.errors import NotFound
from annoray.platform.lifecycle import HOLDING, UNDER_WAY, sources
from annoray.platform.store.tables import (
    Base,
    CatalogModel,
    Completion,
    JobStatus,
    LabelingConfigVersion,
    License,
    LicenseLease,
    Member,
    PreannotationJob,
    PreannotationServer,
    Prediction,
    Project,
    Role,
    Rule,
    ServerStatus,
    Task,
    TaskTag,
    TrainingJob,
    TrainingLogLine,
    User,
)
from annoray.platform.store.tokens import hash_token


T = TypeVar("T", bound=Base)


class _Rows(Generic[T]):
    """The plain reads and writes of one table's rows, by id."""

    row: type[T]
    noun: str  # what a 404 calls it

    def __init__(self, session: Session):
        self.session = session

    def get(self, row_id: int) -> T:
        found = self.session.get(self.row, row_id)
        if found is None:
            raise NotFound(self.noun, row_id)
        return found

    def add(self, row: T) -> T:
        self.session.add(row)
        self.session.flush()
        return row

    def all(self) -> Sequence[T]:
        return self.session.scalars(select(self.row).order_by(self.row.id)).all()  # type: ignore[attr-defined]


def _move(session: Session, model: Any, row_id: int, among: Sequence[Any], to: Any, values: dict[str, Any]) -> bool:
    """Set ``status`` to ``to`` (and ``values``) only if the row is still in one of ``among`` and the lifecycle
    allows the move from there; True if it moved."""
    allowed = sources(to, among)
    if not allowed:
        return False
    done = session.execute(update(model).where(model.id == row_id, model.status.in_(allowed)).values(status=to, **values))
    return done.rowcount == 1  # type: ignore[attr-defined]


class UserRepository:
    def __init__(self, session: Session):
        self.session = session

    def by_token(self, token: str) -> User | None:
        return self.session.scalar(select(User).where(User.token_hash == hash_token(token)))

    def by_username(self, username: str) -> User | None:
        return self.session.scalar(select(User).where(User.username == username))

    def add(self, username: str, token: str, *, is_admin: bool = False) -> User:
        user = User(username=username, token_hash=hash_token(token), is_admin=is_admin)
        self.session.add(user)
        self.session.flush()
        return user

    def count(self) -> int:
        return self.session.scalar(select(func.count(User.id))) or 0


class ProjectRepository(_Rows[Project]):
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

    def _filtered(self, project_id: int, tags: Sequence[str] | None):  # type: ignore[no-untyped-def]
        query = select(Task).where(Task.project_id == project_id)
        if tags:
            query = query.where(Task.id.in_(
                select(TaskTag.task_id).where(TaskTag.project_id == project_id, TaskTag.tag.in_(tags))
            ))
        return query

    def page(self, project_id: int, *, tags: Sequence[str] | None, offset: int, limit: int,
             by_uncertainty: bool = False) -> Sequence[Task]:
        """A page of tasks by id, or the ones the last pre-annotation was least sure of first (never pre-annotated last)."""
        order = (Task.uncertainty.desc().nulls_last(), Task.id) if by_uncertainty else (Task.id,)
        return self.session.scalars(self._filtered(project_id, tags).order_by(*order).offset(offset).limit(limit)).all()

    def count(self, project_id: int, *, tags: Sequence[str] | None = None) -> int:
        sub = self._filtered(project_id, tags).subquery()
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

    def for_tasks(self, task_ids: Sequence[int]) -> Sequence[Completion]:
        return self.session.scalars(
            select(Completion).where(Completion.task_id.in_(task_ids)).order_by(Completion.id)
        ).all()

    def for_task(self, task_id: int) -> Sequence[Completion]:
        return self.for_tasks([task_id])


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

    def for_task(self, task_id: int) -> Sequence[Prediction]:
        return self.session.scalars(select(Prediction).where(Prediction.task_id == task_id).order_by(Prediction.id)).all()


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


class TrainingJobRepository(_Rows[TrainingJob]):
    row, noun = TrainingJob, "training"

    def for_project(self, project_id: int) -> Sequence[TrainingJob]:
        return self.session.scalars(
            select(TrainingJob).where(TrainingJob.project_id == project_id).order_by(TrainingJob.id.desc())
        ).all()

    def busy(self, project_id: int) -> bool:
        """Whether a training of the project is under way (queued, waiting or running)."""
        return self.session.scalar(select(TrainingJob.id).where(
            TrainingJob.project_id == project_id, TrainingJob.status.in_(UNDER_WAY)).limit(1)) is not None

    def with_status(self, *statuses: JobStatus) -> Sequence[TrainingJob]:
        return self.session.scalars(
            select(TrainingJob).where(TrainingJob.status.in_(statuses)).order_by(TrainingJob.id)
        ).all()

    def to_schedule(self, *statuses: JobStatus) -> Sequence[TrainingJob]:
        """Jobs in ``statuses``, oldest first, with only what a scheduling pass reads loaded."""
        return self.session.scalars(
            select(TrainingJob).where(TrainingJob.status.in_(statuses)).order_by(TrainingJob.id).options(load_only(
                TrainingJob.project_id, TrainingJob.kind, TrainingJob.status, TrainingJob.reason, TrainingJob.resources,
                TrainingJob.scopes, TrainingJob.decided_at, TrainingJob.created_at, raiseload=True))
        ).all()

    def transition(self, job_id: int, among: Sequence[JobStatus], to: JobStatus, **values: Any) -> bool:
        """Move a job from one of ``among`` to ``to`` only if it is still there and the lifecycle allows it.

        A job that stops running returns its license seats in the same transaction.
        """
        moved = _move(self.session, TrainingJob, job_id, among, to, values)
        if moved and to is not JobStatus.RUNNING and JobStatus.RUNNING in among:
            LicenseRepository(self.session).release(TRAINING, job_id)
        return moved

    def set(self, job_id: int, **values: Any) -> None:
        self.session.execute(update(TrainingJob).where(TrainingJob.id == job_id).values(**values))


class TrainingLogRepository:
    def __init__(self, session: Session):
        self.session = session

    def append(self, job_id: int, event: str, text: str, data: dict[str, Any] | None = None) -> None:
        self.session.add(TrainingLogLine(job_id=job_id, event=event, text=text, data=data or {}))
        self.session.flush()

    def lines(self, job_id: int, *, after_id: int = 0, event: str | None = None) -> Sequence[TrainingLogLine]:
        query = select(TrainingLogLine).where(TrainingLogLine.job_id == job_id, TrainingLogLine.id > after_id)
        if event is not None:
            query = query.where(TrainingLogLine.event == event)
        return self.session.scalars(query.order_by(TrainingLogLine.id)).all()


TRAINING = "training"
SERVER = "server"


class ServerRepository(_Rows[PreannotationServer]):
    row, noun = PreannotationServer, "server"

    def by_name(self, name: str) -> PreannotationServer | None:
        return self.session.scalars(select(PreannotationServer).where(PreannotationServer.name == name)).first()

    def with_status(self, *statuses: ServerStatus, project_id: int | None = None) -> Sequence[PreannotationServer]:
        query = select(PreannotationServer).where(PreannotationServer.status.in_(statuses))
        if project_id is not None:
            query = query.where(PreannotationServer.project_id == project_id)
        return self.session.scalars(query.order_by(PreannotationServer.id)).all()

    def transition(self, server_id: int, among: Sequence[ServerStatus], to: ServerStatus, **values: Any) -> bool:
        """Move a server to ``to`` only if it is still in one of ``among`` and the lifecycle allows it; one that
        stops holding resources returns its seats in the same transaction."""
        moved = _move(self.session, PreannotationServer, server_id, among, to, values)
        if moved and to not in HOLDING and any(status in HOLDING for status in among):
            LicenseRepository(self.session).release(SERVER, server_id)
        return moved

    def delete(self, server_id: int) -> None:
        LicenseRepository(self.session).release(SERVER, server_id)
        self.session.execute(delete(PreannotationServer).where(PreannotationServer.id == server_id))




class PreannotationJobRepository(_Rows[PreannotationJob]):
    row, noun = PreannotationJob, "pre-annotation job"

    def with_status(self, *statuses: JobStatus) -> Sequence[PreannotationJob]:
        return self.session.scalars(
            select(PreannotationJob).where(PreannotationJob.status.in_(statuses)).order_by(PreannotationJob.id)
        ).all()

    def for_server(self, server_id: int, *statuses: JobStatus) -> Sequence[PreannotationJob]:
        return self.session.scalars(select(PreannotationJob).where(
            PreannotationJob.server_id == server_id, PreannotationJob.status.in_(statuses))).all()

    def transition(self, job_id: int, among: Sequence[JobStatus], to: JobStatus, **values: Any) -> bool:
        return _move(self.session, PreannotationJob, job_id, among, to, values)

    def set(self, job_id: int, **values: Any) -> None:
        self.session.execute(update(PreannotationJob).where(PreannotationJob.id == job_id).values(**values))


class RuleRepository(_Rows[Rule]):
    row, noun = Rule, "rule"

    def all(self) -> Sequence[Rule]:
        return self.session.scalars(select(Rule).order_by(Rule.name)).all()

    def by_names(self, names: Sequence[str]) -> Sequence[Rule]:
        return self.session.scalars(select(Rule).where(Rule.name.in_(list(names))).order_by(Rule.name)).all()

    def by_name(self, name: str) -> Rule | None:
        return self.session.scalars(select(Rule).where(Rule.name == name)).first()



class LicenseRepository(_Rows[License]):
    row, noun = License, "license"

    def by_key(self, key: str) -> License | None:
        return self.session.scalars(select(License).where(License.license_key == key)).first()

    def delete(self, license: License) -> None:
        self.session.delete(license)
        self.session.flush()

    def leased(self) -> dict[int, int]:
        """Seats leased now, per license id."""
        rows = self.session.execute(
            select(LicenseLease.license_id, func.count()).where(LicenseLease.released_at.is_(None))
            .group_by(LicenseLease.license_id)
        )
        return {license_id: count for license_id, count in rows}

    def active(self, license_id: int | None = None, *, holder_kind: str | None = None,
               holder_id: int | None = None) -> Sequence[LicenseLease]:
        """Seats leased now: of one license, of one kind of holder, or of one holder."""
        query = select(LicenseLease).where(LicenseLease.released_at.is_(None)).order_by(LicenseLease.id)
        if license_id is not None:
            query = query.where(LicenseLease.license_id == license_id)
        if holder_kind is not None:
            query = query.where(LicenseLease.holder_kind == holder_kind)
        if holder_id is not None:
            query = query.where(LicenseLease.holder_id == holder_id)
        return self.session.scalars(query).all()

    def unexpired(self, now: datetime) -> Sequence[License]:
        return self.session.scalars(select(License).where(License.expires_at > now).order_by(License.expires_at, License.id)).all()

    def lease(self, license_id: int, scope: str, holder_kind: str, holder_id: int, now: datetime) -> bool:
        """Lease one seat if the license is still installed, unexpired and has one free; False otherwise."""
        license = self.session.scalars(select(License).where(License.id == license_id).with_for_update()).first()
        if license is None or aware(license.expires_at) <= now:
            return False
        if self.leased().get(license_id, 0) >= license.seats:
            return False
        self.session.add(LicenseLease(license_id=license_id, scope=scope, holder_kind=holder_kind, holder_id=holder_id, leased_at=now))
        self.session.flush()
        return True

    def lease_all(self, leases: Sequence[tuple[str, int]], holder_kind: str, holder_id: int, now: datetime) -> bool:
        """Lease every (scope, license id) seat for one holder; False as soon as one cannot be had."""
        return all(self.lease(license_id, scope, holder_kind, holder_id, now) for scope, license_id in leases)

    def release(self, holder_kind: str, holder_id: int) -> None:
        self.session.execute(
            update(LicenseLease).where(LicenseLease.holder_kind == holder_kind, LicenseLease.holder_id == holder_id,
                                       LicenseLease.released_at.is_(None)).values(released_at=datetime.now(UTC))
        )

    def release_all_but(self, holder_kind: str, live: Sequence[int]) -> int:
        """Return the seats of every ``holder_kind`` holder not in ``live`` (holders that ended without returning them)."""
        done = self.session.execute(
            update(LicenseLease).where(LicenseLease.holder_kind == holder_kind, LicenseLease.released_at.is_(None),
                                       LicenseLease.holder_id.not_in(list(live))).values(released_at=datetime.now(UTC))
        )
        return done.rowcount  # type: ignore[attr-defined]


def aware(when: datetime) -> datetime:
    """SQLite returns naive datetimes; the store writes UTC."""
    return when if when.tzinfo else when.replace(tzinfo=UTC)
