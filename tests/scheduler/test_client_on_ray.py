"""The API never waits on the scheduler without end: a scheduler that does not answer within the settings' timeout is
a coded 503, and the request thread is free again."""

import time

import pytest
import ray

from annoray.platform.errors import Unavailable
from annoray.scheduler.client import SchedulerClient

from ..conftest import scheduler_settings

pytestmark = [pytest.mark.ray]


@ray.remote
class StuckScheduler:
    """Answers its views, never a cancel."""

    def cluster_view(self) -> dict:
        return {"nodes": []}

    def cancel(self, job_id: int, username: str) -> str:
        time.sleep(60)
        return "cancelled"


def test_a_scheduler_that_does_not_answer_in_time_is_a_coded_503(ray_session, tmp_path) -> None:
    settings = scheduler_settings(tmp_path / "home")
    settings = settings.model_copy(update={"scheduler": settings.scheduler.model_copy(update={"call_timeout_s": 1.0})})
    actor = StuckScheduler.options(name=settings.scheduler.name, namespace=settings.scheduler.namespace,
                                   max_concurrency=4).remote()
    try:
        ray.get(actor.cluster_view.remote())  # started: the timeout below is the call's, not a cold worker's
        client = SchedulerClient(settings)
        assert client.cluster() == {"nodes": []}, "an answer in time comes back"
        with pytest.raises(Unavailable) as refused:
            client.cancel(None, 1, "admin")  # type: ignore[arg-type]  (a running scheduler: the sessions are not read)
        assert refused.value.detail.startswith("[E627]") and "no answer within 1 s" in refused.value.detail, refused.value.detail
    finally:
        ray.kill(actor)
