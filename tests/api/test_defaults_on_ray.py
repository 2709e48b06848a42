"""A user who presses Train without touching a parameter gets a model worth deploying: a mixed clinical project, trained
through HTTP on Ray in one request with each engine's defaults on a small sample, gives three models that each beat the
guess that needs no model on the same split; they follow, log and serve like any other. Visual NER's defaults are proven
the same way in its own loop (`scheduler/test_visual_ner_on_ray.py`), which trains with no parameter."""

import threading
import time

import pytest

from ..conftest import Api, wait_for_trainings

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(900)]

SAMPLE = 300  # annotated clinical sentences: every label of each kind


def test_the_mixed_project_trains_three_models_in_one_request_with_the_defaults_each_beating_a_guess_then_serves_them(
        training_api: Api, clinical_config: str, clinical_tasks: list) -> None:
    owner = training_api.admin
    engines = {e["name"]: e["defaults"] for e in owner.get("/api/engines").json()}
    defaults = engines["spacy.ner.v1"]
    epochs = defaults["epochs"]
    pid = owner.post("/api/projects", json={"name": "Clinical notes", "labeling_config": clinical_config}).json()["id"]
    assert owner.post(f"/api/projects/{pid}/tasks/import", json=clinical_tasks[:SAMPLE]).status_code == 201  # the quickstart trains on all
    created = owner.post(f"/api/projects/{pid}/trainings", json={})  # Train pressed without touching a parameter
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
        assert job["params"] == engines[job["engine"]], "a request that gives no parameter trains with the engine's defaults"
        assert job["metrics"]["micro"]["f1"] > job["metrics"]["reference"]["micro"]["f1"], ("beats a guess with no model", job)
        seen_epochs = [s["progress"]["epoch"] for s in history]
        assert seen_epochs == sorted(seen_epochs) and seen_epochs[-1] == epochs and job["progress"]["percent"] == 100.0
        model = owner.get(f"/api/models/{job['model']}").json()
        assert model["training_job_id"] == job["id"] and model["metrics"] == job["metrics"]
        assert set(model["metrics"]) >= {"micro", "macro", "per_label"}
    ner, assertion, classification = final
    assert ner["model"] == "ner_clinical_notes_annotation_manual"
    assert assertion["model"] == "assertion_clinical_notes_annotation_manual"
    assert classification["model"] == "classification_temporality_annotation_manual"
    matrix = owner.get(f"/api/models/{classification['model']}").json()["metrics"]["confusion_matrix"]
    assert matrix["labels"] == ["Recent", "Historical", "Not particular"]
    assert sum(map(sum, matrix["matrix"])) == classification["data"]["test_examples"]

    log = owner.get(f"/api/trainings/{ner['id']}/log").text
    for expected in (f"parameters: epochs={epochs}, learning_rate={defaults['learning_rate']}", "versions: annoray", "spacy 3.8", f"data: {SAMPLE} tasks",
                     "examples per label: Condition=", f"epoch 1/{epochs}", f"epoch {epochs}/{epochs}", "final metrics on the held-out split",
                     "model 'ner_clinical_notes_annotation_manual' saved"):
        assert expected in log, expected
    assert followed and followed[0] == log
    twin = owner.get(f"/api/trainings/{classification['id']}/log", params={"format": "json"}).json()
    assert [e["epoch"] for e in twin["epochs"]] == list(range(1, epochs + 1)) and twin["metrics"]["metrics"] == classification["metrics"]
    assert twin["request"]["params"]["epochs"] == epochs and twin["start"]["versions"]["ray"]
    assert twin["data"]["label_counts"]["Recent"] > 0
    history = owner.get(f"/api/projects/{pid}/trainings").json()
    assert [(h["id"], h["source"], h["status"]) for h in history] == [(j["id"], "manual", "succeeded") for j in reversed(final)]
    assert all(h["data"]["tasks_selected"] == SAMPLE and h["log"] == f"/api/trainings/{h['id']}/log" for h in history)

    # the trained models pre-annotate, through HTTP alone
    server = owner.post("/api/servers", json={"project_id": pid, "models": [j["model"] for j in final], "name": "clinical"})
    assert server.status_code == 202, server.text
    sid = server.json()["id"]
    deadline = time.monotonic() + 180
    while (state := owner.get(f"/api/servers/{sid}").json())["status"] != "running":
        assert state["status"] in ("queued", "deploying") and time.monotonic() < deadline, state
        time.sleep(0.5)
    assert [m["labels"] for m in state["models"]][2] == ["Recent", "Historical", "Not particular"]
    task_ids = [t["id"] for t in owner.get(f"/api/projects/{pid}/tasks", params={"page_size": 50}).json()["items"]]
    job = owner.post(f"/api/projects/{pid}/preannotations", json={"server_id": sid, "task_ids": task_ids}).json()
    deadline = time.monotonic() + 180
    while (done := owner.get(f"/api/preannotations/{job['id']}").json())["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, done
        time.sleep(0.5)
    assert (done["status"], done["done"], done["total"]) == ("succeeded", 50, 50)
    predictions = [p for t in task_ids for p in owner.get(f"/api/projects/{pid}/tasks/{t}/predictions").json()
                   if p["model_version"].startswith("clinical:")]
    assert len(predictions) == 50
    spans = [r for p in predictions for r in p["result"] if r["type"] == "labels"]
    assert spans and all(0 <= r["score"] <= 1 and r["value"]["text"] for r in spans)
    assert any(" " in r["value"]["text"] for r in spans), "multi-token chunks come back as one region"
    assert all(r["value"]["choices"][0] in ("Recent", "Historical", "Not particular") for p in predictions
               for r in p["result"] if r["type"] == "choices")
    first = predictions[0]
    tid = next(t for t in task_ids if any(p["id"] == first["id"] for p in owner.get(f"/api/projects/{pid}/tasks/{t}/predictions").json()))
    created = owner.post(f"/api/projects/{pid}/tasks/{tid}/completions/from-prediction/{first['id']}")
    assert created.status_code == 201, created.text
    assert owner.delete(f"/api/servers/{sid}").status_code == 204
