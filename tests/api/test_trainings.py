"""Training requests through HTTP: checked whole before anything is queued; without a scheduler they wait."""

import time

import httpx
import pytest

from ..conftest import NER_CONFIG, Api, refused, span_task




def test_a_label_without_examples_refuses_the_whole_request(api: Api) -> None:
    owner = api.user("o")
    config = NER_CONFIG.replace('<Label value="{label}"/>', '<Label value="Drug"/><Label value="Dose"/>')
    pid = owner.post("/api/projects", json={"name": "p", "labeling_config": config}).json()["id"]
    owner.post(f"/api/projects/{pid}/tasks/import", json=[span_task("Take aspirin daily.", "aspirin", "Drug")])
    body = refused(api, lambda: owner.post(f"/api/projects/{pid}/trainings", json={}), 422)
    assert [e["message"] for e in body["errors"]] == ["[E301] label 'Dose' has no training example"]


@pytest.mark.parametrize("params,field", [
    ({"epochs": 0}, "epochs"), ({"learning_rate": 5}, "learning_rate"), ({"dropout": 1.0}, "dropout"),
    ({"batch_size": 0}, "batch_size"), ({"validation_split": 1.5}, "validation_split"), ({"momentum": 0.9}, "momentum"),
])
def test_parameters_out_of_range_are_refused(api: Api, clinic, params: dict, field: str) -> None:
    pid, owner = clinic
    body = refused(api, lambda: owner.post(f"/api/projects/{pid}/trainings", json={"params": params}), 422)
    assert any(field in str(e.get("field", "")) for e in body["errors"]), body


def test_an_engine_without_a_trainer_or_unavailable_here_is_refused(api: Api, clinic) -> None:
    pid, owner = clinic
    body = refused(api, lambda: owner.post(f"/api/projects/{pid}/trainings", json={"engine": "tensorflow"}), 422)
    assert {e["message"][:6] for e in body["errors"]} == {"[E601]"} and len(body["errors"]) == 3
    assert "available for ner: spacy" in body["errors"][0]["message"]


def test_a_language_the_engine_lacks_is_refused(api: Api, clinic) -> None:
    from annoray.trainers.engines import ENGINES, SpacyNer

    class EnglishOnly(SpacyNer):
        name = "englishonly.ner.v1"
        family = "englishonly"
        languages = ("en",)

    ENGINES[EnglishOnly.name] = EnglishOnly
    try:
        owner = api.user("g")
        pid = owner.post("/api/projects", json={"name": "de", "language": "de",
                                                "labeling_config": NER_CONFIG.format(label="Befund")}).json()["id"]
        body = refused(api, lambda: owner.post(f"/api/projects/{pid}/trainings", json={"engine": "englishonly"}), 422)
        assert body["errors"][0]["message"].startswith("[E603] language 'de' is not supported by engine 'englishonly.ner.v1'")
    finally:
        del ENGINES[EnglishOnly.name]


def test_unknown_embeddings_kinds_the_config_lacks_and_non_managers_are_refused(api: Api, clinic) -> None:
    pid, owner = clinic
    body = refused(api, lambda: owner.post(f"/api/projects/{pid}/trainings", json={"embeddings": "glove"}), 422)
    assert body["errors"][0]["message"].startswith("[E604] embeddings 'glove'")
    body = refused(api, lambda: owner.post(f"/api/projects/{pid}/trainings", json={"kinds": ["visual_ner"]}), 422)
    assert body["errors"][0]["message"] == "[E303] the project's labeling config has no visual_ner labels to train"
    api.user("ann")
    owner.post(f"/api/projects/{pid}/members", json={"username": "ann", "role": "annotator"})
    refused(api, lambda: api.clients["ann"].post(f"/api/projects/{pid}/trainings", json={}), 403)


def test_embeddings_register_only_by_an_admin_and_only_from_an_existing_file(api: Api, tmp_path) -> None:
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("fever 0.1 0.2\ncough 0.3 0.4\n")
    user = api.user("u")
    refused(api, lambda: user.post("/api/models", json={"name": "v", "uri": str(vectors)}), 403)
    refused(api, lambda: api.admin.post("/api/models", json={"name": "v", "uri": str(tmp_path / "none.txt")}), 422)
    assert api.admin.post("/api/models", json={"name": "v", "uri": str(vectors)}).status_code == 201
    refused(api, lambda: api.admin.post("/api/models", json={"name": "v", "uri": str(vectors)}), 409)
    assert [m["name"] for m in user.get("/api/models", params={"kind": "embeddings"}).json()] == ["v"]


def test_without_a_scheduler_requests_wait_queued_and_can_be_cancelled(api: Api, clinic) -> None:
    pid, owner = clinic
    created = owner.post(f"/api/projects/{pid}/trainings", json={"kinds": ["ner"]})
    assert created.status_code == 202, created.text
    (job,) = created.json()["jobs"]
    assert owner.get(f"/api/trainings/{job['id']}").json()["status"] == "queued"
    cancelled = owner.post(f"/api/trainings/{job['id']}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["error"] == "[E611] cancelled by olivia"
    refused(api, lambda: owner.post(f"/api/trainings/{job['id']}/cancel"), 409)
    assert "cancelled by olivia" in owner.get(f"/api/trainings/{job['id']}/log").text


def test_sixty_log_followers_of_a_queued_training_leave_other_requests_answered(api: Api) -> None:
    """A follower holds no thread while it waits for new lines: with 60 of them open, the API still answers."""
    import asyncio

    from ..conftest import german_project

    pid = german_project(api.admin)
    job = api.admin.post(f"/api/projects/{pid}/trainings", json={}).json()["jobs"][0]["id"]  # no scheduler: it stays queued
    followers = []  # ten members following six times each: within the streams one user may hold
    for i in range(10):
        api.user(f"reader{i}")
        assert api.admin.post(f"/api/projects/{pid}/members", json={"username": f"reader{i}", "role": "annotator"}).status_code == 201
        followers += [api.clients[f"reader{i}"].headers["Authorization"]] * 6

    async def follow_and_ask() -> tuple[list[str], int, int]:
        async with httpx.AsyncClient(base_url=api.url, headers=dict(api.admin.headers), timeout=60,
                                     limits=httpx.Limits(max_connections=100)) as client:
            streams = [client.stream("GET", f"/api/trainings/{job}/log", params={"follow": "true"}, headers={"Authorization": who})
                       for who in followers]
            responses = [await stream.__aenter__() for stream in streams]
            try:
                first = [await anext(response.aiter_text()) for response in responses]
                project = await client.get(f"/api/projects/{pid}")  # a sync route: it needs a thread of the pool
                status = await client.get(f"/api/trainings/{job}")
                return first, project.status_code, status.json()["status"] == "queued"
            finally:
                for stream in streams:
                    await stream.__aexit__(None, None, None)

    first, project, queued = asyncio.run(follow_and_ask())
    assert len(first) == 60 and all("queued" in text or "request" in text.lower() for text in first), first[0]
    assert project == 200 and queued


def test_live_streams_are_capped_per_user_and_end_for_a_job_that_waits_for_ever(settings, engine, clinical_config: str,
                                                                               clinical_tasks: list) -> None:
    """No scheduler here: the training stays queued for ever, and each follow of its log ends at the stream's limit."""
    from contextlib import ExitStack

    from annoray.api.app import create_app
    from annoray.api.server import BackgroundServer

    capped = settings.model_copy(update={"api": settings.api.model_copy(update={"max_streams_per_user": 2, "max_stream_seconds": 3})})
    with BackgroundServer(create_app(capped, engine=engine)) as url:
        api = Api(url, httpx.Client(base_url=url, headers={"Authorization": f"Bearer {settings.admin_token_path.read_text().strip()}"}),
                  engine, settings=capped)
        owner = api.user("olivia")
        pid = owner.post("/api/projects", json={"name": "clinic", "labeling_config": clinical_config}).json()["id"]
        owner.post(f"/api/projects/{pid}/tasks/import", json=clinical_tasks[:60])
        job = owner.post(f"/api/projects/{pid}/trainings", json={"kinds": ["ner"]}).json()["jobs"][0]["id"]
        log = f"/api/trainings/{job}/log"

        with ExitStack() as held:
            streams = [held.enter_context(owner.stream("GET", log, params={"follow": "true"})) for _ in range(2)]
            assert [s.status_code for s in streams] == [200, 200]
            third = owner.get(log, params={"follow": "true"})
            assert third.status_code == 429 and third.json()["detail"].startswith("[E418] you have 2 live streams open")
            ended = ["".join(s.iter_text()) for s in streams]  # returns only once the server ends each stream
        assert all(ended), "each stream sent the log so far, then ended by itself though the job still waits"
        assert owner.get(f"/api/trainings/{job}").json()["status"] == "queued"
        with owner.stream("GET", log, params={"follow": "true"}) as again:
            assert again.status_code == 200, "the slots came back when the streams ended"
