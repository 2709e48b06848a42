"""Label Studio in front: linking its projects, mirroring its tasks, annotations and reviews, keeping what annoray
predicted for it. Each call is one short transaction; one that makes tasks eligible answers whether active learning
is now due."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from annoray.platform.errors import Errors, InvalidInput
from annoray.platform.labeling import label_studio as ls
from annoray.platform.labeling.predictions import keep_predictions
from annoray.platform.labeling.projects import project_config
from annoray.platform.models.active_learning import count_eligible
from annoray.platform.services import Writes
from annoray.platform.settings import Settings
from annoray.platform.store.repositories import ServerRepository
from annoray.platform.store.tables import LabelStudioLink, PreannotationServer, Project, Role, ServerStatus, User

ANNOTATION_EVENTS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED")
DELETE_EVENTS = ("ANNOTATIONS_DELETED", "ANNOTATION_DELETED")
REVIEW_EVENTS = ("REVIEW_CREATED", "REVIEW_UPDATED")


def server_of(session: Session, project_id: int) -> PreannotationServer | None:
    """The project's server: a running one first, else the newest on its way."""
    servers = ServerRepository(session).with_status(ServerStatus.RUNNING, ServerStatus.DEPLOYING, ServerStatus.QUEUED,
                                                    project_id=project_id)
    return min(servers, key=lambda s: (s.status is not ServerStatus.RUNNING, -s.id), default=None)


def link(writes: Writes, settings: Settings, user: User, *, uid: str, instance: str, label_config: str,
         title: str) -> tuple[LabelStudioLink, Project, PreannotationServer | None]:
    """Link a Label Studio project (``ls.link_project``): the link, its project and the project's server, if any."""
    with writes.begin() as session:
        link_, project = ls.link_project(session, settings, user, uid=uid, instance=instance, label_config=label_config,
                                         title=title)
        return link_, project, server_of(session, project.id)


def linked(reads: Writes, uid: str, user: User) -> Project:
    """The project a Label Studio project is linked to, for one of its owners or managers (a read)."""
    with reads() as session:
        return ls.linked(session, uid, user)[1]


def webhook_secured(writes: Writes, link_id: int) -> None:
    """The link's webhook in Label Studio now carries the backend's credentials."""
    with writes.begin() as session:
        session.get(LabelStudioLink, link_id).webhook_ready = True  # type: ignore[union-attr]


def keep(writes: Writes, project_id: int, task_ids: list[int], results: list[dict[str, Any]], version: str) -> None:
    """Keep the predictions annoray made for Label Studio, once per task and model version, as a job would."""
    with writes.begin() as session:
        keep_predictions(session, project_id, [{"task_id": t, **r} for t, r in zip(task_ids, results, strict=True)], version)


def _as_list(value: Any) -> list[dict[str, Any]]:
    return [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, dict)]


def _user_id(value: Any) -> int:
    user_id = value.get("id") if isinstance(value, dict) else value
    if not ls.is_id(user_id):
        raise InvalidInput(Errors.E1012)
    return user_id


@dataclass(frozen=True)
class Event:
    """A Label Studio event about annotations or reviews (webhook payload fields)."""

    action: str
    task: Any = None
    annotation: Any = None
    annotations: Any = None
    review: Any = None


def apply_event(writes: Writes, settings: Settings, user: User, uid: str, event: Event) -> tuple[dict[str, Any], bool]:
    """Annotations created or updated become completions (once per Label Studio annotation), deleted ones are removed,
    reviews accept or reject them: the answer for Label Studio, and whether active learning is due."""
    priority = settings.label_studio.annotator_priority
    with writes.begin() as session:
        link_, project = ls.linked(session, uid, user)
        config = project_config(project)
        answer: dict[str, Any] = {"action": event.action, "project_id": project.id}
        if event.action in ANNOTATION_EVENTS:
            mirrored = ls.mirror_tasks(session, project, config, _as_list(event.task))
            completions = []
            for annotation in _as_list(event.annotation):
                task = mirrored.get(annotation.get("task"))  # type: ignore[arg-type]
                if task is None:
                    raise InvalidInput(Errors.E1004.format(index=annotation.get("task")))
                author = ls.member_for(session, project, link_.instance, _user_id(annotation.get("completed_by")), priority=priority)
                completion = ls.apply_annotation(session, project, config, task, author, annotation)
                completions.append(completion.id if completion else None)
            answer["completions"] = completions
            return answer, count_eligible(session, project, [t.id for t in mirrored.values()])
        if event.action in DELETE_EVENTS:
            ids = [a.get("id") for a in _as_list(event.annotations or event.annotation)]
            answer["removed"] = ls.remove_annotations(session, project, ids)
            return answer, False
        review = event.review or {}
        annotation = review.get("annotation")
        annotation_id = annotation.get("id") if isinstance(annotation, dict) else annotation
        if not ls.is_id(annotation_id) or not isinstance(review.get("accepted"), bool):
            raise InvalidInput(Errors.E1005)
        reviewer = ls.member_for(session, project, link_.instance, _user_id(review.get("created_by")), role=Role.REVIEWER,
                                 priority=priority)
        completion = ls.apply_review(session, project, reviewer, annotation_id, review["accepted"])
        answer["completion"] = completion.id if completion else None
        return answer, completion is not None and count_eligible(session, project, [completion.task_id])


def import_page(writes: Writes, settings: Settings, user: User, *, uid: str, instance: str, label_config: str,
                title: str | None, users: dict[str, str], tasks: list[dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    """Mirror a page of Label Studio tasks (``id``, ``data``, ``annotations``): the project linked as setup links it,
    each task and annotation made once and updated to what Label Studio has, annotations no longer there removed."""
    with writes.begin() as session:
        link_, project = ls.link_project(session, settings, user, uid=uid, instance=instance, label_config=label_config,
                                         title=title)
        ls.linked(session, uid, user)  # an owner or manager of the project
        config = project_config(project)
        mirrored = ls.mirror_tasks(session, project, config, [{"id": t["id"], "data": t["data"]} for t in tasks])
        kept, removed = 0, 0
        for item in tasks:
            task, live = mirrored[item["id"]], []
            for annotation in item["annotations"]:
                author_id = _user_id(annotation.get("completed_by"))
                author = ls.member_for(session, project, link_.instance, author_id, name=users.get(str(author_id)),
                                       priority=settings.label_studio.annotator_priority)
                if ls.apply_annotation(session, project, config, task, author, annotation) is not None:
                    live.append(annotation["id"])
                    kept += 1
            removed += ls.remove_annotations_of_task(session, project, task, keep=live)
        due = count_eligible(session, project, [t.id for t in mirrored.values()])
        return {"project_id": project.id, "tasks": len(mirrored), "completions": kept, "removed": removed}, due


def prediction_inputs(writes: Writes, user: User, uid: str, ls_tasks: list[dict[str, Any]],
                      deploy: Callable[[Session, Project], PreannotationServer]) -> tuple[Project, list[int], PreannotationServer]:
    """What a prediction for Label Studio needs, in one transaction: the project (not a Visual NER one), its tasks
    mirrored, and its server (``deploy`` queues one from its config when it has none)."""
    with writes.begin() as session:
        _, project = ls.linked(session, uid, user)
        config = project_config(project)
        if config.visual_ner is not None:
            raise InvalidInput(Errors.E1010.format(project_id=project.id))
        tasks = ls.mirror_tasks(session, project, config, ls_tasks)
        server = server_of(session, project.id) or deploy(session, project)
        return project, [tasks[t["id"]].id for t in ls_tasks], server


