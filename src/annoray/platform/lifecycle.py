"""The lifecycle of trainings, pre-annotation jobs and pre-annotation servers: their statuses, the named groups
of statuses, and the moves allowed between them. The store's one conditional status update enforces the moves:
a row moves only from a status that may move to the new one, so a finished job stays finished."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping


class JobStatus(str, enum.Enum):
    """A training or a pre-annotation job."""

    QUEUED = "queued"
    WAITING = "waiting"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ServerStatus(str, enum.Enum):
    QUEUED = "queued"
    DEPLOYING = "deploying"
    RUNNING = "running"
    FAILED = "failed"
    DELETING = "deleting"


class OcrStatus(str, enum.Enum):
    """A document page's OCR."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


PENDING = frozenset({JobStatus.QUEUED, JobStatus.WAITING})
"""Not started yet: the scheduler decides them on every pass."""
ENDED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
"""Final: nothing moves a job out of these."""
UNDER_WAY = PENDING | {JobStatus.RUNNING}
"""Not ended: a project with a training under way gets no second one of that kind, nor an active-learning one."""
HOLDING = frozenset({ServerStatus.DEPLOYING, ServerStatus.RUNNING, ServerStatus.DELETING})
"""A server in these holds its node's resources and its licence seats."""

JOB_MOVES: Mapping[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.WAITING, JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.WAITING: frozenset({JobStatus.WAITING, JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLED}),
    # back to queued: its run was lost (node, runner, a worker group that could not start) within the retry budget
    JobStatus.RUNNING: frozenset({JobStatus.QUEUED, JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}
"""Where a job may move from each status (a move to the same status updates its reason)."""

SERVER_MOVES: Mapping[ServerStatus, frozenset[ServerStatus]] = {
    ServerStatus.QUEUED: frozenset({ServerStatus.QUEUED, ServerStatus.DEPLOYING, ServerStatus.FAILED}),
    # back to queued: the scheduler restarted and its Serve app did not survive
    ServerStatus.DEPLOYING: frozenset({ServerStatus.RUNNING, ServerStatus.FAILED, ServerStatus.QUEUED, ServerStatus.DELETING}),
    ServerStatus.RUNNING: frozenset({ServerStatus.RUNNING, ServerStatus.FAILED, ServerStatus.QUEUED, ServerStatus.DELETING}),
    ServerStatus.FAILED: frozenset({ServerStatus.DELETING}),
    ServerStatus.DELETING: frozenset(),
}
"""Where a server may move from each status (running to running: redeployed with other models)."""


OCR_MOVES: Mapping[OcrStatus, frozenset[OcrStatus]] = {
    OcrStatus.QUEUED: frozenset({OcrStatus.RUNNING, OcrStatus.DONE}),
    # back to queued: its task died with the scheduler, or failed within its retry budget
    OcrStatus.RUNNING: frozenset({OcrStatus.QUEUED, OcrStatus.DONE, OcrStatus.FAILED}),
    OcrStatus.DONE: frozenset({OcrStatus.DONE}),
    OcrStatus.FAILED: frozenset({OcrStatus.QUEUED, OcrStatus.DONE}),  # queued again on request
}
"""Where a page's OCR may move from each status. Done from anywhere: words brought from another OCR replace the
page's (an OCR task still running on it then finds the page moved on and keeps its words to itself)."""


def moves_of(status: enum.Enum) -> Mapping:
    if isinstance(status, JobStatus):
        return JOB_MOVES
    return OCR_MOVES if isinstance(status, OcrStatus) else SERVER_MOVES


def sources(to: JobStatus | ServerStatus | OcrStatus, among: Iterable[JobStatus | ServerStatus | OcrStatus] | None = None) -> list:
    """The statuses a row may move to ``to`` from, narrowed to ``among`` when given."""
    moves = moves_of(to)
    allowed = [status for status, targets in moves.items() if to in targets]
    return allowed if among is None else [status for status in allowed if status in set(among)]
