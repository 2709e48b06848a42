"""annoray behind a real Label Studio (the PyPI package, started here on loopback with a data folder of its own and a
user token set on its command line), driven through Label Studio's own API (``label-studio-sdk``): the ML backend
connected, annotations made in Label Studio arriving as completions, active learning retraining from them,
predictions retrieved by Label Studio, updates, deletes and a redelivered event, and ``annoray ls sync`` both ways."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from annoray.api.cli import app as cli
from annoray.api.server import free_port

from ..conftest import NAMES, Api, clinical_sentences, live_api, register_models, scheduler_settings, wait_for_trainings

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(900)]

CONFIG = """<View>
  <Labels name="label" toName="text"><Label value="Drug"/></Labels>
  <Text name="text" value="$text"/>
</View>"""
LS_TOKEN = "0123456789abcdef0123456789abcdef01234567"
EVERY = 20
PARAMS = {"epochs": 20, "batch_size": 4, "dropout": 0.1}


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Label Studio server of this module's own; the tests skip when it is not installed, and fail when it is but
    cannot start (a broken install must not pass as a skip)."""
    binary = shutil.which("label-studio", path=str(Path(sys.executable).parent)) or shutil.which("label-studio")
    if binary is None:
        pytest.skip("Label Studio is not installed (pip install -e '.[dev]' installs it)")
    port, data = free_port(), tmp_path_factory.mktemp("label-studio")
    url = f"http://127.0.0.1:{port}"
    env = os.environ | {"LABEL_STUDIO_BASE_DATA_DIR": str(data), "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
                        "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "", "COLLECT_ANALYTICS": "false"}
    log = (data / "label-studio.log").open("w")
    process = subprocess.Popen(
        [binary, "start", "--no-browser", "--data-dir", str(data), "--internal-host", "127.0.0.1", "-p", str(port),
         "--host", url, "--username", "lead@example.com", "--password", "lead-password-1", "--user-token", LS_TOKEN,
         "--enable-legacy-api-token"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        while True:
            try:
                if httpx.get(f"{url}/api/current-user/whoami", headers={"Authorization": f"Token {LS_TOKEN}"}, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                tail = (data / "label-studio.log").read_text()[-1500:]
                pytest.fail(f"Label Studio is installed but did not start (exit {process.poll()}): {tail}")
            time.sleep(1)
        yield url
    finally:
        os.killpg(process.pid, 15)
        process.wait(30)
        log.close()


@pytest.fixture
def annoray(ray_session: None, label_studio: str, tmp_path: Path) -> Iterator[Api]:
    """annoray with its scheduler, allowed to call this Label Studio; a model judged on a single held-out example may
    deploy (a handful of annotations train here, where a team's project holds the default 20 back)."""
    settings = scheduler_settings(tmp_path / "home")
    with live_api(settings.model_copy(update={
            "deploy": settings.deploy.model_copy(update={"min_held_out": 1}),
            "label_studio": settings.label_studio.model_copy(update={"allowed_urls": [label_studio]})})) as api:
        yield api


def studio(url: str):  # noqa: ANN201  (the SDK's client)
    from label_studio_sdk import LabelStudio

    return LabelStudio(base_url=url, api_key=LS_TOKEN)


def drug(text: str, start: int, end: int) -> list[dict]:
    return [{"from_name": "label", "to_name": "text", "type": "labels",
             "value": {"start": start, "end": end, "text": text[start:end], "labels": ["Drug"]}}]


def wait(what: str, probe, timeout: float = 240.0):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)
    return value


def clinic(label_studio: str, annoray: Api, title: str):  # noqa: ANN201
    """Label Studio's client, a Label Studio project of the clinical sentences and its tasks; annoray's user "lead"
    (its token) and their client."""
    ls = studio(label_studio)
    project = ls.projects.create(title=title, label_config=CONFIG)
    ls.projects.import_tasks(id=project.id, request=[{"text": text} for text, *_ in clinical_sentences()])
    lead = annoray.admin.post("/api/users", json={"username": "lead"}).json()
    return ls, project, sorted(ls.tasks.list(project=project.id), key=lambda t: t.id), lead, annoray.client(lead["token"])


def test_label_studio_annotates_annoray_trains_and_predicts(label_studio: str, annoray: Api) -> None:
    ls, project, tasks, lead, client = clinic(label_studio, annoray, "Clinical notes")
    sentences = clinical_sentences()

    # 1. connect annoray as the project's model: Basic authentication, the annoray token as the password
    backend = ls.ml.create(url=f"{annoray.url}/ls", project=project.id, title="annoray", auth_method="BASIC_AUTH",
                           basic_auth_user="label-studio", basic_auth_pass=lead["token"])
    state = ls.ml.get(id=backend.id)
    assert state.state == "CO", f"Label Studio says the backend is connected, not {state.state}: {state.error_message}"
    (linked,) = client.get("/api/projects").json()
    pid = linked["id"]
    assert linked["kinds"]["ner"]["labels"] == ["Drug"], "the project was made from Label Studio's config"
    hook = wait("annoray's credentials on Label Studio's webhook", lambda: next(
        (h for h in ls.webhooks.list(project=project.id) if (h.headers or {}).get("Authorization")), None), 60)
    assert hook.url == f"{annoray.url}/ls/webhook"
    assert client.put(f"/api/projects/{pid}/active-learning", json={
        "enabled": True, "every": EVERY, "deploy": True, "params": PARAMS}).status_code == 200

    # 2. annotations made in Label Studio arrive as completions, and the EVERY-th trains
    made = {}
    for task, (text, start, end, *_) in zip(tasks[:EVERY], sentences):
        made[task.id] = ls.annotations.create(id=task.id, result=drug(text, start, end))
    completed = client.get(f"/api/projects/{pid}/tasks", params={"completed": True}).json()
    assert completed["total"] == EVERY
    members = {m["username"]: m["role"] for m in client.get(f"/api/projects/{pid}/members").json()}
    assert members[f"ls-{made[tasks[0].id].completed_by}@127.0.0.1:{label_studio.rsplit(':', 1)[1]}"] == "annotator"
    trainings = wait("the active-learning training", lambda: client.get(f"/api/projects/{pid}/trainings").json(), 60)
    assert trainings[0]["source"] == "active_learning"
    wait_for_trainings(client, [trainings[0]["id"]])

    # 3. Label Studio retrieves predictions: the first ask deploys the project's server, a later one is answered
    def retrieve() -> list:
        ls.actions.create(id="retrieve_tasks_predictions", project=project.id, selected_items={"all": True, "excluded": []})
        return list(ls.predictions.list(task=tasks[-1].id))
    (prediction,) = wait("predictions in Label Studio", retrieve, 300)
    assert prediction.model_version.startswith("annoray-") or ":" in prediction.model_version
    regions = prediction.result
    assert regions and regions[0]["value"]["labels"] == ["Drug"] and 0 < regions[0]["score"] <= 1
    text, start, end, *_ = sentences[len(tasks) - 1]
    assert (regions[0]["value"]["start"], regions[0]["value"]["end"]) == (start, end), "the chunk is the drug"
    assert 0 < prediction.score <= 1

    # 4. an update and a delete in Label Studio reach annoray; a redelivered event changes nothing
    first = tasks[0]
    ls.annotations.update(id=made[first.id].id, result=[])
    annoray_task = next(t for t in client.get(f"/api/projects/{pid}/tasks").json()["items"] if t["data"]["text"] == first.data["text"])
    (completion,) = client.get(f"/api/projects/{pid}/tasks/{annoray_task['id']}").json()["completions"]
    assert completion["result"] == []
    ls.annotations.delete(id=made[first.id].id)
    assert client.get(f"/api/projects/{pid}/tasks/{annoray_task['id']}").json()["completions"] == []
    second = tasks[1]
    event = {"action": "ANNOTATION_CREATED", "project": {"id": project.id, "created_at": project.created_at.isoformat()},
             "task": {"id": second.id, "data": second.data}, "annotation": ls.annotations.get(id=made[second.id].id).model_dump(mode="json")}
    before = annoray.snapshot()
    again = httpx.post(hook.url, json=event, headers=hook.headers, timeout=60)
    assert again.status_code == 200, again.text
    assert annoray.snapshot() == before, "a redelivered event changes nothing"
    for server in client.get("/api/servers").json():  # Ray is the session's: free what the server holds
        assert client.delete(f"/api/servers/{server['id']}").status_code == 204


def test_sync_pulls_annotations_and_pushes_predictions(label_studio: str, annoray: Api) -> None:
    ls, project, tasks, lead, client = clinic(label_studio, annoray, "Pulled notes")
    sentences = clinical_sentences()
    for task, (text, start, end, *_) in zip(tasks[:EVERY], sentences):
        ls.annotations.create(id=task.id, result=drug(text, start, end))
    env = {"ANNORAY_URL": annoray.url, "ANNORAY_TOKEN": lead["token"]}
    args = ["ls", "sync", "--url", label_studio, "--token", LS_TOKEN, "--project", str(project.id), "--page-size", "3"]

    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    assert f"{len(sentences)} tasks, {EVERY} completions" in result.output
    (linked,) = client.get("/api/projects").json()
    pid = linked["id"]
    assert client.get(f"/api/projects/{pid}/tasks", params={"completed": True}).json()["total"] == EVERY
    before = annoray.snapshot()
    assert CliRunner().invoke(cli, args, env=env).exit_code == 0
    assert annoray.snapshot() == before, "a second sync changes nothing"

    # annoray's predictions (a job of a server of the project, with a model trained elsewhere) go back to Label Studio,
    # once (a model trained from Label Studio's annotations is served in the test above)
    register_models(annoray)
    assert annoray.admin.patch(f"/api/models/{NAMES['ner']}", json={"shared": True}).status_code == 200
    server = client.post("/api/servers", json={"project_id": pid, "models": [NAMES["ner"]]})
    assert server.status_code == 202, server.text
    server = server.json()
    wait("the server", lambda: client.get(f"/api/servers/{server['id']}").json()["status"] == "running", 300)
    run = client.post(f"/api/projects/{pid}/preannotations", json={"server_id": server["id"]}).json()
    wait("the pre-annotation job", lambda: client.get(f"/api/preannotations/{run['id']}").json()["status"] == "succeeded", 300)
    pushed = CliRunner().invoke(cli, [*args, "--push-predictions"], env=env)
    assert pushed.exit_code == 0 and f"{len(sentences) - EVERY} predictions pushed" in pushed.output, pushed.output
    (prediction,) = ls.predictions.list(task=tasks[-1].id)
    assert prediction.result[0]["value"]["labels"] == ["Drug"] and 0 < prediction.result[0]["score"] <= 1
    again = CliRunner().invoke(cli, [*args, "--push-predictions"], env=env)
    assert "0 predictions pushed" in again.output, again.output
    assert client.delete(f"/api/servers/{server['id']}").status_code == 204
