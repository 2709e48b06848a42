"""Slow work off the request thread: an upload, a config check or an import that outlasts the request's wait answers
202 with the work to poll; the work ends with the answer the request would have given, or its refusal."""

import time
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import update

from annoray.api.app import create_app
from annoray.api.server import BackgroundServer
from annoray.platform.settings import Settings
from annoray.platform.store.tables import WorkJob

from ..conftest import VISUAL_CONFIG
from .test_files import image_bytes, pdf_bytes


def polled(client: httpx.Client, url: str) -> dict:
    deadline = time.monotonic() + 120
    while (state := client.get(url).json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, state
        time.sleep(0.1)
    return state


def test_work_that_outlasts_the_wait_is_polled_to_its_answer_or_refusal_and_only_by_its_owner(settings: Settings, engine) -> None:
    at_once = settings.model_copy(update={"api": settings.api.model_copy(update={"work_wait_s": 0, "work_threads": 1})})
    token = settings.admin_token_path.read_text().strip()
    with BackgroundServer(create_app(at_once, engine=engine)) as url, \
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as admin:
        pid = admin.post("/api/projects", json={"name": "forms", "labeling_config": VISUAL_CONFIG}).json()["id"]
        accepted = admin.post(f"/api/projects/{pid}/files", params={"tasks": "true"},
                              files=[("file", ("a.pdf", pdf_bytes(20), "application/pdf"))])
        assert accepted.status_code == 202, accepted.text
        work = accepted.json()
        bad = admin.post(f"/api/projects/{pid}/files", files=[("file", ("a.png", b"not a png", "image/png"))])
        assert bad.status_code == 202, "queued behind the PDF, on the one thread"
        assert accepted.headers["location"] == work["url"] == f"/api/work/{work['id']}" and work["kind"] == "upload"

        stranger = admin.post("/api/users", json={"username": "stranger"}).json()["token"]
        other = httpx.get(f"{url}{work['url']}", headers={"Authorization": f"Bearer {stranger}"})
        assert other.status_code == 403, "someone else's work is not theirs to see"

        done = polled(admin, work["url"])
        assert done["status"] == "succeeded" and done["error"] is None and done["project_id"] == pid
        assert [p["page"] for p in done["result"]["items"][0]["pages"]] == list(range(1, 21))
        assert len(done["result"]["task_ids"]) == 20
        assert admin.get(f"/api/files/{done['result']['items'][0]['id']}").status_code == 200, "stored as it said"

        failed = polled(admin, bad.json()["url"])
        assert failed["status"] == "failed" and failed["result"] is None
        assert failed["error"]["status"] == 422 and failed["error"]["detail"].startswith("[E9"), failed["error"]
        assert len(admin.get(f"/api/projects/{pid}/files").json()) == 1, "a refused upload stores nothing"

        # work whose process stopped (a row still running long after it was asked for) is reported lost, not awaited
        lost = admin.post(f"/api/projects/{pid}/files", files=[("file", ("b.png", image_bytes(20, 20), "image/png"))]).json()
        polled(admin, lost["url"])
        with engine.begin() as conn:
            conn.execute(update(WorkJob).where(WorkJob.id == lost["id"]).values(
                status="running", created_at=datetime.now(UTC) - timedelta(days=1), result=None, finished_at=None))
        gone = admin.get(lost["url"]).json()
        assert gone["status"] == "failed" and gone["error"]["detail"].startswith("[E516]"), gone


def test_work_that_ends_within_the_wait_answers_as_the_request_always_did(api) -> None:
    pid = api.admin.post("/api/projects", json={"name": "forms", "labeling_config": VISUAL_CONFIG}).json()["id"]
    with httpx.Client(base_url=api.url, headers=api.admin.headers, timeout=60) as plain:  # no following of work
        refused = plain.post(f"/api/projects/{pid}/files", files=[("file", ("a.png", b"not a png", "image/png"))])
        assert refused.status_code == 422 and refused.json()["detail"].startswith("[E9")
        answers = {plain.post(f"/api/projects/{pid}/files", files=[("file", (f"{n}.png", image_bytes(30, 20), "image/png"))]
                              ).status_code for n in range(3)}
        assert answers <= {201, 202} and 201 in answers, "a small upload is done within the default second"
