import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from annoray import __version__
from annoray.api.deps import SchedulerDep, SessionsDep
from annoray.api.schemas import Health, Liveness, Readiness
from annoray.platform.errors import describe
from annoray.platform.store.db import schema_revision

logger = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/api/health", response_model=Health)
def health(sessions: SessionsDep) -> Health:
    return Health(version=__version__, database=sessions.kw["bind"].dialect.name)


@router.get("/api/health/live", response_model=Liveness)
def live() -> Liveness:
    """The process answers (a liveness probe: restart it when this fails)."""
    return Liveness()


@router.get("/api/health/ready", response_model=Readiness, responses={503: {"model": Readiness}})
def ready(request: Request, scheduler: SchedulerDep) -> Response:
    """Ready for traffic: the database answers and is migrated to this version's head, and the scheduler actor answers
    (a readiness probe: send no requests here while it is 503; each check says what is wrong)."""
    checks = {"database": "ok", "migrations": "ok", "scheduler": "ok"}
    engine = request.app.state.engine
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current, head = schema_revision(engine)
        if current != head:
            checks["migrations"] = f"the schema is at {current}, this annoray needs {head}: run `annoray up` once to migrate"
    except Exception as exc:  # whatever the driver raises: general words to the caller, its own words to the log
        logger.warning("readiness: the database does not answer: %s", describe(exc))
        checks["database"] = checks["migrations"] = "unreachable: the API cannot reach its database (the log says why)"
    if (why := scheduler.unanswered()) is not None:
        checks["scheduler"] = why
    ok = all(v == "ok" for v in checks.values())
    body = Readiness(status="ok" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """The API process's own Prometheus metrics (requests, latency and errors by route)."""
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
