"""Tasks, their import, and the completions annotators write and reviewers judge."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from annoray.platform.errors import Conflict, ErrorDetail, Errors, Forbidden, InvalidInput
from annoray.platform.labeling.config import LabelingConfig, region_labels
from annoray.platform.store.repositories import (
    CompletionRepository,
    PredictionRepository,
    ProjectRepository,
    TaskRepository,
)
from annoray.platform.store.tables import (
    Completion,
    CompletionStatus,
    Prediction,
    Project,
    ReviewStatus,
    User,
)
from annoray.platform.text import first_text_problem

IMPORT_BATCH = 2000
MAX_TASK_TEXT = 1_000_000
"""The longest text a task may hold: spaCy's own ``nlp.max_length``, past which its parser and NER need more than
a gigabyte of memory per document."""


def _now() -> datetime:
    return datetime.now(UTC)


def validate_result(config: LabelingConfig, data: Mapping[str, Any], result: Any, *, where: str = "result") -> list[ErrorDetail]:
    """Every problem of a Label Studio result list against a config and a task's data."""
    if not isinstance(result, list):
        return [ErrorDetail(Errors.E208, field=where)]
    label_sets: dict[str, set[str]] = {}
    for group in (config.ner, config.assertion, config.visual_ner):
        if group:
            for name in group.from_names:
                label_sets.setdefault(name, set()).update(group.labels)
    for g in config.classification_groups:
        label_sets[g.name] = set(g.choices)
    errors = []
    region_ids = {str(item["id"]) for item in result if isinstance(item, dict) and item.get("id") is not None
                  and item.get("type") != "relation"}
    for i, item in enumerate(result):
        field = f"{where}[{i}]"
        if isinstance(item, dict) and item.get("type") == "relation":
            errors += _relation_problems(config, item, i, field, region_ids)
            continue
        if not isinstance(item, dict) or not isinstance(item.get("value"), dict):
            errors.append(ErrorDetail(Errors.E209.format(index=i), field=field))
            continue
        from_name = item.get("from_name")
        if from_name not in config.controls:
            errors.append(ErrorDetail(Errors.E202.format(index=i, from_name=from_name), field=field))
            continue
        value = item["value"]
        allowed = label_sets.get(from_name)
        labels = region_labels(value)
        if allowed is not None:
            if not isinstance(labels, list):
                errors.append(ErrorDetail(Errors.E210.format(index=i), field=field))
                continue
            for label in labels:
                if label not in allowed:
                    errors.append(ErrorDetail(
                        Errors.E203.format(index=i, label=label, tag=config.controls[from_name], name=from_name), field=field
                    ))
        if any(k in value for k in ("x", "y", "width", "height")) and (why := _rectangle_problem(value)) is not None:
            errors.append(ErrorDetail(Errors.E218.format(index=i, why=why), field=field))
        if "start" in value or "end" in value:
            to_name = item.get("to_name") or next(iter(config.objects))
            key = config.objects.get(to_name, ("", to_name))[1]
            text = data.get(key)
            start, end = value.get("start"), value.get("end")
            if not isinstance(text, str) or not isinstance(start, int) or not isinstance(end, int):
                errors.append(ErrorDetail(Errors.E211.format(index=i), field=field))
            elif not 0 <= start < end <= len(text):
                errors.append(ErrorDetail(Errors.E204.format(index=i, start=start, end=end, length=len(text)), field=field))
            elif "text" in value and value["text"] != text[start:end]:
                errors.append(ErrorDetail(
                    Errors.E205.format(index=i, given=value["text"], actual=text[start:end], start=start, end=end), field=field
                ))
    return errors


def _relation_problems(config: LabelingConfig, item: Mapping[str, Any], index: int, field: str,
                       region_ids: set[str]) -> list[ErrorDetail]:
    """What is wrong with a Label Studio relation (``from_id`` and ``to_id``: ids of regions of the same result; its
    ``labels``, if any: the config's relation values)."""
    errors = [ErrorDetail(Errors.E221.format(index=index, region=str(item.get(end))[:40]), field=field)
              for end in ("from_id", "to_id") if str(item.get(end)) not in region_ids]
    labels = item.get("labels") or []
    allowed = config.relation.labels if config.relation else ()
    if not isinstance(labels, list):
        errors.append(ErrorDetail(Errors.E210.format(index=index), field=field))
        labels = []
    errors += [ErrorDetail(Errors.E222.format(index=index, label=str(label)[:60], allowed=", ".join(allowed) or "none"), field=field)
               for label in labels if label not in allowed]
    return errors


def _rectangle_problem(value: Mapping[str, Any]) -> str | None:
    """What is wrong with a Label Studio rectangle (percent of the page, rotation in degrees), or None."""
    box = [value.get(k) for k in ("x", "y", "width", "height")]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in box):
        return "; one of them is missing or not a number"
    x, y, width, height = box
    if x < 0 or y < 0 or width <= 0 or height <= 0 or x + width > 100.01 or y + height > 100.01:
        return f"; got x {x}, y {y}, width {width}, height {height}"
    rotation = value.get("rotation", 0)
    if not isinstance(rotation, int | float) or isinstance(rotation, bool):
        return "; rotation must be a number of degrees"
    return None


def check_task_data(config: LabelingConfig, data: Any, field: str, is_page: Callable[[str], bool] | None = None) -> list[ErrorDetail]:
    """Why a task's data cannot be a task of this config: not an object, a key the config reads missing, a text over
    the limit, an image that is not one of the project's pages (when ``is_page`` is given)."""
    if not isinstance(data, dict):
        return [ErrorDetail(Errors.E212, field=field)]
    keys = dict.fromkeys(key for _, key in config.objects.values())
    errors = [ErrorDetail(Errors.E206.format(key=key), field=f"{field}.{key}") for key in keys if key not in data]
    errors += [
        ErrorDetail(Errors.E220.format(key=key, length=len(data[key]), limit=MAX_TASK_TEXT), field=f"{field}.{key}")
        for key in keys if isinstance(data.get(key), str) and len(data[key]) > MAX_TASK_TEXT
    ]
    if is_page is not None:
        for key in dict.fromkeys(key for tag, key in config.objects.values() if tag == "Image"):
            if key in data and not (isinstance(data[key], str) and is_page(data[key])):
                errors.append(ErrorDetail(Errors.E219.format(url=str(data[key])[:200]), field=f"{field}.{key}"))
    return errors


def import_tasks(session: Session, project: Project, config: LabelingConfig, importer: User, items: Any,
                 is_page: Callable[[str], bool] | None = None) -> list[int]:
    """Import Label Studio tasks (data, annotations, predictions, meta.tags): all or nothing.

    Every item is checked before anything is written; the errors list names each bad item. ``is_page`` says whether
    an image value is one of the project's document pages: tasks of an image config must point at one.
    """
    if not isinstance(items, list):
        items = [items] if isinstance(items, dict) else None
    if not items:
        raise InvalidInput(Errors.E207, [ErrorDetail(Errors.E207, field="body")])
    members = {m.user.username: m.user_id for m in ProjectRepository(session).members(project.id)}
    errors: list[ErrorDetail] = []
    rows: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(ErrorDetail(Errors.E201.format(index=i, msg="each task must be an object with 'data'"), index=i))
            continue
        data = item.get("data")
        item_errors = check_task_data(config, data, f"[{i}].data", is_page)
        if (bad := first_text_problem(item, f"[{i}]")) is not None:
            item_errors.append(ErrorDetail(Errors.E513.format(where=bad[0][:200], what=bad[1]), field=bad[0][:200]))
        tags = (item.get("meta") or {}).get("tags", []) if isinstance(item.get("meta") or {}, dict) else None
        if not isinstance(tags, list) or not all(isinstance(t, str) and 0 < len(t) <= 100 for t in tags):
            item_errors.append(ErrorDetail(Errors.E213, field=f"[{i}].meta.tags"))
        annotations, predictions = item.get("annotations") or [], item.get("predictions") or []
        if not item_errors:
            for kind, regions in (("annotations", annotations), ("predictions", predictions)):
                if not isinstance(regions, list):
                    item_errors.append(ErrorDetail(Errors.E214.format(kind=kind), field=f"[{i}].{kind}"))
                    continue
                for j, region in enumerate(regions):
                    if not isinstance(region, dict):
                        item_errors.append(ErrorDetail(Errors.E215.format(kind=kind, index=j), field=f"[{i}].{kind}[{j}]"))
                        continue
                    item_errors += validate_result(config, data, region.get("result"), where=f"[{i}].{kind}[{j}].result")
                    status = region.get("status", "submitted")
                    if kind == "annotations" and status not in ("draft", "submitted"):
                        item_errors.append(ErrorDetail(Errors.E216, field=f"[{i}].{kind}[{j}].status"))
        for e in item_errors:
            e.index = i
        errors += item_errors
        rows.append({"data": data, "tags": tags or [], "annotations": annotations, "predictions": predictions})
    if errors:
        raise InvalidInput(Errors.E217.format(invalid=len({e.index for e in errors}), count=len(items)), errors[:1000])

    task_ids: list[int] = []
    tasks = TaskRepository(session)
    for start in range(0, len(rows), IMPORT_BATCH):
        batch = rows[start:start + IMPORT_BATCH]
        ids = tasks.add_many(project.id, batch)
        task_ids += ids
        now = _now()
        completions, predictions_rows = [], []
        for tid, row in zip(ids, batch):
            for a in row["annotations"]:
                author = members.get(a.get("completed_by")) if isinstance(a.get("completed_by"), str) else None
                status = CompletionStatus(a.get("status", "submitted"))
                completions.append({
                    "project_id": project.id, "task_id": tid, "author_id": author or importer.id, "result": a["result"],
                    "status": status, "created_at": now, "updated_at": now,
                    "submitted_at": now if status is CompletionStatus.SUBMITTED else None,
                })
            for p in row["predictions"]:
                predictions_rows.append({
                    "project_id": project.id, "task_id": tid, "result": p["result"], "score": p.get("score"),
                    "model_version": str(p.get("model_version", "imported")), "created_at": now,
                })
        CompletionRepository(session).add_many(completions)
        PredictionRepository(session).add_many(predictions_rows)
    return task_ids


def create_completion(
    session: Session, project: Project, config: LabelingConfig, author: User, task_id: int, *,
    result: Any, status: CompletionStatus, prediction_id: int | None = None,
) -> Completion:
    task = TaskRepository(session).get(project.id, task_id)
    errors = validate_result(config, task.data, result)
    if errors:
        raise InvalidInput("invalid completion", errors)
    now = _now()
    return CompletionRepository(session).add(Completion(
        project_id=project.id, task_id=task.id, author_id=author.id, result=result, status=status,
        prediction_id=prediction_id, created_at=now, updated_at=now,
        submitted_at=now if status is CompletionStatus.SUBMITTED else None,
    ))


def completion_from_prediction(session: Session, project: Project, config: LabelingConfig, author: User, task_id: int, prediction_id: int) -> Completion:
    prediction: Prediction = PredictionRepository(session).get(project.id, prediction_id)
    if prediction.task_id != task_id:
        raise InvalidInput(Errors.E506.format(prediction_id=prediction_id, task_id=task_id))
    return create_completion(
        session, project, config, author, task_id, result=list(prediction.result),
        status=CompletionStatus.DRAFT, prediction_id=prediction.id,
    )


def edit_completion(
    session: Session, project: Project, config: LabelingConfig, editor: User, completion_id: int, *,
    result: Any | None, status: CompletionStatus | None,
) -> Completion:
    repo = CompletionRepository(session)
    completion = repo.get(project.id, completion_id)
    if completion.author_id != editor.id:
        raise Forbidden(Errors.E503.format(completion_id=completion_id))
    if completion.review_status is not None:
        raise Conflict(Errors.E504.format(completion_id=completion_id))
    if result is not None:
        task = TaskRepository(session).get(project.id, completion.task_id)
        errors = validate_result(config, task.data, result)
        if errors:
            raise InvalidInput("invalid completion", errors)
        completion.result = result
    now = _now()
    if status is CompletionStatus.SUBMITTED and completion.status is CompletionStatus.DRAFT:
        completion.submitted_at = now
    if status is not None:
        completion.status = status
    completion.updated_at = now
    session.flush()
    return completion


def review_completion(session: Session, project: Project, reviewer: User, completion_id: int, status: ReviewStatus) -> Completion:
    completion = CompletionRepository(session).get(project.id, completion_id)
    if completion.status is CompletionStatus.DRAFT:
        raise Conflict(Errors.E502)
    completion.review_status = status
    completion.reviewer_id = reviewer.id
    completion.reviewed_at = _now()
    session.flush()
    return completion
