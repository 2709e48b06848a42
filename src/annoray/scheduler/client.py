"""The small client the API reaches the scheduler through."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from annoray.platform.errors import AnnorayError, Errors, Unavailable, describe
from annoray.platform.lifecycle import PENDING, ServerStatus
from annoray.platform.models.training_jobs import cancel_job
from annoray.platform.settings import Settings
from annoray.platform.store.repositories import ServerRepository

logger = logging.getLogger(__name__)


class SchedulerClient:
    """Calls on the named scheduler actor; a missing scheduler leaves queued jobs queued, not lost."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def _actor(self) -> Any | None:
        import ray

        if not ray.is_initialized():
            return None
        try:
            return ray.get_actor(self.settings.scheduler.name, namespace=self.settings.scheduler.namespace)
        except ValueError:
            return None

    def _call(self, actor: Any, method: str, *args: Any) -> Any:
        """A method of the scheduler, waited for at most ``scheduler.call_timeout_s``; its refusals come back as they
        were raised, and a scheduler that died, failed or did not answer in time is a coded 503 (the database, not the
        actor, holds what the call changed)."""
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

        timeout = self.settings.scheduler.call_timeout_s
        try:
            return ray.get(getattr(actor, method).remote(*args), timeout=timeout)
        except GetTimeoutError as exc:
            raise Unavailable(Errors.E627.format(why=f"no answer within {timeout:g} s")) from exc
        except RayTaskError as exc:
            if isinstance(exc.cause, AnnorayError):
                raise exc.cause from None
            raise Unavailable(Errors.E627.format(why=describe(exc.cause or exc))) from exc
        except RayActorError as exc:
            raise Unavailable(Errors.E627.format(why=describe(exc))) from exc

    def unanswered(self, timeout: float = 5.0) -> str | None:
        """Why the scheduler does not answer (not running, or no answer within ``timeout`` seconds); None when it does."""
        import ray

        actor = self._actor()
        if actor is None:
            return Errors.E610
        try:
            ray.get(actor.ping.remote(), timeout=timeout)
        except Exception as exc:  # a dead actor, a timeout: the probe says which
            return Errors.E627.format(why=describe(exc))
        return None

    def wake(self) -> None:
        """Tell the scheduler new jobs are queued; without one they wait in the database for it."""
        actor = self._actor()
        if actor is None:
            logger.warning("no scheduler is running; queued jobs start when `annoray up` starts it")
            return
        actor.wake.remote()

    def never_reason(self, resources: dict[str, float], replicas: int = 0) -> str | None:
        """Why a job of this size (a server: ``replicas`` of it) can never run here; None when it can, or when no
        scheduler can tell yet."""
        actor = self._actor()
        return None if actor is None else self._call(actor, "never_reason", resources, replicas)

    def cluster(self) -> dict[str, Any]:
        actor = self._actor()
        if actor is None:
            raise Unavailable(Errors.E610)
        return self._call(actor, "cluster_view")

    def cancel(self, sessions: sessionmaker[Session], job_id: int, username: str) -> None:
        """Cancel through the scheduler; without one, a job that never started can still be cancelled."""
        actor = self._actor()
        if actor is not None:
            self._call(actor, "cancel", job_id, username)
        elif not cancel_job(sessions, job_id, username, PENDING):
            raise Unavailable(Errors.E610)

    def delete_server(self, sessions: sessionmaker[Session], server_id: int) -> None:
        """Delete through the scheduler; without one, a server that holds nothing can still be deleted."""
        actor = self._actor()
        if actor is not None:
            self._call(actor, "delete_server", server_id)
            return
        with sessions.begin() as session:
            if ServerRepository(session).get(server_id).status not in (ServerStatus.QUEUED, ServerStatus.FAILED):
                raise Unavailable(Errors.E610)
            ServerRepository(session).delete(server_id)

    def predict(self, server_id: int, inputs: list[Any], timeout_s: float) -> list[dict[str, Any]]:
        """A running server's outputs for ``inputs``, asked now (in requests of the size a pre-annotation job sends,
        all in flight at once); a server that does not answer in time is a coded 503."""
        import ray
        from ray import serve

        from annoray.scheduler.preannotation import REQUEST_SIZE
        from annoray.serve_apps.server import app_name

        if not ray.is_initialized():
            raise Unavailable(Errors.E610)
        try:
            handle = serve.get_app_handle(app_name(server_id))
            responses = [handle.remote(inputs[at:at + REQUEST_SIZE]) for at in range(0, len(inputs), REQUEST_SIZE)]
            return [output for response in responses for output in response.result(timeout_s=timeout_s)]
        except Exception as exc:  # the app is gone (deleted meanwhile), a replica died, the time ran out
            raise Unavailable(Errors.E1011.format(server_id=server_id, why=describe(exc))) from exc
