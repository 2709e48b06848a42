"""Calls annoray makes to a Label Studio: only to the base URLs the operator listed, never following a redirect; the
webhook Label Studio made for a linked project gets the backend's Authorization header from a bounded pool of this
API process (``Webhooks``, made with the app and closed with it)."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from sqlalchemy.orm import Session, sessionmaker

from annoray.platform.labeling import label_studio as ls
from annoray.platform.settings import Settings
from annoray.platform.store.tables import LabelStudioLink

logger = logging.getLogger(__name__)


def allowed_label_studio(settings: Settings, hostname: str) -> str | None:
    """The base URL of a Label Studio annoray may call, as the operator listed it (``allowed_urls``), or None."""
    wanted = ls.instance_of(hostname) + urlsplit(hostname.strip()).path.rstrip("/")
    return next((url.rstrip("/") for url in settings.label_studio.allowed_urls
                 if ls.instance_of(url) + urlsplit(url.strip()).path.rstrip("/") == wanted), None)


@dataclass(frozen=True)
class WebhookJob:
    """Put the backend's Authorization header on the webhook Label Studio made for a linked project."""

    link_id: int
    ls_project_id: int
    base: str  # a listed Label Studio's base URL
    access_token: str
    path: str  # the webhook's path on annoray
    authorization: str


class Webhooks:
    """This API process's bounded pool that secures webhooks (Label Studio gives setup 3 s: the answer never waits),
    one job per link at a time."""

    def __init__(self, sessions: sessionmaker[Session], workers: int, tries: int = 30):
        self.sessions, self.tries = sessions, tries
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="ls-webhook")
        self.busy: set[int] = set()
        self.lock = threading.Lock()
        self.closed = threading.Event()

    def close(self) -> None:
        """Stop at the next try: the API process is stopping."""
        self.closed.set()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def secure(self, job: WebhookJob) -> None:
        with self.lock:
            if job.link_id in self.busy:
                return
            self.busy.add(job.link_id)
        self.pool.submit(self._run, job)

    def _run(self, job: WebhookJob) -> None:
        try:
            for _ in range(self.tries):  # Label Studio makes the webhook after its first setup call: tried for a while
                if self._try(job) or self.closed.wait(1.0):
                    return
            logger.warning("Label Studio project %s: no webhook to %s found; add the header Authorization to it by hand",
                           job.ls_project_id, job.path)
        finally:
            with self.lock:
                self.busy.discard(job.link_id)

    def _try(self, job: WebhookJob) -> bool:
        headers = {"Authorization": f"Token {job.access_token}"}
        try:  # redirects are never followed: annoray calls the listed address and no other
            with httpx.Client(base_url=job.base, headers=headers, timeout=10, follow_redirects=False) as client:
                found = client.get("/api/webhooks/", params={"project": job.ls_project_id})
                found.raise_for_status()
                mine = [h for h in found.json() if isinstance(h, dict) and urlsplit(str(h.get("url", ""))).path.rstrip("/") == job.path]
                for hook in mine:
                    if (hook.get("headers") or {}).get("Authorization") != job.authorization:
                        client.patch(f"/api/webhooks/{int(hook['id'])}/", json={
                            "headers": {**(hook.get("headers") or {}), "Authorization": job.authorization}}).raise_for_status()
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            logger.warning("Label Studio project %s: cannot set its webhook's credentials yet: %s", job.ls_project_id, exc)
            return False
        if mine:
            with self.sessions.begin() as session:
                session.get(LabelStudioLink, job.link_id).webhook_ready = True  # type: ignore[union-attr]
            logger.info("Label Studio project %s: its webhook %s now carries the backend's credentials", job.ls_project_id, job.path)
        return bool(mine)
