"""The FastAPI control plane, built by ``create_app(settings)`` so a test can build one on any database."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from importlib import resources

import anyio.to_thread

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.trustedhost import TrustedHostMiddleware
from fastapi.staticfiles import StaticFiles
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from sqlalchemy import Engine

from annoray import __version__
from annoray.api import web
from annoray.api.audit import AuditTrail
from annoray.api.errors import install_error_handlers
from annoray.api.guard import InputGuard
from annoray.api.label_studio_webhooks import Webhooks
from annoray.api.ops import Admission, ApiMetrics, MetricsMiddleware, SecurityHeaders, StreamSlots, TokenUses
from annoray.api.routes import (
    audit, cluster, docs, files, health, label_studio, licenses, models, projects, servers, tasks, teams, training_setup,
    trainings, users, work,
)
from annoray.api.schemas import ERROR_RESPONSES
from annoray.api.work import Works
from annoray.platform.settings import Settings
from annoray.platform.store.db import create_db_engine, session_factory
from annoray.scheduler import SchedulerClient


@asynccontextmanager
async def threads_at_once(threads: int, _app: FastAPI) -> AsyncIterator[None]:
    """The thread pool of the synchronous routes holds ``threads``, which the database pool is sized for."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = threads
    _app.state.token_uses.start()
    yield
    _app.state.ls_webhooks.close()
    _app.state.works.close()
    _app.state.token_uses.close()


def create_app(
    settings: Settings | None = None, *, engine: Engine | None = None, scheduler: SchedulerClient | None = None,
) -> FastAPI:
    """Build the app; the schema must already exist (``annoray up`` or ``init_home`` creates it).

    The scheduler is reached through the connected Ray; without one, training requests stay queued in
    the database until a scheduler starts.
    """
    settings = settings or Settings()
    engine = engine or create_db_engine(settings.resolved_database_url, settings.api.db_connections)
    app = FastAPI(
        title="annoray",
        version=__version__,
        description="Train NLP models from human annotations and serve them as pre-annotation servers, on Ray.",
        docs_url=None, redoc_url=None,  # served from the package's own scripts (routes/docs.py), not a CDN
        lifespan=partial(threads_at_once, settings.api.threads),
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = session_factory(engine, read_only=True)
    app.state.write_sessions = session_factory(engine, write=True)
    app.state.scheduler = scheduler or SchedulerClient(settings)
    app.state.metrics = ApiMetrics()
    app.state.token_uses = TokenUses(app.state.write_sessions)
    app.state.streams = StreamSlots(settings.api.max_streams_per_user, settings.api.max_stream_seconds)
    app.state.ls_webhooks = Webhooks(app.state.write_sessions, settings.label_studio.webhook_workers)
    app.state.works = Works(app.state.write_sessions, settings.api.work_threads, settings.api.work_wait_s)
    app.state.ls_predictions = threading.BoundedSemaphore(settings.label_studio.max_concurrent_predictions)
    install_error_handlers(app)
    # Outermost last: hosts and CORS answer first, then headers, metrics and the audit see every answer, the guard
    # refuses hostile input before any route reads it.
    app.add_middleware(InputGuard, max_body_bytes=settings.api.max_body_bytes)
    app.add_middleware(AuditTrail, sessions=app.state.write_sessions)
    app.add_middleware(Admission, limit=settings.api.threads)  # a request waits for its turn before it reads anything
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(SecurityHeaders)
    if settings.api.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.api.cors_origins, allow_credentials=False,
                           allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"], allow_headers=["Authorization", "Content-Type"])
    if settings.api.allowed_hosts != ["*"]:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.api.allowed_hosts)
    if settings.api.trusted_proxies:  # outermost: every layer sees the client's scheme and address
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.api.trusted_proxies)
    for module in (health, users, projects, tasks, files, trainings, training_setup, models, servers, licenses, teams, cluster,
                   audit, label_studio, work):
        app.include_router(module.router, responses=ERROR_RESPONSES)
    app.include_router(docs.router)
    web.install(app)
    app.mount("/static", StaticFiles(directory=str(resources.files("annoray.api") / "static")), name="static")
    return app
