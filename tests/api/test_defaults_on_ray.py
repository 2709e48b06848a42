"""A user who presses Train without touching a parameter gets a model worth deploying: every kind, trained through
HTTP on Ray with its engine's defaults on a small sample, beats the guess that needs no model on the same split."""

import pytest

from ..conftest import Api, license_document, sample_forms, wait_for, wait_for_trainings

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(900)]

SAMPLE = 300  # annotated clinical sentences
FORMS = 20  # bundled sample invoices


def test_every_kind_trained_with_the_defaults_beats_a_guess_with_no_model(training_api: Api, clinical_config: str,
                                                                          clinical_tasks: list) -> None:
    api = training_api
    engines = {e["name"]: e["defaults"] for e in api.admin.get("/api/engines").json()}
    assert engines["spacy.visual_ner.v1"]["epochs"] > engines["spacy.ner.v1"]["epochs"], "a page is one example: more passes"
    assert api.admin.post("/api/licenses", json=license_document(["ocr:*"], seats=2)).status_code == 201
    clinic = api.admin.post("/api/projects", json={"name": "clinic", "labeling_config": clinical_config}).json()["id"]
    assert api.admin.post(f"/api/projects/{clinic}/tasks/import", json=clinical_tasks[:SAMPLE]).status_code == 201
    forms, _, items = sample_forms(api, FORMS)
    for item in items:
        wait_for(api, f"/api/files/{item['id']}", lambda f: f["pages"][0]["ocr"] in ("done", "failed"), timeout=300)

    jobs = [j["id"] for pid in (clinic, forms) for j in api.admin.post(f"/api/projects/{pid}/trainings", json={}).json()["jobs"]]
    final, _ = wait_for_trainings(api.admin, jobs, timeout=800)
    scores = {}
    for job in final:
        assert job["status"] == "succeeded", job
        assert job["params"] == engines[job["engine"]], "a request that gives no parameter trains with the engine's defaults"
        scores[job["kind"]] = (job["metrics"]["micro"]["f1"], job["metrics"]["reference"]["micro"]["f1"])
    assert set(scores) == {"ner", "assertion", "classification", "visual_ner"}
    assert all(model > guess for model, guess in scores.values()), scores
