"""The audit trail: every state-changing request (POST, PUT, PATCH, DELETE), who sent it, when, from which address,
what it addressed and how it ended, written to the database after the response (a failed write is logged and never
fails the request). Request bodies are never recorded: they may hold tokens (sign-in) or license secrets."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

from anyio import to_thread
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from annoray.platform.services.access import record_audit

logger = logging.getLogger(__name__)

CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CODE = re.compile(rb"\[E\d{3}\]")


def outcome(status: int) -> str:
    return "ok" if status < 400 else "refused" if status < 500 else "error"


class AuditTrail:
    def __init__(self, app: ASGIApp, sessions: sessionmaker[Session]):
        self.app, self.sessions = app, sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in CHANGES:
            await self.app(scope, receive, send)
            return
        status, head = 500, b""

        async def watch(message: Message) -> None:
            nonlocal status, head
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status >= 400 and len(head) < 2048:
                head += message.get("body", b"")[:2048]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            await to_thread.run_sync(self._write, _event(scope, status, head))

    def _write(self, event: dict[str, Any]) -> None:
        try:
            record_audit(self.sessions, event)
        except Exception:  # the request has been answered; the trail must not turn it into a failure
            logger.exception("could not write the audit event of %s %s", event["method"], event["path"])


def _event(scope: Scope, status: int, head: bytes) -> dict[str, Any]:
    user_id, username, token_id = (scope.get("state") or {}).get("caller") or (None, None, None)
    route = scope.get("route")
    code = CODE.search(head)
    return {
        "at": datetime.now(UTC), "user_id": user_id, "username": username, "token_id": token_id,
        "address": (scope.get("client") or ("", 0))[0][:64] or None, "method": scope["method"],
        "path": scope["path"][:2000], "route": getattr(route, "path", None), "status": status, "outcome": outcome(status),
        "detail": code.group().decode() if code else None,
    }
