"""Projects: the list and the create form (a config's errors shown at their lines), a project's overview (kinds,
models, members, imports, documents), and its tasks with their predictions drawn over the text or the page."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from annoray.api.deps import Id, PageNumber, SchedulerDep, SessionDep, SessionsDep, SettingsDep, WritesDep
from annoray.api.routes import files, projects, tasks
from annoray.api.schemas import MemberCreate, ProjectCreate
from annoray.api.web.common import VisitorDep, check_csrf, page
from annoray.platform.access.roles import ANY_MEMBER, OWNER, OWNER_MANAGER, require_role
from annoray.platform.errors import AnnorayError, ErrorDetail, InvalidInput
from annoray.platform.labeling.config import ModelKind, region_labels
from annoray.platform.labeling.datasets import LANGUAGES, SplitMethod
from annoray.platform.labeling.predictions import relations_listed
from annoray.platform.labeling.projects import MODEL_TYPES, project_config
from annoray.platform.services import labeling
from annoray.platform.store.repositories import DocumentRepository, PredictionRepository

router = APIRouter(prefix="/ui", include_in_schema=False)

TASKS_PER_PAGE = 20


def invalid(exc: ValidationError) -> InvalidInput:
    """A form's pydantic refusal in the API's shape: one error per field."""
    return InvalidInput("the form has errors", [
        ErrorDetail(f"{'.'.join(map(str, e['loc']))}: {e['msg']}", field=str(e["loc"][0]) if e["loc"] else None)
        for e in exc.errors()])


@router.get("/", response_class=HTMLResponse)
def projects_page(request: Request, v: VisitorDep, session: SessionDep) -> HTMLResponse:
    return _projects(request, v, session)


def _projects(request: Request, v: Any, session: Any, form: dict[str, str] | None = None,
              refusal: AnnorayError | None = None) -> HTMLResponse:
    listed = projects.projects_of(session, v.user)
    form = form or {"name": "", "labeling_config": "", "language": "en", "model_type": "open_source"}
    lines = form["labeling_config"].splitlines() if refusal else []
    at_line = {}
    for e in refusal.errors if refusal else []:
        at_line.setdefault(e.line if e.line and e.line <= len(lines) else 0, []).append(e.message)
    return page(request, "projects.html", v, 422 if refusal else 200, projects=listed, form=form, languages=LANGUAGES,
                model_types=MODEL_TYPES, refusal=refusal, lines=lines, at_line=at_line)


@router.post("/projects", response_class=HTMLResponse)
def create_project(request: Request, v: VisitorDep, session: SessionDep, writes: WritesDep, settings: SettingsDep,
                   name: Annotated[str, Form()] = "", labeling_config: Annotated[str, Form()] = "",
                   language: Annotated[str, Form()] = "en", model_type: Annotated[str, Form()] = "open_source",
                   csrf: Annotated[str, Form()] = "") -> Response:
    """Create a project; a refused config comes back in the form with each error beside its line."""
    check_csrf(v, csrf)
    form = {"name": name, "labeling_config": labeling_config, "language": language, "model_type": model_type}
    try:
        body = ProjectCreate(**form)
        created, _ = labeling.create_project(writes, settings, v.user, name=body.name, labeling_config=body.labeling_config,
                                             language=body.language, model_type=body.model_type)
    except ValidationError as exc:
        return _projects(request, v, session, form, invalid(exc))
    except InvalidInput as exc:
        return _projects(request, v, session, form, exc)
    return RedirectResponse(f"/ui/projects/{created.id}", status_code=303)


@router.get("/projects/{pid}", response_class=HTMLResponse)
def project_page(request: Request, v: VisitorDep, session: SessionDep, pid: Id, notice: str = "") -> HTMLResponse:
    return _project(request, v, session, pid, notice=notice)


def _project(request: Request, v: Any, session: Any, pid: int, status_code: int = 200, **context: Any) -> HTMLResponse:
    m = v.member(session, pid)
    config = project_config(m.project)
    return page(request, "project.html", v, status_code, project=projects.project_view(m), role=m.member.role,
                members=projects.members_of(session, m.project.id), documents=files.files_of(session, m.project.id),
                manages=m.member.role in OWNER_MANAGER, owns=m.member.role in OWNER, roles=["owner", "manager", "reviewer", "annotator"],
                takes_images=any(tag == "Image" for tag, _ in config.objects.values()), **context)


def _act(request: Request, v: Any, session: Any, pid: int, do: Any) -> Response:
    """Run an action of the project page (it returns what to tell): back to the page with that notice, or with every
    reason it was refused."""
    try:
        notice = do()
    except ValidationError as exc:
        return _project(request, v, session, pid, 422, refusal=invalid(exc))
    except InvalidInput as exc:
        return _project(request, v, session, pid, 422, refusal=exc)
    return RedirectResponse(f"/ui/projects/{pid}?{urlencode({'notice': notice})}", status_code=303)


@router.post("/projects/{pid}/members", response_class=HTMLResponse)
def add_member(request: Request, v: VisitorDep, session: SessionDep, writes: WritesDep, pid: Id,
               username: Annotated[str, Form()] = "",
               role: Annotated[str, Form()] = "annotator", priority: Annotated[int, Form()] = 0,
               csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(v, csrf)
    m = v.member(session, pid)
    require_role(m.member.role, OWNER, "add members")

    def add() -> str:
        body = MemberCreate(username=username, role=role, priority=priority)  # type: ignore[arg-type]
        labeling.add_member(writes, pid, username=body.username, role=body.role, priority=body.priority)
        return "added " + body.username
    return _act(request, v, session, pid, add)


@router.post("/projects/{pid}/import", response_class=HTMLResponse)
def import_tasks(request: Request, v: VisitorDep, session: SessionDep, writes: WritesDep, scheduler: SchedulerDep, pid: Id,
                 file: Annotated[UploadFile, File()], csrf: Annotated[str, Form()] = "") -> Response:
    """Import a Label Studio JSON file of tasks, all or nothing, as the API's import does."""
    check_csrf(v, csrf)
    m = v.member(session, pid)
    require_role(m.member.role, OWNER_MANAGER, "import tasks")
    try:
        body = json.loads(file.file.read())
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        return _project(request, v, session, pid, 422, refusal=InvalidInput(
            "the file is not JSON", [ErrorDetail(f"{file.filename}: {exc}", field="file")]))

    def import_() -> str:
        ids, due = labeling.import_tasks(writes, m.project, m.user, body)
        if due:
            scheduler.wake()
        return f"{len(ids)} tasks imported"
    return _act(request, v, session, pid, import_)


@router.post("/projects/{pid}/files", response_class=HTMLResponse)
def upload_documents(request: Request, v: VisitorDep, session: SessionDep, writes: WritesDep, settings: SettingsDep,
                     scheduler: SchedulerDep,
                     pid: Id, file: Annotated[list[UploadFile], File()], csrf: Annotated[str, Form()] = "") -> Response:
    """Upload documents for Visual NER: pages, their OCR queued, one task per page."""
    check_csrf(v, csrf)
    m = v.member(session, pid)

    def upload() -> str:
        done = files.upload_documents(m, request.app.state.works, writes, settings, scheduler, file, tasks=True)
        if done.result is None:
            return f"the pages are being drawn (work {done.work_id}): they appear here, one task each, when it is done"
        return f"{len(done.result['task_ids'])} pages uploaded, one task each; their OCR is queued"
    return _act(request, v, session, pid, upload)


@router.get("/files/{fid}/pages/{n}")
def page_image(v: VisitorDep, session: SessionDep, settings: SettingsDep, fid: Id, n: PageNumber) -> Response:
    """A page image for the pages that draw predictions over it (the API's image, behind the session)."""
    document = DocumentRepository(session).get(fid)
    v.member(session, document.project_id)  # members of its project only
    return files.page_png(session, settings, document.id, n)


@router.get("/projects/{pid}/tasks", response_class=HTMLResponse)
def tasks_page(request: Request, v: VisitorDep, session: SessionDep, settings: SettingsDep, pid: Id, tags: str = "",
               completed: str = "", order: str = "id", page_number: int = 1) -> HTMLResponse:
    """Tasks with filters (tags, with or without completion, by uncertainty), each with its latest prediction drawn
    over its text (highlighted chunks) or its page (rectangles)."""
    m = v.member(session, pid)
    config = project_config(m.project)
    done = {"yes": True, "no": False}.get(completed)
    require_role(m.member.role, ANY_MEMBER, "list tasks")
    listed = tasks.task_page(session, pid, tuple(t.strip() for t in tags.split(",") if t.strip()), max(page_number, 1),
                             TASKS_PER_PAGE, "uncertainty" if order == "uncertainty" else "id", done)
    predictions = PredictionRepository(session)
    rows = []
    for task in listed.items:
        drawn = [(p, _drawn(config, task.data, p.result)) for p in sorted(predictions.for_task(task.id, m.project.id), key=lambda p: p.id, reverse=True)]
        rows.append({"task": task, "plain": _drawn(config, task.data, []), "predictions": drawn})
    last = max(1, -(-listed.total // TASKS_PER_PAGE))
    return page(request, "tasks.html", v, project=m.project, rows=rows, total=listed.total, page_number=listed.page,
                last=last, filters={"tags": tags, "completed": completed, "order": order})


def _drawn(config: Any, data: dict[str, Any], result: list[dict[str, Any]]) -> dict[str, Any]:
    """What a prediction looks like on its task: the text cut into plain and labeled pieces, the rectangles in percent
    of the page, the choices, and the relations between its entities."""
    text_key = next((key for tag, key in config.objects.values() if tag in ("Text", "HyperText")), None)
    image_key = next((key for tag, key in config.objects.values() if tag == "Image"), None)
    spans, boxes, choices, texts = [], [], [], {}
    for region in result:
        value, score = region.get("value", {}), region.get("score")
        if "x" in value and "text" in value:  # the transcription of a region (Label Studio's OCR layout)
            texts[region.get("id")] = " ".join(value["text"])
        elif "x" in value and (value.get("rectanglelabels") or value.get("labels")):
            boxes.append({"id": region.get("id"), "label": region_labels(value)[0], "score": score,
                          **{k: value[k] for k in ("x", "y", "width", "height")}})
        elif "start" in value and value.get("labels"):
            spans.append((value["start"], value["end"], value["labels"][0], score))
        elif value.get("choices"):
            choices.append((region.get("from_name", ""), ", ".join(value["choices"]), score))
    for box in boxes:
        box["text"] = texts.get(box.pop("id"), "")
    text = str(data.get(text_key, "")) if text_key else ""
    pieces, at = [], 0
    for start, end, label, score in sorted(spans):
        if start < at:
            continue  # an assertion on a chunk already drawn
        pieces += [(text[at:start], None, None), (text[start:end], label, score)]
        at = end
    pieces.append((text[at:], None, None))
    image = str(data.get(image_key, "")) if image_key else ""
    return {"pieces": [p for p in pieces if p[0]], "image": image.replace("/api/files/", "/ui/files/", 1) if image else "",
            "boxes": boxes, "choices": choices, "relations": relations_listed(result)}


@router.get("/projects/{pid}/training-data", response_class=HTMLResponse)
def training_data_part(request: Request, v: VisitorDep, session: SessionDep, sessions: SessionsDep, settings: SettingsDep,
                       pid: Id, tags: str = "", reviewed_only: bool = False, split: str = "random",
                       validation_split: float = 0.2) -> HTMLResponse:
    """What a training would use, with its warnings (the Train page loads it beside the form)."""
    m = v.member(session, pid)
    try:
        summary = projects.training_data_summary(m, sessions, settings, tuple(t.strip() for t in tags.split(",") if t.strip()),
                                                 None, reviewed_only, SplitMethod(split), min(max(validation_split, 0.0), 0.95), 0)
    except (ValueError, AnnorayError) as exc:
        return page(request, "training_data.html", v, summary=None, problem=str(exc))
    return page(request, "training_data.html", v, summary=summary, problem=None, kinds=[k.value for k in ModelKind])
