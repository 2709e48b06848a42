"""Projects, members, tasks, completions, page words and rules: each write a short transaction of its own.

A service that makes tasks eligible for training answers whether active learning is now due, so the adapter can wake
the scheduler once the transaction is committed. Those that add tasks and completions take the project as the caller
read it (they change no column of it: its counters move by UPDATE statements inside the transaction); those that
change the project read it again inside their transaction."""

from __future__ import annotations

from typing import Any

from annoray.platform.labeling import pages, projects, rules, tasks
from annoray.platform.labeling.config import LabelingConfig
from annoray.platform.labeling.pages import is_page_of
from annoray.platform.labeling.projects import project_config
from annoray.platform.models import active_learning
from annoray.platform.models.deploy import retarget_servers
from annoray.platform.services import Writes
from annoray.platform.settings import Settings
from annoray.platform.store.repositories import DocumentRepository, ProjectRepository, TrainingConfigRepository
from annoray.platform.store.tables import Completion, Member, Page, Project, ReviewStatus, Role, Rule, User


def create_project(writes: Writes, settings: Settings, owner: User, *, name: str, labeling_config: str, language: str,
                   model_type: str) -> tuple[Project, LabelingConfig]:
    with writes.begin() as session:
        return projects.create_project(session, settings, owner, name=name, labeling_config=labeling_config,
                                       language=language, model_type=model_type)


def update_labeling_config(writes: Writes, settings: Settings, project_id: int, xml: str) -> tuple[Project, LabelingConfig, bool]:
    """A new version of the project's config; whether its servers were retargeted (the scheduler deploys them)."""
    with writes.begin() as session:
        project = ProjectRepository(session).get(project_id)
        config = projects.update_labeling_config(session, settings, project, xml)
        retargeted = bool(retarget_servers(session, project, config)) if config.models else False
        return project, config, retargeted


def configure_active_learning(writes: Writes, project_id: int, **settings: Any) -> Project:
    with writes.begin() as session:
        return active_learning.configure(session, ProjectRepository(session).get(project_id), **settings)


def add_member(writes: Writes, project_id: int, *, username: str, role: Role, priority: int) -> Member:
    with writes.begin() as session:
        return projects.add_member(session, ProjectRepository(session).get(project_id), username=username, role=role,
                                   priority=priority)


def _counted(session: Any, project: Project, task_ids: list[int]) -> bool:
    return active_learning.count_eligible(session, project, task_ids)


def import_tasks(writes: Writes, project: Project, importer: User, items: Any) -> tuple[list[int], bool]:
    """Import tasks all or nothing: their ids, and whether active learning is due."""
    with writes.begin() as session:
        ids = tasks.import_tasks(session, project, project_config(project), importer, items, is_page=is_page_of(session, project.id))
        return ids, _counted(session, project, ids)


def submit_completion(writes: Writes, project: Project, author: User, task_id: int, *, result: Any,
                      status: Any) -> tuple[Completion, bool]:
    with writes.begin() as session:
        completion = tasks.create_completion(session, project, project_config(project), author, task_id, result=result,
                                             status=status)
        return completion, _counted(session, project, [completion.task_id])


def edit_completion(writes: Writes, project: Project, author: User, completion_id: int, *, result: Any,
                    status: Any) -> tuple[Completion, bool]:
    with writes.begin() as session:
        completion = tasks.edit_completion(session, project, project_config(project), author, completion_id, result=result,
                                           status=status)
        return completion, _counted(session, project, [completion.task_id])


def review_completion(writes: Writes, project: Project, reviewer: User, completion_id: int,
                      status: ReviewStatus) -> tuple[Completion, bool]:
    with writes.begin() as session:
        completion = tasks.review_completion(session, project, reviewer, completion_id, status)
        return completion, _counted(session, project, [completion.task_id])


def completion_from_prediction(writes: Writes, project: Project, author: User, task_id: int, prediction_id: int) -> Completion:
    with writes.begin() as session:
        return tasks.completion_from_prediction(session, project, project_config(project), author, task_id, prediction_id)


def replace_page_words(writes: Writes, document_id: int, page_number: int, words: list[Any]) -> Page:
    with writes.begin() as session:
        page = DocumentRepository(session).page(document_id, page_number)
        pages.replace_words(session, page, words)
        session.flush()
        session.refresh(page)
        return page


def create_rule(writes: Writes, user: User, **rule: Any) -> Rule:
    with writes.begin() as session:
        return rules.create_rule(session, user=user, **rule)


def delete_training_config(writes: Writes, project_id: int, config_id: int) -> None:
    with writes.begin() as session:
        session.delete(TrainingConfigRepository(session).of_project(project_id, config_id))
