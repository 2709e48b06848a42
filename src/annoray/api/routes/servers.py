from fastapi import APIRouter, status
from sqlalchemy.orm import Session, sessionmaker

from annoray.api.deps import (
    Membership, CurrentUser, Id, MembershipDep, SchedulerDep, SessionDep, SettingsDep, WritesDep, get_membership,
)
from annoray.api.schemas import (
    LeaseOut, PreannotationCreate, PreannotationOut, RuleCreate, RuleOut, ServedModelOut, ServerCreate, ServerOut,
)
from annoray.platform.access.roles import (
    ANY_MEMBER, OWNER_MANAGER, require_manager_somewhere, require_role, require_server_manager,
)
from annoray.platform.services import labeling
from annoray.platform.settings import Settings
from annoray.platform.store.repositories import (
    SERVER, LicenseRepository, PreannotationJobRepository, ProjectRepository, RuleRepository, ServerRepository,
)
from annoray.platform.store.tables import PreannotationJob, PreannotationServer, User
from annoray.scheduler import SchedulerClient, ServerRequest, deploy_server as queue_server, server_models, start_preannotation

router = APIRouter(tags=["pre-annotation"])
AUTOSCALING = ("target_ongoing_requests", "upscale_delay_s", "downscale_delay_s")  # Serve's names, as the request has them


def server_out(session: Session, server: PreannotationServer) -> ServerOut:
    leases = [LeaseOut(scope=lease.scope, holder=lease.holder_kind, holder_id=lease.holder_id, leased_at=lease.leased_at)
              for lease in LicenseRepository(session).active(holder_kind=SERVER, holder_id=server.id)]
    return ServerOut(
        id=server.id, name=server.name, project_id=server.project_id, status=server.status, reason=server.reason,
        error=server.error, models=[ServedModelOut(**m) for m in server_models(session, server)],
        deployed_models=server.deployed_models or [], rules=server.rules,
        replicas=server.replicas, max_replicas=server.max_replicas, resources=server.resources, autoscaling=server.autoscaling or {},
        node_id=server.node_id, spread=[(node_id, n) for node_id, n in server.spread or []], licenses=server.scopes,
        leases=leases, created_at=server.created_at,
    )


@router.post("/api/servers", response_model=ServerOut, status_code=status.HTTP_202_ACCEPTED)
def deploy_server(body: ServerCreate, user: CurrentUser, session: SessionDep, writes: WritesDep, settings: SettingsDep,
                  scheduler: SchedulerDep) -> ServerOut:
    """Queue a pre-annotation server; 422 with every reason (no model, over five, unknown models or rules), 409
    when the cluster or the licenses can never hold it. Nothing is deployed then."""
    return deploy(session, writes, settings, scheduler, user, body)


def deploy(session: Session, writes: sessionmaker[Session], settings: Settings, scheduler: SchedulerClient, user: User,
           body: ServerCreate) -> ServerOut:
    if body.project_id is not None:
        require_role(get_membership(user, session, body.project_id).member.role, OWNER_MANAGER, "deploy servers")
    server = queue_server(writes, settings, user, body.project_id, ServerRequest(
        models=body.models, name=body.name, replicas=body.replicas, max_replicas=body.max_replicas,
        autoscaling={k: v for k in AUTOSCALING if (v := getattr(body, k)) is not None},
    ), why_never=scheduler.never_reason)
    scheduler.wake()
    return server_out(session, server)


@router.get("/api/servers", response_model=list[ServerOut])
def list_servers(user: CurrentUser, session: SessionDep) -> list[ServerOut]:
    """The servers the caller may use (an admin: every one): its projects' and the shared ones, with status, models
    and the labels each predicts, resources and seats."""
    return servers_for(session, user)


def servers_for(session: Session, user: User) -> list[ServerOut]:
    servers = ServerRepository(session).all()
    if not user.is_admin:
        mine = {p.id for p in ProjectRepository(session).for_user(user.id)}
        servers = [s for s in servers if s.project_id is None or s.project_id in mine]
    return [server_out(session, s) for s in servers]


@router.get("/api/servers/{sid}", response_model=ServerOut)
def get_server(sid: Id, user: CurrentUser, session: SessionDep) -> ServerOut:
    return server_out(session, ServerRepository(session).get(sid))


@router.delete("/api/servers/{sid}", status_code=status.HTTP_204_NO_CONTENT)
def delete_server(sid: Id, user: CurrentUser, session: SessionDep, writes: WritesDep, scheduler: SchedulerDep) -> None:
    """Delete the server: its Serve app goes, its resources and license seats come back, its running jobs fail."""
    remove_server(session, writes, scheduler, user, sid)


def remove_server(session: Session, writes: sessionmaker[Session], scheduler: SchedulerClient, user: User, sid: int) -> None:
    require_server_manager(session, user, ServerRepository(session).get(sid))
    scheduler.delete_server(writes, sid)


def preannotation_out(job: PreannotationJob) -> PreannotationOut:
    progress = round((job.done + job.failed) / job.total, 4) if job.total else (1.0 if job.finished_at else 0.0)
    return PreannotationOut(
        id=job.id, project_id=job.project_id, server_id=job.server_id, entities_from=job.entities_from, status=job.status,
        reason=job.reason, error=job.error,
        total=job.total, done=job.done, failed=job.failed, progress=progress, failures=job.failures or [],
        replicas_used=job.replicas_used or {},
        created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at,
    )


@router.post("/api/projects/{pid}/preannotations", response_model=PreannotationOut, status_code=status.HTTP_202_ACCEPTED)
def preannotate(body: PreannotationCreate, m: MembershipDep, writes: WritesDep, scheduler: SchedulerDep) -> PreannotationOut:
    """Pre-annotate the given tasks (default: those with no completion) with a server; with `entities_from:
    completion`, propose relations between the entities of each task's latest completion."""
    return start(m, writes, scheduler, body)


def start(m: Membership, writes: sessionmaker[Session], scheduler: SchedulerClient, body: PreannotationCreate) -> PreannotationOut:
    require_role(m.member.role, OWNER_MANAGER, "pre-annotate")
    job = start_preannotation(writes, m.user, m.project.id, body.server_id, body.task_ids, body.entities_from)
    scheduler.wake()
    return preannotation_out(job)


@router.get("/api/preannotations/{jid}", response_model=PreannotationOut)
def get_preannotation(jid: Id, user: CurrentUser, session: SessionDep) -> PreannotationOut:
    """``{status, total, done, failed, progress}`` and the first failed tasks."""
    return preannotation_of(session, user, jid)


def preannotation_of(session: Session, user: User, jid: int) -> PreannotationOut:
    job = PreannotationJobRepository(session).get(jid)
    require_role(get_membership(user, session, job.project_id).member.role, ANY_MEMBER, "see pre-annotation jobs")
    return preannotation_out(job)


@router.post("/api/rules", response_model=RuleOut, status_code=status.HTTP_201_CREATED)
def add_rule(body: RuleCreate, user: CurrentUser, session: SessionDep, writes: WritesDep) -> RuleOut:
    """A regex or dictionary rule, reusable by every project whose config opts in (`<Labels rules="name,...">`)."""
    require_manager_somewhere(session, user)
    rule = labeling.create_rule(writes, user, name=body.name, label=body.label, kind=body.kind, pattern=body.pattern,
                                terms=body.terms)
    return RuleOut.model_validate(rule)


@router.get("/api/rules", response_model=list[RuleOut])
def list_rules(user: CurrentUser, session: SessionDep) -> list[RuleOut]:
    return [RuleOut.model_validate(r) for r in RuleRepository(session).all()]
