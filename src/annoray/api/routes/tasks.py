from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, status
from sqlalchemy.orm import Session

from annoray.api.deps import Id, MembershipDep, SchedulerDep, SessionDep, SettingsDep, TaskTagsDep
from annoray.api.schemas import (
    CompletionCreate,
    CompletionEdit,
    CompletionOut,
    ImportOut,
    Page,
    PredictionOut,
    ReviewIn,
    TaskDetail,
    TaskOut,
)
from annoray.platform.access.roles import ANY_MEMBER, OWNER_MANAGER, REVIEWERS, require_role
from annoray.platform.labeling.pages import is_page_of
from annoray.platform.labeling.projects import project_config
from annoray.platform.labeling.tasks import (
    completion_from_prediction,
    create_completion,
    edit_completion,
    import_tasks,
    review_completion,
)
from annoray.platform.models.active_learning import count_eligible
from annoray.platform.store.repositories import CompletionRepository, PredictionRepository, TaskRepository
from annoray.platform.store.tables import Project
from annoray.scheduler.client import SchedulerClient

router = APIRouter(tags=["tasks"])


@router.post("/api/projects/{pid}/tasks/import", response_model=ImportOut, status_code=status.HTTP_201_CREATED)
def import_(
    m: MembershipDep,
    session: SessionDep,
    scheduler: SchedulerDep,
    tasks: Annotated[Any, Body(description="A Label Studio JSON list of tasks: data, annotations, predictions, meta.tags.")],
) -> ImportOut:
    """Import tasks all or nothing: one bad item refuses the whole import and is named in `errors`."""
    require_role(m.member.role, OWNER_MANAGER, "import tasks")
    ids = import_tasks(session, m.project, project_config(m.project), m.user, tasks, is_page=is_page_of(session, m.project.id))
    _commit_counting(session, m.project, ids, scheduler)
    return ImportOut(imported=len(ids), task_ids=ids)


def _commit_counting(session: Session, project: Project, task_ids: list[int], scheduler: SchedulerClient) -> None:
    """Commit with active learning's count of the newly eligible tasks; wake the scheduler when a training is due."""
    due = count_eligible(session, project, task_ids)
    session.commit()
    if due:
        scheduler.wake()


@router.get("/api/projects/{pid}/tasks", response_model=Page[TaskOut])
def list_tasks(
    m: MembershipDep,
    session: SessionDep,
    settings: SettingsDep,
    tags: TaskTagsDep,
    page: Annotated[int, Query(ge=1, le=10**9)] = 1,
    page_size: Annotated[int, Query(ge=1)] = 100,
    order: Annotated[Literal["id", "uncertainty"], Query(
        description="`uncertainty`: the tasks the last pre-annotation was least sure of first.")] = "id",
    completed: Annotated[bool | None, Query(description="Only tasks with (true) or without (false) a completion.")] = None,
) -> Page[TaskOut]:
    require_role(m.member.role, ANY_MEMBER, "list tasks")
    page_size = min(page_size, settings.api.max_page_size)
    tag_list = list(tags) or None
    repo = TaskRepository(session)
    items = repo.page(m.project.id, tags=tag_list, offset=(page - 1) * page_size, limit=page_size,
                      by_uncertainty=order == "uncertainty", completed=completed)
    return Page[TaskOut](
        items=[TaskOut.model_validate(t) for t in items], total=repo.count(m.project.id, tags=tag_list, completed=completed),
        page=page, page_size=page_size,
    )


@router.get("/api/projects/{pid}/tasks/{tid}", response_model=TaskDetail)
def get_task(tid: Id, m: MembershipDep, session: SessionDep) -> TaskDetail:
    task = TaskRepository(session).get(m.project.id, tid)
    completions = CompletionRepository(session).for_task(task.id, m.project.id)
    return TaskDetail(
        id=task.id, data=task.data, tags=task.tags, created_at=task.created_at,
        completions=[CompletionOut.model_validate(c) for c in completions],
    )


@router.post("/api/projects/{pid}/tasks/{tid}/completions", response_model=CompletionOut, status_code=status.HTTP_201_CREATED)
def post_completion(tid: Id, body: CompletionCreate, m: MembershipDep, session: SessionDep, scheduler: SchedulerDep) -> CompletionOut:
    require_role(m.member.role, ANY_MEMBER, "annotate")
    completion = create_completion(
        session, m.project, project_config(m.project), m.user, tid, result=body.result, status=body.status
    )
    _commit_counting(session, m.project, [completion.task_id], scheduler)
    return CompletionOut.model_validate(completion)


@router.patch("/api/projects/{pid}/completions/{cid}", response_model=CompletionOut)
def patch_completion(cid: Id, body: CompletionEdit, m: MembershipDep, session: SessionDep, scheduler: SchedulerDep) -> CompletionOut:
    """Edit your own completion (its result, or submit a draft) until it is reviewed."""
    completion = edit_completion(
        session, m.project, project_config(m.project), m.user, cid, result=body.result, status=body.status
    )
    _commit_counting(session, m.project, [completion.task_id], scheduler)
    return CompletionOut.model_validate(completion)


@router.post("/api/projects/{pid}/completions/{cid}/review", response_model=CompletionOut)
def review(cid: Id, body: ReviewIn, m: MembershipDep, session: SessionDep, scheduler: SchedulerDep) -> CompletionOut:
    require_role(m.member.role, REVIEWERS, "review completions")
    completion = review_completion(session, m.project, m.user, cid, body.status)
    _commit_counting(session, m.project, [completion.task_id], scheduler)
    return CompletionOut.model_validate(completion)


@router.get("/api/projects/{pid}/tasks/{tid}/predictions", response_model=list[PredictionOut])
def list_predictions(tid: Id, m: MembershipDep, session: SessionDep) -> list[PredictionOut]:
    task = TaskRepository(session).get(m.project.id, tid)
    return [PredictionOut.model_validate(p) for p in PredictionRepository(session).for_task(task.id, m.project.id)]


@router.post(
    "/api/projects/{pid}/tasks/{tid}/completions/from-prediction/{prid}",
    response_model=CompletionOut, status_code=status.HTTP_201_CREATED,
)
def from_prediction(tid: Id, prid: Id, m: MembershipDep, session: SessionDep) -> CompletionOut:
    """A new draft completion copied from a prediction, to edit; the prediction itself never changes."""
    completion = completion_from_prediction(session, m.project, project_config(m.project), m.user, tid, prid)
    session.commit()
    return CompletionOut.model_validate(completion)
