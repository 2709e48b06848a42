"""Models, pre-annotation and the cluster: the catalog and a model's benchmark (its confusion matrix as numbers),
the Pre-annotate page (a server's models and labels before it runs, deploying one, a live progress bar), and the
Clusters page (nodes, running work with its node, the queue with reasons, licence seats, deleting a server)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from annoray.api.routes import models, projects, servers
from annoray.api.deps import Id, SchedulerDep, SessionDep, SessionsDep, SettingsDep, WritesDep
from annoray.api.schemas import PreannotationCreate, ServerCreate
from annoray.api.web.common import VisitorDep, check_csrf, event_stream, live_fragments, page, templates
from annoray.api.web.projects import invalid
from annoray.platform.access.roles import OWNER_MANAGER, may_serve
from annoray.platform.errors import AnnorayError, Errors, Forbidden, Unavailable
from annoray.platform.lifecycle import ENDED
from annoray.platform.store.repositories import ModelRepository, PreannotationJobRepository

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request, v: VisitorDep, session: SessionDep) -> HTMLResponse:
    return page(request, "models.html", v, models=models.models_for(session, v.user))


@router.get("/models/{name}", response_class=HTMLResponse)
def model_page(request: Request, v: VisitorDep, session: SessionDep, name: str) -> HTMLResponse:
    return page(request, "model.html", v, model=models.model_out(ModelRepository(session).get(name), v.user))


# --- Pre-annotate ---------------------------------------------------------------------------------------------------


@router.get("/projects/{pid}/preannotate", response_class=HTMLResponse)
def preannotate_page(request: Request, v: VisitorDep, session: SessionDep, pid: Id, job: Id | None = None) -> HTMLResponse:
    return _preannotate(request, v, session, pid, job=job)


def _preannotate(request: Request, v: Any, session: Any, pid: int, status_code: int = 200, **context: Any) -> HTMLResponse:
    m = v.member(session, pid)
    project = projects.project_view(m)
    catalog = [x for x in models.models_for(session, v.user) if x.kind != "embeddings" and x.stored and may_serve(v.user, pid, x)]
    usable = [s for s in servers.servers_for(session, v.user) if s.project_id in (None, pid)]
    return page(request, "preannotate.html", v, status_code, project=project, servers=usable,
                manages=m.member.role in OWNER_MANAGER, catalog=catalog, **context)


@router.post("/projects/{pid}/servers", response_class=HTMLResponse)
def deploy(request: Request, v: VisitorDep, session: SessionDep, writes: WritesDep, settings: SettingsDep,
           scheduler: SchedulerDep, pid: Id,
           models_: Annotated[list[str] | None, Form(alias="models")] = None, replicas: Annotated[str, Form()] = "1",
           csrf: Annotated[str, Form()] = "") -> Response:
    """Deploy a server for the project: the models its config names, or those chosen from the catalog."""
    check_csrf(v, csrf)
    try:
        server = servers.deploy(session, writes, settings, scheduler, v.user,
                                ServerCreate(project_id=pid, models=models_ or None, replicas=replicas))  # type: ignore[arg-type]
    except ValidationError as exc:
        return _preannotate(request, v, session, pid, 422, refusal=invalid(exc))
    except AnnorayError as exc:
        if isinstance(exc, Forbidden):
            raise
        return _preannotate(request, v, session, pid, 422, refusal=exc)
    return RedirectResponse(f"/ui/projects/{pid}/preannotate?deployed={server.id}", status_code=303)


@router.post("/projects/{pid}/preannotations", response_class=HTMLResponse)
def start(request: Request, v: VisitorDep, session: SessionDep, writes: WritesDep, scheduler: SchedulerDep, pid: Id,
          server_id: Annotated[int, Form()], csrf: Annotated[str, Form()] = "",
          entities_from: Annotated[str, Form()] = "models") -> Response:
    """Pre-annotate the project's tasks with no completion on the chosen server; or propose relations between the
    entities of the tasks' latest completions."""
    check_csrf(v, csrf)
    try:
        job = servers.start(v.member(session, pid), writes, scheduler,
                            PreannotationCreate(server_id=server_id, entities_from=entities_from))  # type: ignore[arg-type]
    except ValidationError as exc:
        return _preannotate(request, v, session, pid, 422, refusal=invalid(exc))
    except AnnorayError as exc:
        if isinstance(exc, Forbidden):
            raise
        return _preannotate(request, v, session, pid, 422, refusal=exc)
    return RedirectResponse(f"/ui/projects/{pid}/preannotate?job={job.id}", status_code=303)


@router.get("/preannotations/{jid}/events")
async def preannotation_events(request: Request, v: VisitorDep, session: SessionDep, sessions: SessionsDep, jid: Id) -> StreamingResponse:
    """A pre-annotation job's progress bar, live (server-sent events) until the job ends."""
    await run_in_threadpool(servers.preannotation_of, session, v.user, jid)  # members of its project only
    await run_in_threadpool(session.close)

    def render(reads: Session) -> tuple[str, bool]:
        job = servers.preannotation_out(PreannotationJobRepository(reads).get(jid))
        return templates.get_template("preannotation.html").render(job=job), job.status in ENDED
    return event_stream(request.app.state.streams.stream(v.user.id, live_fragments(sessions, render)))


# --- Clusters -------------------------------------------------------------------------------------------------------


@router.get("/clusters", response_class=HTMLResponse)
def clusters_page(request: Request, v: VisitorDep, session: SessionDep, scheduler: SchedulerDep, notice: str = "") -> HTMLResponse:
    if not v.may_see_cluster(session):
        raise Forbidden(Errors.E402.format(role="member", action="see the cluster", allowed="admin, owner (of any project)"))
    try:
        view, down = scheduler.cluster(), None
    except Unavailable as exc:
        view, down = {"nodes": [], "trainings": [], "servers": [], "queue": [], "licenses": []}, exc.detail
    holders: dict[int, list[str]] = {}
    for kind, rows in (("training", view["trainings"]), ("server", view["servers"])):
        for row in rows:
            for lease in row.get("leases", []):
                holders.setdefault(lease["license_id"], []).append(f"{kind} {row['id']} ({lease['scope']})")
    return page(request, "clusters.html", v, view=view, down=down, holders=holders, notice=notice)


@router.post("/servers/{sid}/delete")
def delete_server(v: VisitorDep, session: SessionDep, writes: WritesDep, scheduler: SchedulerDep, sid: Id,
                  csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(v, csrf)
    servers.remove_server(session, writes, scheduler, v.user, sid)
    return RedirectResponse(f"/ui/clusters?notice=server+{sid}+deleted", status_code=303)
