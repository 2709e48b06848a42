"""Label Studio in front: its projects linked to annoray's, its tasks, users and annotations mirrored as annoray's.

Label Studio names everything by its own ids; each maps to one annoray row found again by that id (a link by the
project uid Label Studio's ML backend calls send, a task by its task id, a completion by its annotation id, a user
by its user id on that Label Studio server). So a setup called before every prediction, an event delivered twice or
a sync run again changes nothing the second time. Annotations become completions by the rules completions made through
the API follow: checked against the project's config, counted once for active learning when they first can train.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from lxml import etree
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from annoray.platform.errors import Conflict, ErrorDetail, Errors, Forbidden, InvalidInput
from annoray.platform.labeling.config import LabelingConfig, hardened_parser
from annoray.platform.labeling.projects import create_project, update_labeling_config
from annoray.platform.labeling.tasks import check_task_data, validate_result
from annoray.platform.settings import Settings
from annoray.platform.store.repositories import ProjectRepository, UserRepository
from annoray.platform.store.tables import (
    MAX_ID, Completion, CompletionStatus, LabelStudioLink, LabelStudioUser, Member, Prediction, Project, ReviewStatus, Role, Task, User,
)

MANAGERS = frozenset({Role.OWNER, Role.MANAGER})  # who may link a project (labeling sits below access: named here)


def is_id(value: Any) -> bool:
    """Whether a value is an id of Label Studio's that annoray can keep (a positive int32)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


def instance_of(url: str) -> str:
    """A Label Studio server's key: its scheme, host and port, lowercased ("http://localhost:8080")."""
    parts = urlsplit(url.strip() or "http://unknown")
    return f"{parts.scheme or 'http'}://{parts.netloc.lower()}"


def uid_of(ls_project_id: int, created_at: datetime) -> str:
    """The uid Label Studio's ML backend calls name a project by: ``<id>.<creation time, epoch seconds>``."""
    return f"{ls_project_id}.{int(created_at.timestamp())}"


def same_labels(a: str, b: str) -> bool:
    """Whether two labeling configs ask for the same thing: equal but for whitespace between tags and annoray's own
    ``model`` attributes (a deploy writes them into annoray's copy; Label Studio's never has them)."""
    def canonical(xml: str) -> bytes | None:
        try:
            root = etree.fromstring(xml.encode(), hardened_parser())
        except etree.XMLSyntaxError:
            return None
        for el in root.iter():
            el.attrib.pop("model", None)
            if el.text is not None and not el.text.strip():
                el.text = None
            if el.tail is not None and not el.tail.strip():
                el.tail = None
        return etree.tostring(root, method="c14n")
    left = canonical(a)
    return left is not None and left == canonical(b)


def link_project(session: Session, settings: Settings, user: User, *, uid: str, instance: str, label_config: str,
                 title: str | None = None) -> tuple[LabelStudioLink, Project]:
    """The annoray project a Label Studio project is linked to, linked now when it is not yet.

    A new link reuses a project the user owns or manages whose config asks for the same labels and that no other Label
    Studio project is linked to, else creates one from the config (refused with every error when annoray cannot use
    it). A linked project whose config was changed in Label Studio takes the new config. The caller commits.
    """
    link = session.scalar(select(LabelStudioLink).where(LabelStudioLink.uid == uid))
    projects = ProjectRepository(session)
    if link is not None:
        project = projects.get(link.project_id)
        member = projects.member(project.id, user.id)
        if member is None or member.role not in MANAGERS:
            raise Forbidden(Errors.E1003.format(uid=uid, project_id=project.id))
        if label_config and not same_labels(project.labeling_config, label_config):
            update_labeling_config(session, settings, project, label_config, reason="changed in Label Studio")
        return link, project
    if not label_config:
        raise InvalidInput(Errors.E1001, [ErrorDetail(Errors.E1001, field="schema")])
    made = session.scalar(select(func.count()).select_from(LabelStudioLink).where(LabelStudioLink.created_by == user.id))
    if made >= settings.label_studio.max_links_per_user:
        raise Conflict(Errors.E1014.format(username=user.username, count=made))
    linked = set(session.scalars(select(LabelStudioLink.project_id)))
    project = next((p for p in projects.for_user(user.id) if p.id not in linked
                    and projects.member(p.id, user.id).role in MANAGERS  # type: ignore[union-attr]
                    and same_labels(p.labeling_config, label_config)), None)
    ls_project_id = int(uid.split(".")[0])
    if project is None:
        project, _ = create_project(session, settings, user, name=(title or f"Label Studio project {ls_project_id}")[:200],
                                    labeling_config=label_config)
    link = LabelStudioLink(uid=uid, instance=instance, ls_project_id=ls_project_id, project_id=project.id,
                           created_by=user.id, webhook_ready=False)
    session.add(link)
    session.flush()
    return link, project


def linked(session: Session, uid: str, user: User) -> tuple[LabelStudioLink, Project]:
    """The link of a Label Studio project uid, and its project, for one of its owners or managers; refused when Label
    Studio never called setup for it (E1002), or for anyone else (E1003)."""
    link = session.scalar(select(LabelStudioLink).where(LabelStudioLink.uid == uid))
    if link is None:
        raise Conflict(Errors.E1002.format(uid=uid))
    project = ProjectRepository(session).get(link.project_id)
    member = ProjectRepository(session).member(project.id, user.id)
    if member is None or member.role not in MANAGERS:
        raise Forbidden(Errors.E1003.format(uid=uid, project_id=project.id))
    return link, project


def mirror_tasks(session: Session, project: Project, config: LabelingConfig, ls_tasks: Iterable[dict[str, Any]]) -> dict[int, Task]:
    """The annoray task of each Label Studio task (``id``, ``data``), made on first sight; a task whose data changed in
    Label Studio takes the new data. Refused whole, nothing written, when a task's data lacks what the config reads
    or holds a text over the limit."""
    items = list(ls_tasks)
    errors = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not is_id(item.get("id")) or not isinstance(item.get("data"), dict):
            errors.append(ErrorDetail(Errors.E1004.format(index=i), index=i))
            continue
        for error in check_task_data(config, item["data"], f"tasks[{i}].data"):
            error.index = i
            errors.append(error)
    if errors:
        raise InvalidInput(Errors.E217.format(invalid=len({e.index for e in errors}), count=len(items)), errors[:100])
    ids = [t["id"] for t in items]
    known = {t.ls_task_id: t for t in session.scalars(select(Task).where(Task.project_id == project.id, Task.ls_task_id.in_(ids)))}
    for item in items:
        task = known.get(item["id"])
        if task is None:
            task = Task(project_id=project.id, data=item["data"], tags=[], ls_task_id=item["id"])
            session.add(task)
            known[item["id"]] = task
        elif task.data != item["data"]:
            task.data = item["data"]
    session.flush()
    return known


def member_for(session: Session, project: Project, instance: str, ls_user_id: int, *, name: str | None = None,
               role: Role = Role.ANNOTATOR, priority: int = 0) -> User:
    """The annoray user a Label Studio user annotates as, a member of the project: made on first sight (named after
    their email when known, else ``ls-<id>@<server>``) with ``role`` and ``priority``; a known member keeps theirs."""
    mapped = session.scalar(select(LabelStudioUser).where(LabelStudioUser.instance == instance, LabelStudioUser.ls_user_id == ls_user_id))
    users = UserRepository(session)
    if mapped is not None:
        user = session.get(User, mapped.user_id)
    else:
        username = (name or "").strip()[:150]
        if not username or users.by_username(username) is not None:
            username = f"ls-{ls_user_id}@{urlsplit(instance).netloc}"[:150]
        user = users.by_username(username) or users.add(username, secrets.token_urlsafe(32))  # a token nobody holds
        session.add(LabelStudioUser(instance=instance, ls_user_id=ls_user_id, user_id=user.id))
    assert user is not None
    projects = ProjectRepository(session)
    if projects.member(project.id, user.id) is None:
        projects.add_member(Member(project_id=project.id, user_id=user.id, role=role, priority=priority))
    return user


def apply_annotation(session: Session, project: Project, config: LabelingConfig, task: Task, author: User,
                     annotation: dict[str, Any]) -> Completion | None:
    """The completion mirroring a Label Studio annotation (``id``, ``result``, ``was_cancelled``): made on first sight,
    its result replaced when the annotation changed, removed when Label Studio says the task was skipped. A result
    annoray cannot read is refused with every error; nothing changes then."""
    ls_id = annotation.get("id")
    if not is_id(ls_id):
        raise InvalidInput(Errors.E1005, [ErrorDetail(Errors.E1005, field="annotation.id")])
    existing = session.scalar(select(Completion).where(Completion.project_id == project.id, Completion.ls_annotation_id == ls_id))
    if annotation.get("was_cancelled"):  # skipped: no completion
        if existing is not None:
            session.delete(existing)
            session.flush()
        return None
    result = annotation.get("result") or []
    errors = validate_result(config, task.data, result, where="annotation.result")
    if errors:
        raise InvalidInput("invalid annotation", errors)
    now = datetime.now(UTC)
    if existing is not None:
        if existing.result != result or existing.task_id != task.id:
            existing.result, existing.task_id, existing.updated_at = result, task.id, now
            session.flush()
        return existing
    completion = Completion(project_id=project.id, task_id=task.id, author_id=author.id, result=result,
                            status=CompletionStatus.SUBMITTED, created_at=now, updated_at=now, submitted_at=now,
                            ls_annotation_id=ls_id)
    session.add(completion)
    session.flush()
    return completion


def remove_annotations(session: Session, project: Project, ls_annotation_ids: Iterable[int]) -> int:
    """Remove the completions of deleted Label Studio annotations; ids already removed (or never seen) are skipped."""
    ids = [i for i in ls_annotation_ids if is_id(i)]
    if not ids:
        return 0
    return session.execute(delete(Completion).where(Completion.project_id == project.id, Completion.ls_annotation_id.in_(ids))
                           .execution_options(synchronize_session=False)).rowcount


def remove_annotations_of_task(session: Session, project: Project, task: Task, *, keep: list[int]) -> int:
    """Remove a task's completions of Label Studio annotations that are no longer there (all but ``keep``)."""
    query = delete(Completion).where(Completion.project_id == project.id, Completion.task_id == task.id,
                                     Completion.ls_annotation_id.is_not(None))
    if keep:
        query = query.where(Completion.ls_annotation_id.not_in(keep))
    return session.execute(query.execution_options(synchronize_session=False)).rowcount


def newest_predictions(session: Session, project: Project, *, after: int, limit: int) -> tuple[list[dict[str, Any]], int | None]:
    """The newest prediction of each of the next ``limit`` Label Studio tasks of the project after Label Studio task
    id ``after``, in Label Studio's shape (``task``: its id, ``result``, ``score``, ``model_version``), and the id
    to go on after (None at the end)."""
    tasks = list(session.execute(select(Task.id, Task.ls_task_id).where(
        Task.project_id == project.id, Task.ls_task_id > after).order_by(Task.ls_task_id).limit(limit)))
    newest: dict[int, Prediction] = {}
    for p in session.scalars(select(Prediction).where(Prediction.project_id == project.id,
                                                      Prediction.task_id.in_([t.id for t in tasks])).order_by(Prediction.id)):
        newest[p.task_id] = p
    items = [{"task": ls_id, "result": p.result, "score": p.score, "model_version": p.model_version}
             for task_id, ls_id in tasks if (p := newest.get(task_id)) is not None]
    return items, tasks[-1].ls_task_id if len(tasks) == limit else None


def apply_review(session: Session, project: Project, reviewer: User, ls_annotation_id: int, accepted: bool) -> Completion | None:
    """Label Studio's review of an annotation (accepted or rejected) on its completion; None when it has none."""
    completion = session.scalar(select(Completion).where(Completion.project_id == project.id,
                                                         Completion.ls_annotation_id == ls_annotation_id))
    if completion is None:
        return None
    completion.review_status = ReviewStatus.ACCEPTED if accepted else ReviewStatus.REJECTED
    completion.reviewer_id, completion.reviewed_at = reviewer.id, datetime.now(UTC)
    session.flush()
    return completion
