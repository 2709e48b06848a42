"""Trainings and their logs, pre-annotation servers and jobs: rows that move through the lifecycle."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.orm import Session, load_only

from annoray.platform.errors import NotFound
from annoray.platform.lifecycle import HOLDING, PENDING, UNDER_WAY
from annoray.platform.store.repositories.access import LicenseRepository
from annoray.platform.store.repositories.base import move_status, RowRepository
from annoray.platform.store.tables import (
    JobStatus, PreannotationJob, PreannotationServer, ServerStatus, TrainingConfig, TrainingJob, TrainingLogLine,
)


class TrainingJobRepository(RowRepository[TrainingJob]):
    row, noun = TrainingJob, "training"

    def by_request_key(self, project_id: int, key: str) -> Sequence[TrainingJob]:
        return self.session.scalars(select(TrainingJob).where(TrainingJob.project_id == project_id, TrainingJob.request_key == key)
                                    .order_by(TrainingJob.id)).all()

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

    def to_schedule(self, *statuses: JobStatus, after: int = 0, ids: Collection[int] | None = None) -> Sequence[TrainingJob]:
        """Jobs in ``statuses`` (of an id above ``after``, among ``ids`` when given), by id, with only what a scheduling
        pass reads loaded."""
        among = (TrainingJob.id.in_(ids),) if ids is not None else ()
        return self.session.scalars(
            select(TrainingJob).where(TrainingJob.status.in_(statuses), TrainingJob.id > after, *among).order_by(TrainingJob.id).options(load_only(
                TrainingJob.project_id, TrainingJob.kind, TrainingJob.status, TrainingJob.reason, TrainingJob.resources,
                TrainingJob.scopes, TrainingJob.decided_at, TrainingJob.created_at, TrainingJob.started_at, TrainingJob.priority,
                raiseload=True))
        ).all()

    def ids_with_status(self, *statuses: JobStatus, after: int = 0) -> set[int]:
        return set(self.session.scalars(select(TrainingJob.id).where(TrainingJob.status.in_(statuses), TrainingJob.id > after)))

    def transition(self, job_id: int, among: Sequence[JobStatus], to: JobStatus, **values: Any) -> bool:
        """Move a job from one of ``among`` to ``to`` only if it is still there and the lifecycle allows it.

        A job that stops running returns its license seats in the same transaction.
        """
        moved = move_status(self.session, TrainingJob, job_id, among, to, values)
        if moved and to is not JobStatus.RUNNING and JobStatus.RUNNING in among:
            LicenseRepository(self.session).release(TRAINING, job_id)
        return moved

    def set(self, job_id: int, **values: Any) -> None:
        self.session.execute(update(TrainingJob).where(TrainingJob.id == job_id).values(**values))

    def wait_all(self, waits: Sequence[tuple[int, str, bool]], now: datetime) -> None:
        """(job id, reason, first decision): each job still queued or waiting moves to waiting with its reason (and
        ``now`` as its first decision's time), in one statement per kind (a job that left the queue meanwhile stays)."""
        table = TrainingJob.__table__
        for first in (True, False):
            rows = [{"jid": job_id, "why": reason} for job_id, reason, f in waits if f is first]
            if rows:
                still_pending = or_(*(table.c.status == status for status in PENDING))  # no IN: it cannot run many
                statement = (update(table).where(table.c.id == bindparam("jid"), still_pending)
                             .values(status=JobStatus.WAITING, reason=bindparam("why"), **({"decided_at": now} if first else {})))
                self.session.connection().execute(statement, rows)


class TrainingConfigRepository(RowRepository[TrainingConfig]):
    row, noun = TrainingConfig, "training config"

    def for_project(self, project_id: int) -> Sequence[TrainingConfig]:
        return self.session.scalars(select(TrainingConfig).where(TrainingConfig.project_id == project_id).order_by(TrainingConfig.id)).all()

    def by_name(self, project_id: int, name: str) -> TrainingConfig | None:
        return self.session.scalar(select(TrainingConfig).where(TrainingConfig.project_id == project_id, TrainingConfig.name == name))

    def of_project(self, project_id: int, config_id: int) -> TrainingConfig:
        """A config of the project (404 for another project's, as for none)."""
        config = self.session.get(TrainingConfig, config_id)
        if config is None or config.project_id != project_id:
            raise NotFound(self.noun, config_id)
        return config


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


class ServerRepository(RowRepository[PreannotationServer]):
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
        moved = move_status(self.session, PreannotationServer, server_id, among, to, values)
        if moved and to not in HOLDING and any(status in HOLDING for status in among):
            LicenseRepository(self.session).release(SERVER, server_id)
        return moved

    def delete(self, server_id: int) -> None:
        LicenseRepository(self.session).release(SERVER, server_id)
        self.session.execute(delete(PreannotationServer).where(PreannotationServer.id == server_id))


class PreannotationJobRepository(RowRepository[PreannotationJob]):
    row, noun = PreannotationJob, "pre-annotation job"

    def with_status(self, *statuses: JobStatus) -> Sequence[PreannotationJob]:
        return self.session.scalars(
            select(PreannotationJob).where(PreannotationJob.status.in_(statuses)).order_by(PreannotationJob.id)
        ).all()

    def for_server(self, server_id: int, *statuses: JobStatus) -> Sequence[PreannotationJob]:
        return self.session.scalars(select(PreannotationJob).where(
            PreannotationJob.server_id == server_id, PreannotationJob.status.in_(statuses))).all()

    def transition(self, job_id: int, among: Sequence[JobStatus], to: JobStatus, **values: Any) -> bool:
        return move_status(self.session, PreannotationJob, job_id, among, to, values)

    def set(self, job_id: int, **values: Any) -> None:
        self.session.execute(update(PreannotationJob).where(PreannotationJob.id == job_id).values(**values))
