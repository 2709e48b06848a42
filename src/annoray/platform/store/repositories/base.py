"""What every repository shares: reads by id with a 404, the lifecycle's conditional status update, UTC times."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from annoray.platform.errors import NotFound
from annoray.platform.lifecycle import sources
from annoray.platform.store.tables import Base


T = TypeVar("T", bound=Base)


class RowRepository(Generic[T]):
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


def move_status(session: Session, model: Any, row_id: int, among: Sequence[Any], to: Any, values: dict[str, Any],
                column: str = "status") -> bool:
    """Set the status ``column`` to ``to`` (and ``values``) only if the row is still in one of ``among`` and the
    lifecycle allows the move from there; True if it moved."""
    allowed = sources(to, among)
    if not allowed:
        return False
    status = getattr(model, column)
    done = session.execute(update(model).where(model.id == row_id, status.in_(allowed)).values({column: to, **values}))
    return done.rowcount == 1  # type: ignore[attr-defined]


def aware(when: datetime) -> datetime:
    """SQLite returns naive datetimes; the store writes UTC."""
    return when if when.tzinfo else when.replace(tzinfo=UTC)
