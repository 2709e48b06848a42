"""Which completion of each task trains a model (the seed's selection rules, exactly).

Per task: a completion accepted by a reviewer wins and all others are ignored; rejected
completions are never used; drafts never count; otherwise the submitted completion of the
member with the highest priority wins, ties going to the most recent. With
``reviewed_only``, only accepted completions are used.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, exists, or_, select

from annoray.platform.store.tables import Completion, CompletionStatus, ReviewStatus, Task


@dataclass(frozen=True)
class Candidate:
    """What selection needs to know of one completion."""

    id: int
    task_id: int
    status: CompletionStatus
    review_status: ReviewStatus | None
    author_priority: int
    updated_at: datetime


def is_eligible(status: CompletionStatus, review_status: ReviewStatus | None) -> bool:
    """Whether a completion may train: submitted (drafts never count) and not rejected by a reviewer."""
    return status is CompletionStatus.SUBMITTED and review_status is not ReviewStatus.REJECTED


def has_eligible_completion() -> ColumnElement[bool]:
    """`is_eligible` as SQL: the task (``Task``) has a completion that may train."""
    return exists(select(Completion.id).where(
        Completion.task_id == Task.id, Completion.status == CompletionStatus.SUBMITTED,
        or_(Completion.review_status.is_(None), Completion.review_status != ReviewStatus.REJECTED)))


def has_no_completion() -> ColumnElement[bool]:
    """The task (``Task``) has no completion at all, not even a draft: what pre-annotation takes by default."""
    return ~exists().where(Completion.task_id == Task.id)


def select_completion(candidates: Iterable[Candidate], *, reviewed_only: bool = False) -> Candidate | None:
    """The completion of one task that trains, or None when the task has none eligible."""
    eligible = [c for c in candidates if is_eligible(c.status, c.review_status)]
    accepted = [c for c in eligible if c.review_status is ReviewStatus.ACCEPTED]
    if accepted:
        return max(accepted, key=lambda c: (c.updated_at, c.id))
    if reviewed_only or not eligible:
        return None
    return max(eligible, key=lambda c: (c.author_priority, c.updated_at, c.id))
