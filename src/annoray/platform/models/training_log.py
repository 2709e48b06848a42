"""A training log: text lines for people, and the JSON twin built from the same records."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from annoray.platform.store.tables import TrainingJob, TrainingLogLine

REPEATED = {"epoch": "epochs", "warning": "warnings", "attempt": "attempts", "preempted": "preemptions",
            "preempting": "preempting"}


def log_text(lines: Iterable[TrainingLogLine]) -> str:
    return "".join(f"{line.at.isoformat(timespec='seconds')} {line.text}\n" for line in lines)


def log_document(job: TrainingJob, lines: Iterable[TrainingLogLine]) -> dict[str, Any]:
    """The JSON log: the job, then one key per event (``epochs`` and ``warnings`` as lists)."""
    doc: dict[str, Any] = {
        "job": {
            "id": job.id, "project_id": job.project_id, "kind": job.kind, "engine": job.engine, "source": job.source,
            "status": job.status.value, "error": job.error, "model": job.model,
        },
        "epochs": [], "warnings": [], "attempts": [], "preemptions": [], "preempting": [],
    }
    for line in lines:
        entry = {"at": line.at.isoformat(), **line.data}
        if line.event in REPEATED:
            doc[REPEATED[line.event]].append(entry)
        else:
            doc[line.event] = entry
    return doc


def reference_text(guess: dict[str, Any]) -> str:
    """The scores of the guess that needs no model (`metrics.reference`), in one line."""
    scores = f"micro f1 {guess['micro']['f1']:.4f}, macro f1 {guess['macro']['f1']:.4f}"
    return f"a guess with no model ({guess['name']}) scores {scores}" + (
        f", accuracy {guess['accuracy']:.4f}" if "accuracy" in guess else "")
