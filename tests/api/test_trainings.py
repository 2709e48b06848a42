"""Training through HTTP: requests checked whole before queueing, Ray Train runs, catalog, logs and history."""

import threading

import httpx
import pytest

from ..conftest import GERMAN, NER_CONFIG, Api, german_project, refused, span_task, wait_for_trainings

# --- refused before anything is queued (no Ray needed) -------------------------------------------------

@pytest.fixture
def clinic(api: Api, clinical_config: str, clinical_tasks: list) -> tuple[int, httpx.Client]:
    owner = api.user("olivia")
    pid = owner.post("/api/projects", json={"name": "clinic", "labeling_config": clinical_config}).json()["id"]
    assert owner.post(f"/api/projects/{pid}/tasks/import", json=clinical_tasks[:60]).status_code == 201
    return pid, owner


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
    assert body["errors"][0]["message"].startswith("[E601]")
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


# --- on Ray -----------------------------------------------------------------------------------------------


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_mixed_project_trains_three_models_in_one_request(training_api: Api, clinical_config: str, clinical_tasks: list) -> None:
    owner = training_api.admin
    pid = owner.post("/api/projects", json={"name": "Clinical notes", "labeling_config": clinical_config}).json()["id"]
    assert owner.post(f"/api/projects/{pid}/tasks/import", json=clinical_tasks).status_code == 201
    created = owner.post(f"/api/projects/{pid}/trainings", json={"params": {"epochs": 3, "learning_rate": 0.002}})
    assert created.status_code == 202, created.text
    jobs = created.json()["jobs"]
    assert [j["kind"] for j in jobs] == ["ner", "assertion", "classification"]
    assert any("[E302] label 'Not particular'" in w for w in created.json()["warnings"])

    followed: list[str] = []
    follower = threading.Thread(target=lambda: followed.append(owner.get(f"/api/trainings/{jobs[0]['id']}/log", params={"follow": "true"}, timeout=900).text))
    follower.start()
    final, seen = wait_for_trainings(owner, [j["id"] for j in jobs], timeout=800)
    follower.join(timeout=60)

    for job, history in zip(final, seen, strict=True):
        assert job["status"] == "succeeded", job
        epochs = [s["progress"]["epoch"] for s in history]
        assert epochs == sorted(epochs) and epochs[-1] == 3 and job["progress"]["percent"] == 100.0
        model = owner.get(f"/api/models/{job['model']}").json()
        assert model["training_job_id"] == job["id"] and model["metrics"] == job["metrics"]
        assert set(model["metrics"]) >= {"micro", "macro", "per_label"}
    ner, assertion, classification = final
    assert ner["model"] == "ner_clinical_notes_annotation_manual"
    assert assertion["model"] == "assertion_clinical_notes_annotation_manual"
    assert classification["model"] == "classification_temporality_annotation_manual"
    assert ner["metrics"]["micro"]["f1"] > 0.3  # learned: an untrained model scores 0
    matrix = owner.get(f"/api/models/{classification['model']}").json()["metrics"]["confusion_matrix"]
    assert matrix["labels"] == ["Recent", "Historical", "Not particular"]
    assert sum(map(sum, matrix["matrix"])) == classification["data"]["test_examples"]

    log = owner.get(f"/api/trainings/{ner['id']}/log").text
    for expected in ("parameters: epochs=3, learning_rate=0.002", "versions: annoray", "spacy 3.8", "data: 1490 tasks",
                     "examples per label: Condition=", "epoch 1/3", "epoch 3/3", "final metrics on the held-out split",
                     "model 'ner_clinical_notes_annotation_manual' saved"):
        assert expected in log, expected
    assert followed and followed[0] == log
    twin = owner.get(f"/api/trainings/{classification['id']}/log", params={"format": "json"}).json()
    assert [e["epoch"] for e in twin["epochs"]] == [1, 2, 3] and twin["metrics"]["metrics"] == classification["metrics"]
    assert twin["request"]["params"]["epochs"] == 3 and twin["start"]["versions"]["ray"]
    assert twin["data"]["label_counts"]["Recent"] > 0
    history = owner.get(f"/api/projects/{pid}/trainings").json()
    assert [(h["id"], h["source"], h["status"]) for h in history] == [(j["id"], "manual", "succeeded") for j in reversed(final)]
    assert all(h["data"]["tasks_selected"] == 1490 and h["log"] == f"/api/trainings/{h['id']}/log" for h in history)


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_german_training_works_the_same_way_and_versions_never_overwrite(training_api: Api, tmp_path) -> None:
    owner = training_api.admin
    vectors = tmp_path / "de.vec"
    vectors.write_text("".join(f"{w} {i * 0.1:.2f} {1 - i * 0.1:.2f} 0.5\n" for i, w in enumerate(GERMAN + ["Patient", "klagt"])))
    assert owner.post("/api/models", json={"name": "de_vectors", "uri": str(vectors), "language": "de"}).status_code == 201
    pid = german_project(owner)
    body = {"params": {"epochs": 12, "learning_rate": 0.005, "batch_size": 4, "validation_split": 0.25}, "embeddings": "de_vectors"}
    first = owner.post(f"/api/projects/{pid}/trainings", json=body).json()["jobs"][0]["id"]
    second = owner.post(f"/api/projects/{pid}/trainings", json=body | {"embeddings": None}).json()["jobs"][0]["id"]
    (a, b), _ = wait_for_trainings(owner, [first, second])
    assert (a["status"], b["status"]) == ("succeeded", "succeeded"), (a, b)
    assert {a["model"], b["model"]} == {"ner_klinik_annotation_manual", "ner_klinik_annotation_manual_v2"}
    models = {m["name"]: m for m in owner.get("/api/models").json()}
    assert models[a["model"]]["language"] == "de" and models[a["model"]]["embeddings"] == "de_vectors"
    assert models[b["model"]]["embeddings"] is None
    assert a["metrics"]["per_label"]["Befund"]["f1"] == 1.0
    store = training_api.settings.resolved_model_store
    runs = training_api.settings.resolved_training_storage
    import os

    import spacy

    assert not any(name.startswith("training-") for name in os.listdir(runs)), "checkpoints kept after success"

    nlp = spacy.load(f"{store}/{a['model']}")
    assert nlp.lang == "de" and nlp.vocab.vectors.n_keys == len(GERMAN) + 2
    doc = nlp("Der Patient klagt seit Montag über Fieber und Schmerzen.")
    assert [(e.text, e.label_) for e in doc.ents] == [("Fieber", "Befund")]


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_cancelling_a_running_training_stops_its_run(training_api: Api) -> None:
    owner = training_api.admin
    pid = german_project(owner)
    job = owner.post(f"/api/projects/{pid}/trainings", json={"params": {"epochs": 500, "batch_size": 1}}).json()["jobs"][0]["id"]
    wait_for_trainings(owner, [job], until=lambda j: j["progress"]["epoch"] >= 1)
    cancelled = owner.post(f"/api/trainings/{job}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    (after,), _ = wait_for_trainings(owner, [job], timeout=10)
    epoch = after["progress"]["epoch"]
    import time

    time.sleep(3)
    assert owner.get(f"/api/trainings/{job}").json()["progress"]["epoch"] <= epoch + 1, "the run kept training"
    assert owner.get(f"/api/trainings/{job}/log").text.rstrip().endswith("[E611] cancelled by admin")
    assert owner.get("/api/models").json() == []


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_crash_in_training_fails_the_job_with_the_reason_and_where_it_stopped(training_api: Api, tmp_path) -> None:
    owner = training_api.admin
    broken = tmp_path / "broken.vec"
    broken.write_text("Fieber 0.1 zero\n")
    assert owner.post("/api/models", json={"name": "broken", "uri": str(broken), "language": "de"}).status_code == 201
    pid = german_project(owner)
    job = owner.post(f"/api/projects/{pid}/trainings", json={"embeddings": "broken", "params": {"epochs": 2}}).json()["jobs"][0]["id"]
    (failed,), _ = wait_for_trainings(owner, [job])
    assert failed["status"] == "failed"
    assert failed["error"].startswith("[E609] training crashed:") and "could not convert string to float" in failed["error"]
    log = owner.get(f"/api/trainings/{job}/log").text
    assert "failed before the first epoch ended: [E609]" in log
    assert owner.get("/api/models", params={"kind": "ner"}).json() == []
