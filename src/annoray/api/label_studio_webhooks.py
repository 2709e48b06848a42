"""Calls annoray makes to a Label Studio: only to the base URLs the operator listed, never following a redirect; the
webhook Label Studio made for a linked project gets the backend's Authorization header from a bounded pool of this
API process (``Webhooks``, made with the app and closed with it), through Label Studio's own client
(label-studio-sdk, the ``labelstudio`` extra that ``annoray ls sync`` uses too)."""

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
from annoray.platform.services.label_studio import webhook_secured

logger = logging.getLogger(__name__)


def client_installed() -> bool:
    """Whether Label Studio's own client (the ``labelstudio`` extra) is here to secure webhooks with."""
    import importlib.util

    return importlib.util.find_spec("label_studio_sdk") is not None


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
        from label_studio_sdk import LabelStudio
        from label_studio_sdk.core.api_error import ApiError

        try:  # redirects are never followed: annoray calls the listed address and no other
            with httpx.Client(timeout=10, follow_redirects=False) as http:
                client = LabelStudio(base_url=job.base, api_key=job.access_token, httpx_client=http)
                mine = [h for h in client.webhooks.list(project=str(job.ls_project_id))
                        if urlsplit(str(h.url or "")).path.rstrip("/") == job.path]
                for hook in mine:
                    headers = dict(hook.headers or {}) if isinstance(hook.headers, dict) else {}
                    if headers.get("Authorization") != job.authorization:
                        client.webhooks.update(int(hook.id), headers={**headers, "Authorization": job.authorization})  # type: ignore[arg-type]
        except (httpx.HTTPError, ApiError, ValueError, KeyError, TypeError) as exc:
            logger.warning("Label Studio project %s: cannot set its webhook's credentials yet: %s", job.ls_project_id, exc)
            return False
        if mine:
            webhook_secured(self.sessions, job.link_id)
            logger.info("Label Studio project %s: its webhook %s now carries the backend's credentials", job.ls_project_id, job.path)
        return bool(mine)
