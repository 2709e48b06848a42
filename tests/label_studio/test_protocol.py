"""The Label Studio ML backend protocol over real HTTP, driven as Label Studio drives it (its calls' JSON as Label
Studio 1.23 sends them): setup links or makes a project, events become completions once, and bad calls change nothing."""

import base64
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from annoray.api.app import create_app
from annoray.api.server import BackgroundServer
from annoray.platform.store.home import init_home

from ..conftest import Api, refused

pytestmark = pytest.mark.both_databases  # idempotency rests on the store's unique indexes

CONFIG = """<View>
  <Labels name="label" toName="text"><Label value="Drug"/><Label value="Condition"/></Labels>
  <Text name="text" value="$text"/>
</View>"""
CREATED = datetime(2026, 11, 23, 13, 5, 12, 345678, tzinfo=UTC)
UID = f"7.{int(CREATED.timestamp())}"
TEXT = "Patient took aspirin for headache."


def basic(token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"labelstudio:{token}".encode()).decode()}


@pytest.fixture
def backend(api: Api) -> tuple[httpx.Client, httpx.Client]:
    """A user's token sent the way Label Studio sends it (Basic authentication, the token as the password), and the
    same user's API client."""
    token = api.admin.post("/api/users", json={"username": "lead"}).json()["token"]
    return httpx.Client(base_url=api.url, headers=basic(token), timeout=60), api.client(token)


def event(action: str, annotation: dict | None = None, task: dict | None = None, **more) -> dict:
    body = {"action": action, "project": {"id": 7, "created_at": CREATED.isoformat().replace("+00:00", "Z"), "title": "p"}}
    if annotation is not None:
        body["annotation"] = annotation
    if task is not None:
        body["task"] = task
    return body | more


def annotation(ls_id: int, task_id: int, user_id: int, start: int = 13, end: int = 20, label: str = "Drug", **more) -> dict:
    return {"id": ls_id, "task": task_id, "project": 7, "completed_by": user_id, "was_cancelled": False,
            "result": [{"id": f"r{ls_id}", "from_name": "label", "to_name": "text", "type": "labels",
                        "value": {"start": start, "end": end, "text": TEXT[start:end], "labels": [label]}}]} | more


def test_setup_links_once_reuses_a_matching_project_and_refuses_what_it_cannot_use(api: Api, backend) -> None:
    ls, client = backend
    assert ls.get("/ls/health").json()["status"] == "UP"
    anonymous = httpx.get(f"{api.url}/ls/health")
    assert anonymous.status_code == 401 and "[E1009]" in anonymous.json()["detail"]
    assert httpx.get(f"{api.url}/ls/health", headers=basic("ar_wrong")).status_code == 401

    before = api.snapshot()
    bad = ls.post("/ls/setup", json={"project": UID, "schema": "<View><Labels name='x' toName='nowhere'/></View>"})
    assert bad.status_code == 422 and bad.json()["errors"], bad.text
    assert api.snapshot() == before, "a config annoray cannot use links nothing and makes nothing"
    assert ls.post("/ls/setup", json={"project": "not-a-uid", "schema": CONFIG}).status_code == 422

    mine = client.post("/api/projects", json={"name": "mine", "labeling_config": CONFIG.replace("  ", "")})
    first = ls.post("/ls/setup", json={"project": UID, "schema": CONFIG, "hostname": "http://ls.example:8080"})
    assert first.status_code == 200 and first.json()["model_version"] == "annoray-untrained"
    assert first.json()["webhook"].startswith("[E1015] webhook registration is off"), "no Label Studio is listed"
    again = ls.post("/ls/setup", json={"project": UID, "schema": CONFIG})
    assert again.status_code == 200
    projects = client.get("/api/projects").json()
    assert [p["id"] for p in projects] == [mine.json()["id"]], "the project asking for the same labels is reused, once"

    other = f"8.{int(CREATED.timestamp())}"
    assert ls.post("/ls/setup", json={"project": other, "schema": CONFIG}).status_code == 200
    assert len(client.get("/api/projects").json()) == 2, "a second Label Studio project gets a project of its own"

    stranger = httpx.Client(base_url=api.url, headers=basic(api.admin.post("/api/users", json={"username": "x"}).json()["token"]))
    refused(api, lambda: stranger.post("/ls/setup", json={"project": UID, "schema": CONFIG}), 403)
    refused(api, lambda: stranger.get("/ls/predictions", params={"project": UID}), 403)
    assert ls.get("/ls/predictions", params={"project": UID}).json() == {"items": [], "next": None}
    refused(api, lambda: ls.post("/ls/predict", json={"project": "9.1", "tasks": [{"id": 1, "data": {"text": TEXT}}]}), 409)


def test_annotation_events_become_completions_once_and_count_for_active_learning(api: Api, backend) -> None:
    ls, client = backend
    assert ls.post("/ls/setup", json={"project": UID, "schema": CONFIG, "hostname": "http://ls.example:8080"}).status_code == 200
    pid = client.get("/api/projects").json()[0]["id"]
    assert client.put(f"/api/projects/{pid}/active-learning", json={"enabled": True, "every": 2}).status_code == 200
    task = {"id": 101, "data": {"text": TEXT}, "project": 7}

    made = ls.post("/ls/webhook", json=event("ANNOTATION_CREATED", annotation(1, 101, 3), task))
    assert made.status_code == 200, made.text
    before = api.snapshot()
    assert ls.post("/ls/webhook", json=event("ANNOTATION_CREATED", annotation(1, 101, 3), task)).json() == made.json()
    assert api.snapshot() == before, "a redelivered event changes nothing"

    tasks = client.get(f"/api/projects/{pid}/tasks").json()["items"]
    assert len(tasks) == 1 and tasks[0]["data"] == {"text": TEXT}
    detail = client.get(f"/api/projects/{pid}/tasks/{tasks[0]['id']}").json()
    (completion,) = detail["completions"]
    assert completion["status"] == "submitted" and completion["result"][0]["value"]["labels"] == ["Drug"]
    members = {m["username"]: m for m in client.get(f"/api/projects/{pid}/members").json()}
    assert members["ls-3@ls.example:8080"]["role"] == "annotator", "a Label Studio user is an annotator on first sight"
    assert client.get(f"/api/projects/{pid}/active-learning").json()["counter"] == 1

    updated = ls.post("/ls/webhook", json=event("ANNOTATION_UPDATED", annotation(1, 101, 3, 25, 33, "Condition"), task))
    assert updated.json()["completions"] == made.json()["completions"]
    (completion,) = client.get(f"/api/projects/{pid}/tasks/{tasks[0]['id']}").json()["completions"]
    assert completion["result"][0]["value"] == {"start": 25, "end": 33, "text": "headache", "labels": ["Condition"]}
    assert client.get(f"/api/projects/{pid}/active-learning").json()["counter"] == 1, "an edit never counts again"

    before = api.snapshot()
    bad = ls.post("/ls/webhook", json=event("ANNOTATION_CREATED", annotation(2, 101, 3, label="Nope"), task))
    assert bad.status_code == 422 and api.snapshot() == before

    review = ls.post("/ls/webhook", json=event("REVIEW_CREATED", review={"annotation": 1, "accepted": False, "created_by": 4}))
    assert review.status_code == 200 and review.json()["completion"] == completion["id"]
    assert client.get(f"/api/projects/{pid}/tasks/{tasks[0]['id']}").json()["completions"][0]["review_status"] == "rejected"
    members = {m["username"]: m for m in client.get(f"/api/projects/{pid}/members").json()}
    assert members["ls-4@ls.example:8080"]["role"] == "reviewer"

    second = {"id": 102, "data": {"text": TEXT}, "project": 7}
    ls.post("/ls/webhook", json=event("ANNOTATION_CREATED", annotation(3, 102, 3), second))
    assert client.get(f"/api/projects/{pid}/active-learning").json()["pending"] is True, "the second eligible task makes a training due"

    gone = ls.post("/ls/webhook", json=event("ANNOTATIONS_DELETED", annotations=[{"id": 3}, {"id": 99}]))
    assert gone.json()["removed"] == 1
    assert client.get(f"/api/projects/{pid}/tasks", params={"completed": True}).json()["total"] == 1
    assert ls.post("/ls/webhook", json=event("ANNOTATIONS_DELETED", annotations=[{"id": 3}])).json()["removed"] == 0
    assert ls.post("/ls/webhook", json=event("PROJECT_UPDATED")).json() == {"action": "PROJECT_UPDATED", "ignored": True}

    predicted = ls.post("/ls/predict", json={"project": UID, "tasks": [task]})
    assert predicted.status_code == 409 and "[E1006]" in predicted.json()["detail"], "no trained model yet: says how to get one"


def test_start_training_from_label_studio_queues_a_training_of_every_kind(api: Api, backend) -> None:
    ls, client = backend
    assert ls.post("/ls/setup", json={"project": UID, "schema": CONFIG}).status_code == 200
    pid = client.get("/api/projects").json()[0]["id"]
    for ls_id, (start, end, label) in enumerate([(13, 20, "Drug"), (25, 33, "Condition")] * 2, start=1):
        task = {"id": 100 + ls_id, "data": {"text": TEXT}, "project": 7}
        assert ls.post("/ls/webhook", json=event("ANNOTATION_CREATED", annotation(ls_id, 100 + ls_id, 3, start, end, label), task)).status_code == 200

    started = ls.post("/ls/webhook", json=event("START_TRAINING"))
    assert started.status_code == 200, started.text
    (job,) = started.json()["jobs"]
    assert client.get(f"/api/trainings/{job}").json()["deploy"] is True
    assert client.post(f"/api/trainings/{job}/cancel").status_code == 200
    older = ls.post("/ls/train", json={"project": UID, "annotations": []})
    assert older.status_code == 200, older.text
    assert [j["id"] for j in client.get(f"/api/projects/{pid}/trainings").json()][0] == int(older.json()["job"])


class Listener:
    """A local HTTP server that records every request it gets and answers each with ``status`` (and ``location``)."""

    def __init__(self, status: int = 200, location: str = "", body: bytes = b"[]"):
        seen = self.seen = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                seen.append(f"{self.command} {self.path}")
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            do_PATCH = do_POST = do_GET  # noqa: N815

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def test_setup_calls_only_a_listed_label_studio_follows_no_redirect_and_links_a_bounded_number(settings) -> None:
    """annoray as an SSRF vector: a setup naming an address the operator did not list sends nothing there, and a listed
    one that redirects elsewhere is not followed."""
    metadata, redirector = Listener(body=b"{}"), None
    redirector = Listener(status=302, location=f"{metadata.url}/latest/meta-data/iam/")
    listed = settings.model_copy(update={"label_studio": settings.label_studio.model_copy(
        update={"allowed_urls": [redirector.url + "/"], "max_links_per_user": 2}), "home": settings.home})
    engine = init_home(listed)
    try:
        with BackgroundServer(create_app(listed, engine=engine)) as url:
            token = httpx.post(f"{url}/api/users", json={"username": "lead"}, headers={
                "Authorization": f"Bearer {listed.admin_token_path.read_text().strip()}"}).json()["token"]
            ls = httpx.Client(base_url=url, headers=basic(token), timeout=60)
            setup = {"schema": CONFIG, "access_token": "t" * 40}
            hostile = ls.post("/ls/setup", json={**setup, "project": "7.1", "hostname": metadata.url + "/latest/meta-data/"})
            assert hostile.status_code == 403 and hostile.json()["detail"].startswith("[E1013]"), hostile.text
            assert ls.get("/ls/predictions", params={"project": "7.1"}).status_code == 409, "nothing linked"

            assert ls.post("/ls/setup", json={**setup, "project": "8.1", "hostname": redirector.url}).status_code == 200
            deadline = time.monotonic() + 30
            while len(redirector.seen) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert redirector.seen[:2] == ["GET /api/webhooks/?project=8"] * 2, "the listed Label Studio is asked, again"
            assert ls.post("/ls/setup", json={**setup, "project": "9.1", "hostname": redirector.url}).status_code == 200
            third = ls.post("/ls/setup", json={**setup, "project": "10.1", "hostname": redirector.url})
            assert third.status_code == 409 and third.json()["detail"].startswith("[E1014]"), "two links per user at most"
    finally:
        engine.dispose()
        redirector.close()
        metadata.close()
    assert metadata.seen == [], "neither the unlisted address nor a redirect to it was called"
