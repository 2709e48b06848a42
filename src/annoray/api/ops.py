"""What an ops team runs the API with: security headers on every answer, the API's own Prometheus metrics
(requests, latency and errors by route), and log lines as JSON for a log pipeline."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client import Counter as Metric
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from annoray.platform.access.tokens import TOUCH_EVERY
from annoray.platform.errors import Errors, TooMany
from annoray.platform.services.access import note_token_uses

DASHBOARD_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
"""The dashboard runs only its own scripts (htmx and dashboard.js, no inline script); inline styles place boxes."""
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer"),
           (b"cross-origin-opener-policy", b"same-origin")]


def _policy(path: str) -> bytes | None:
    if path.startswith(("/docs", "/redoc")):
        return None  # Swagger UI and ReDoc start from an inline script of FastAPI's
    return (DASHBOARD_POLICY if path.startswith(("/ui", "/static")) else API_POLICY).encode()


class SecurityHeaders:
    """Headers that keep browsers from sniffing types, framing pages or leaking addresses, and a content security
    policy. HSTS is the TLS terminator's to send: annoray itself speaks plain HTTP behind it."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = _policy(scope["path"])

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in HEADERS if k not in present]
                if policy is not None and b"content-security-policy" not in present:
                    extra.append((b"content-security-policy", policy))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


class ApiMetrics:
    """Requests, latency and errors by route template (never by id, so the series stay few), in a registry of the
    app's own: ``GET /metrics`` serves it for Prometheus, beside the scheduler's metrics that Ray exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Metric("annoray_http_requests", "HTTP requests answered", ("method", "route", "status"),
                                registry=self.registry)
        self.latency = Histogram("annoray_http_request_duration_seconds", "Time to answer a request", ("method", "route"),
                                 registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.errors = Metric("annoray_http_errors", "Requests answered with a server error (5xx)", ("method", "route"),
                              registry=self.registry)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = getattr(scope.get("route"), "path", None) or ("/static" if scope["path"].startswith("/static") else "unmatched")
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
            if status >= 500:
                self.metrics.errors.labels(method, route).inc()


class JsonFormatter(logging.Formatter):
    """One JSON object per log line: time, level, logger, message, and the exception when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(), "level": record.levelname,
                "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(log_format: str) -> None:
    """annoray's and uvicorn's loggers write to stderr as text or as JSON lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("annoray", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)


class TokenUses:
    """Each named token's last use, recorded out of band: a request notes it in memory, and a thread of its own writes
    the notes every ``every_s`` seconds in one short transaction (at most one write per token per ``TOUCH_EVERY``).
    A request, a read above all, never writes for it and never waits for a writer. What the listing shows is the later
    of the stored time and the note not yet written."""

    def __init__(self, sessions: sessionmaker[Session], every_s: float = 2.0):
        self.sessions, self.every_s = sessions, every_s
        self._noted: dict[int, datetime] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def note(self, token_id: int, at: datetime) -> None:
        with self._lock:
            if token_id not in self._noted or self._noted[token_id] < at:
                self._noted[token_id] = at

    def last(self, token_id: int, stored: datetime | None) -> datetime | None:
        with self._lock:
            noted = self._noted.get(token_id)
        if noted is None or stored is None:
            return noted or stored
        return max(noted, stored.replace(tzinfo=stored.tzinfo or UTC))

    def flush(self) -> None:
        with self._lock:
            noted, self._noted = self._noted, {}
        if not noted:
            return
        try:
            note_token_uses(self.sessions, noted, TOUCH_EVERY)
        except Exception:  # kept for the next flush; a last-used time is never worth failing anything for
            logging.getLogger(__name__).warning("could not record the last use of %d tokens; retrying", len(noted), exc_info=True)
            for token_id, at in noted.items():
                self.note(token_id, at)

    def start(self) -> None:
        def run() -> None:
            while not self._stop.wait(self.every_s):
                self.flush()

        self._thread = threading.Thread(target=run, name="annoray-token-uses", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()


class Admission:
    """At most ``limit`` requests at work at once (the API's threads); more wait their turn here, holding nothing.

    A request holds up to two database connections (its read session, and a service's short write transaction) from
    its first read until its answer starts. Requests waiting for a thread would otherwise hold their read connection
    meanwhile, and enough of them empty the pool that the requests at work need for their writes. Admitted at most
    ``limit`` at once, they never hold more than the pool's ``2 x threads + 4``. A request's turn ends when its answer
    starts, so a live stream, which answers at once, never holds one for its length.
    """

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit
        self.turns: asyncio.Semaphore | None = None  # made in the server's event loop, on first use

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.turns = self.turns or asyncio.Semaphore(self.limit)
        await self.turns.acquire()
        held = True

        async def started(message: Message) -> None:
            nonlocal held
            if held and message["type"] == "http.response.start":
                held = False
                self.turns.release()  # type: ignore[union-attr]
            await send(message)

        try:
            await self.app(scope, receive, started)
        finally:
            if held:
                self.turns.release()


class StreamSlots:
    """Live streams held open per user, at most ``per_user`` at once, each for at most ``seconds``: a stream is a
    connection and a poll of the database every half second, so neither a user nor a job that waits for ever holds one
    without end."""

    def __init__(self, per_user: int, seconds: float):
        self.per_user, self.seconds = per_user, seconds
        self.open: Counter[int] = Counter()
        self.lock = threading.Lock()

    def stream(self, user_id: int, events: AsyncGenerator[str, None]) -> AsyncIterator[str]:
        """Take a slot now (refused, E418, when the user has none left) and give it back when the stream ends."""
        with self.lock:
            if self.open[user_id] >= self.per_user:
                raise TooMany(Errors.E418.format(count=self.open[user_id]))
            self.open[user_id] += 1
        return self._held(user_id, events)

    async def _held(self, user_id: int, events: AsyncGenerator[str, None]) -> AsyncIterator[str]:
        deadline = time.monotonic() + self.seconds
        try:
            while (left := deadline - time.monotonic()) > 0:
                try:  # a stream that waits (a queued job's log) ends at its deadline too
                    event = await asyncio.wait_for(anext(events), left)
                except (StopAsyncIteration, TimeoutError):
                    return
                yield event
        finally:
            await events.aclose()
            with self.lock:
                self.open[user_id] -= 1
