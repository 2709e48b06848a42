"""Hostile input refused before any route reads it, with nothing changed: bodies over the size limit (413), text
that is not UTF-8, NUL characters and unpaired surrogates anywhere in the path, the query, a JSON or form body, and
JSON nested deeper than a limit (422).

Starlette's own body limit answers a declared oversize with plain text, so the limit lives here to keep the error
shape of every refusal the same. JSON and form bodies are read whole here (the route would read them whole anyway)
and handed on unchanged; uploads (multipart) stream through under the size limit only: the files they carry are
checked by what reads them."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from annoray.api.errors import refusal
from annoray.platform.errors import Errors
from annoray.platform.text import nodes, text_problem

MAX_JSON_DEPTH = 64
"""Deeper than any task, result or config annoray reads (a Label Studio task is about 6 levels deep)."""


def _query_problem(query: bytes) -> str | None:
    try:
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as e:
        return Errors.E512.format(at=e.start)
    for key, value in pairs:
        for text in (key, value):
            if (what := text_problem(text)) is not None:
                return Errors.E513.format(where=f"query parameter '{key[:50]}'", what=what)
    return None


def _json_problem(body: bytes) -> str | None:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as e:
        return Errors.E512.format(at=e.start)
    try:
        value = json.loads(body)
    except RecursionError:
        return Errors.E514.format(limit=MAX_JSON_DEPTH)
    except ValueError:
        return None  # not JSON: the route's own parsing says what is wrong with it
    for at, v, depth in nodes(value):
        if depth > MAX_JSON_DEPTH:
            return Errors.E514.format(limit=MAX_JSON_DEPTH)
        if isinstance(v, str) and (what := text_problem(v)) is not None:
            return Errors.E513.format(where=at[:200], what=what)
    return None


class InputGuard:
    def __init__(self, app: ASGIApp, max_body_bytes: int):
        self.app, self.limit = app, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        problem = _path_problem(scope.get("path", "")) or _query_problem(scope.get("query_string", b""))
        if problem is not None:
            await refusal(422, problem)(scope, receive, send)
            return
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await refusal(413, Errors.E505.format(size=int(declared), limit=self.limit))(scope, receive, send)
            return
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if content_type in (b"application/json", b"application/x-www-form-urlencoded"):
            body = await self._read(receive)
            if body is None:
                await refusal(413, Errors.E505.format(size=f"more than {self.limit}", limit=self.limit))(
                    scope, receive, send)
                return
            problem = _json_problem(body) if content_type == b"application/json" else _query_problem(body)
            if problem is not None:
                await refusal(422, problem)(scope, receive, send)
                return
            await self.app(scope, _replay(body, receive), send)
            return
        await self.app(scope, self._limited(receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None past the size limit."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _limited(self, receive: Receive) -> Receive:
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(413, Errors.E505.format(size=f"more than {received}", limit=self.limit))
            return message

        return limited


def _path_problem(path: str) -> str | None:
    what = text_problem(path)
    return None if what is None else Errors.E513.format(where="the path", what=what)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
