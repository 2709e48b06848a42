"""Training on Ray through HTTP: another language, versions, cancel, a crash, an owner's config (three models in one
request, with the defaults: the dashboard's loop in `test_dashboard.py`)."""

import os
import time

import pytest
import spacy

from ..conftest import GERMAN, Api, german_project, wait_for_trainings

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(900)]


def test_german_training_works_the_same_way_versions_never_overwrite_and_a_small_project_deploys_only_by_force(
        training_api: Api, tmp_path) -> None:
    owner = training_api.admin
    vectors = tmp_path / "de.vec"
    vectors.write_text("".join(f"{w} {i * 0.1:.2f} {1 - i * 0.1:.2f} 0.5\n" for i, w in enumerate(GERMAN + ["Patient", "klagt"])))
    assert owner.post("/api/models", json={"name": "de_vectors", "uri": str(vectors), "language": "de"}).status_code == 201
    pid = german_project(owner)  # 16 tasks: four held out, fewer than the 20 that judge a model
    body = {"params": {"epochs": 12, "learning_rate": 0.005, "batch_size": 4, "validation_split": 0.25}, "embeddings": "de_vectors"}
    first = owner.post(f"/api/projects/{pid}/trainings", json=body | {"deploy": True}).json()["jobs"][0]["id"]
    second = owner.post(f"/api/projects/{pid}/trainings", json=body | {"embeddings": None, "deploy": "force"}).json()["jobs"][0]["id"]
    (a, b), _ = wait_for_trainings(owner, [first, second])
    assert (a["status"], b["status"]) == ("succeeded", "succeeded"), (a, b)
    assert {a["model"], b["model"]} == {"ner_klinik_annotation_manual", "ner_klinik_annotation_manual_v2"}
    models = {m["name"]: m for m in owner.get("/api/models").json()}
    assert models[a["model"]]["language"] == "de" and models[a["model"]]["embeddings"] == "de_vectors"
    assert models[b["model"]]["embeddings"] is None
    assert a["metrics"]["per_label"]["Befund"]["f1"] == 1.0
    store = training_api.settings.resolved_model_store
    runs = training_api.settings.resolved_training_storage
    assert not any(name.startswith("training-") for name in os.listdir(runs)), "checkpoints kept after success"

    nlp = spacy.load(f"{store}/{a['model']}")
    assert nlp.lang == "de" and nlp.vocab.vectors.n_keys == len(GERMAN) + 2
    doc = nlp("Der Patient klagt seit Montag über Fieber und Schmerzen.")
    assert [(e.text, e.label_) for e in doc.ents] == [("Fieber", "Befund")]

    # too few held-out examples to judge it: not deployed, even as the first of its kind, unless forced
    held = a["deployment"]
    assert a["deploy"] is True and held["decision"] == "not deployed", held
    assert held["reason"].startswith(f"[E618] the model was not deployed: it was scored on {held['held_out']} held-out")
    assert "deploy: not deployed" in owner.get(f"/api/trainings/{a['id']}/log").text
    assert (b["deploy"], b["deployment"]["decision"], b["deployment"]["forced"]) == ("force", "deployed", True)
    assert f'model="{b["model"]}"' in owner.get(f"/api/projects/{pid}").json()["labeling_config"]


def test_cancelling_a_running_training_stops_its_run(training_api: Api) -> None:
    owner = training_api.admin
    pid = german_project(owner)
    job = owner.post(f"/api/projects/{pid}/trainings", json={"params": {"epochs": 500, "batch_size": 1}}).json()["jobs"][0]["id"]
    wait_for_trainings(owner, [job], until=lambda j: j["progress"]["epoch"] >= 1)
    cancelled = owner.post(f"/api/trainings/{job}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    from annoray.scheduler.factory import find_training_runner

    deadline = time.monotonic() + 30
    while find_training_runner(training_api.settings, job) is not None:  # Ray's own view: the run is gone
        assert time.monotonic() < deadline, "the run kept going after its job was cancelled"
        time.sleep(0.2)
    assert owner.get(f"/api/trainings/{job}").json()["status"] == "cancelled"
    assert owner.get(f"/api/trainings/{job}/log").text.rstrip().endswith("[E611] cancelled by admin")
    assert owner.get("/api/models").json() == []


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
    assert failed["attempts"] == 0 and "worker failed" not in log, "a second worker would raise it again: not retried"
    assert owner.get("/api/models", params={"kind": "ner"}).json() == []


def test_an_owners_config_with_an_admins_code_trains_on_ray_deploys_and_serves(ray_session, tmp_path) -> None:
    """Where the operator allows code: the config names an architecture the uploaded code registers; the API checks it,
    the training worker builds it, the model keeps the code, and the replica runs it before loading the model."""
    from pathlib import Path

    from ..conftest import live_api, scheduler_settings, wait_for
    from .test_training_configs import spacy_ner_config

    code = ("from spacy.util import registry\n\n"
            "@registry.architectures('annoray_test.Tok2Vec.v1')\n"
            "def tok2vec(embed, encode):\n"
            "    return registry.architectures.get('spacy.Tok2Vec.v2')(embed, encode)\n")
    config = spacy_ner_config("de").replace('@architectures = "spacy.Tok2Vec.v2"', '@architectures = "annoray_test.Tok2Vec.v1"')
    with live_api(scheduler_settings(tmp_path / "home", allow_custom_code=True)) as api:
        owner = api.admin
        pid = german_project(owner)
        created = owner.post(f"/api/projects/{pid}/training-configs", json={"name": "mine", "config": config, "code": code})
        assert created.status_code == 201, created.text
        job = owner.post(f"/api/projects/{pid}/trainings", json={
            "config": created.json()["id"], "deploy": "force", "params": {"epochs": 4, "batch_size": 1}}).json()["jobs"][0]
        (done,), _ = wait_for_trainings(owner, [job["id"]], timeout=300)
        assert done["status"] == "succeeded", done
        assert done["deployment"]["decision"] == "deployed" and done["metrics"]["micro"]["f1"] > 0.5, done
        model = owner.get(f"/api/models/{done['model']}").json()
        assert (Path(model["uri"]) / "annoray_code.py").read_text() == code, "the model keeps the code it needs"
        assert "annoray_test.Tok2Vec.v1" in (Path(model["uri"]) / "config.cfg").read_text()

        server = owner.post("/api/servers", json={"project_id": pid, "name": "mine"}).json()
        server = wait_for(api, f"/api/servers/{server['id']}", lambda s: s["status"] in ("running", "failed"), timeout=240)
        assert server["status"] == "running", server
        task = owner.post(f"/api/projects/{pid}/tasks/import", json=[{"data": {"text": "Der Patient klagt über Fieber."}}]).json()
        run = owner.post(f"/api/projects/{pid}/preannotations", json={"server_id": server["id"], "task_ids": task["task_ids"]}).json()
        run = wait_for(api, f"/api/preannotations/{run['id']}", lambda j: j["status"] in ("succeeded", "failed"))
        assert (run["status"], run["done"]) == ("succeeded", 1), run
        (prediction,) = owner.get(f"/api/projects/{pid}/tasks/{task['task_ids'][0]}/predictions").json()
        assert prediction["model_version"] == done["model"] or done["model"] in str(prediction), prediction
