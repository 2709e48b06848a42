from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, status
from sqlalchemy.orm import Session
from annoray.api.deps import Id, MembershipDep, SchedulerDep, SessionDep, SettingsDep, TaskTagsDep, WritesDep
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
from annoray.platform.services import labeling
from annoray.platform.store.repositories import CompletionRepository, PredictionRepository, TaskRepository

router = APIRouter(tags=["tasks"])


@router.post("/api/projects/{pid}/tasks/import", response_model=ImportOut, status_code=status.HTTP_201_CREATED)
def import_(
    m: MembershipDep,
    writes: WritesDep,
    scheduler: SchedulerDep,
    tasks: Annotated[Any, Body(description="A Label Studio JSON list of tasks: data, annotations, predictions, meta.tags.")],
) -> ImportOut:
    """Import tasks all or nothing: one bad item refuses the whole import and is named in `errors`."""
    require_role(m.member.role, OWNER_MANAGER, "import tasks")
    ids, due = labeling.import_tasks(writes, m.project, m.user, tasks)
    if due:  # active learning's training is due
        scheduler.wake()
    return ImportOut(imported=len(ids), task_ids=ids)


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
    return task_page(session, m.project.id, tags, page, min(page_size, settings.api.max_page_size), order, completed)


def task_page(session: Session, project_id: int, tags: tuple[str, ...], page: int, page_size: int, order: str,
              completed: bool | None) -> Page[TaskOut]:
    tag_list = list(tags) or None
    repo = TaskRepository(session)
    items = repo.page(project_id, tags=tag_list, offset=(page - 1) * page_size, limit=page_size,
                      by_uncertainty=order == "uncertainty", completed=completed)
    return Page[TaskOut](
        items=[TaskOut.model_validate(t) for t in items], total=repo.count(project_id, tags=tag_list, completed=completed),
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
def post_completion(tid: Id, body: CompletionCreate, m: MembershipDep, writes: WritesDep, scheduler: SchedulerDep) -> CompletionOut:
    require_role(m.member.role, ANY_MEMBER, "annotate")
    completion, due = labeling.submit_completion(writes, m.project, m.user, tid, result=body.result, status=body.status)
    if due:
        scheduler.wake()
    return CompletionOut.model_validate(completion)


@router.patch("/api/projects/{pid}/completions/{cid}", response_model=CompletionOut)
def patch_completion(cid: Id, body: CompletionEdit, m: MembershipDep, writes: WritesDep, scheduler: SchedulerDep) -> CompletionOut:
    """Edit your own completion (its result, or submit a draft) until it is reviewed."""
    completion, due = labeling.edit_completion(writes, m.project, m.user, cid, result=body.result, status=body.status)
    if due:
        scheduler.wake()
    return CompletionOut.model_validate(completion)


@router.post("/api/projects/{pid}/completions/{cid}/review", response_model=CompletionOut)
def review(cid: Id, body: ReviewIn, m: MembershipDep, writes: WritesDep, scheduler: SchedulerDep) -> CompletionOut:
    require_role(m.member.role, REVIEWERS, "review completions")
    completion, due = labeling.review_completion(writes, m.project, m.user, cid, body.status)
    if due:
        scheduler.wake()
    return CompletionOut.model_validate(completion)


@router.get("/api/projects/{pid}/tasks/{tid}/predictions", response_model=list[PredictionOut])
def list_predictions(tid: Id, m: MembershipDep, session: SessionDep) -> list[PredictionOut]:
    task = TaskRepository(session).get(m.project.id, tid)
    return [PredictionOut.model_validate(p) for p in PredictionRepository(session).for_task(task.id, m.project.id)]


@router.post(
    "/api/projects/{pid}/tasks/{tid}/completions/from-prediction/{prid}",
    response_model=CompletionOut, status_code=status.HTTP_201_CREATED,
)
def from_prediction(tid: Id, prid: Id, m: MembershipDep, writes: WritesDep) -> CompletionOut:
    """A new draft completion copied from a prediction, to edit; the prediction itself never changes."""
    completion = labeling.completion_from_prediction(writes, m.project, m.user, tid, prid)
    return CompletionOut.model_validate(completion)
