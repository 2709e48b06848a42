"""The HTTP client the CLI commands are built on."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx


class ApiError(Exception):
    def __init__(self, response: httpx.Response | None, *, status: int = 0, body: dict[str, Any] | None = None):
        if response is not None:
            status = response.status_code
            try:
                body = response.json()
            except ValueError:
                body = {"detail": response.text}
        body = body or {}
        self.status = status
        self.detail = body.get("detail", "")
        self.errors = body.get("errors", [])
        super().__init__(f"{self.status}: {self.detail}")


class MissingToken(Exception):
    """No API token was given: every route but the health checks needs one."""

    def __str__(self) -> str:
        return ("no API token: set ANNORAY_TOKEN or pass --token (the admin's token is in $ANNORAY_HOME/admin.token, "
                "written by `annoray up`; `annoray users create NAME` makes one for a user)")


class AnnorayClient:
    """A thin client of the annoray HTTP API (``ANNORAY_URL``, ``ANNORAY_TOKEN``)."""

    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 120.0):
        url = url or os.environ.get("ANNORAY_URL", "http://127.0.0.1:8765")
        token = (token or os.environ.get("ANNORAY_TOKEN") or "").strip()
        if not token:
            raise MissingToken()
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise ApiError(response)
        if response.status_code == 202 and response.headers.get("location", "").startswith("/api/work/"):
            return self.finished(response.headers["location"])
        if not response.content:  # 204 No Content
            return None
        ctype = response.headers.get("content-type", "")
        return response.json() if ctype.startswith("application/json") else response.text

    def finished(self, work: str, poll_s: float = 0.5) -> Any:
        """Slow work a request handed off, once it has ended: its result (what the request would have answered), or
        its refusal raised as the request's own."""
        while (state := self.get(work))["status"] in ("queued", "running"):
            time.sleep(poll_s)
        if state["status"] == "failed":
            raise ApiError(None, status=state["error"]["status"], body=state["error"])
        return state["result"]

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, json=json, **kwargs)

    def put(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("PUT", path, json=json, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("PATCH", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)

    def stream(self, path: str, **kwargs: Any) -> Iterator[str]:
        """The lines of a GET as they arrive (a followed training log), with no read timeout between them."""
        with self.http.stream("GET", path, timeout=httpx.Timeout(self.http.timeout.connect, read=None), **kwargs) as response:
            if response.status_code >= 400:
                response.read()
                raise ApiError(response)
            yield from response.iter_lines()

    def download(self, path: str, to: Path, **kwargs: Any) -> tuple[int, httpx.Headers]:
        """Stream a GET into the file ``to`` (written whole or not at all); returns its size in bytes and the headers."""
        partial = to.with_name(to.name + ".part")
        with self.http.stream("GET", path, **kwargs) as response:
            if response.status_code >= 400:
                response.read()
                raise ApiError(response)
            with open(partial, "wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
        partial.replace(to)
        return to.stat().st_size, response.headers

    def close(self) -> None:
        self.http.close()
