"""Visual NER through HTTP on a real Ray (a logical 16 CPU / 64 GB node): forms uploaded and OCR'd, their gold
regions imported, the layout-aware engine trained on Ray Train with the Visual NER spec and an `ocr:training` seat."""

import json
from importlib import resources

import pytest

from ..conftest import Api, license_document, wait_for, wait_for_trainings

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(600)]

FORMS = resources.files("annoray.platform") / "samples" / "forms"


def invoices(api: Api, count: int) -> int:
    """A project of ``count`` sample forms: uploaded, their tasks pointed at the pages, OCR done."""
    tasks = json.loads((FORMS / "tasks.json").read_text())[:count]
    pid = api.admin.post("/api/projects", json={"name": "invoices", "labeling_config": (FORMS / "config.xml").read_text()}).json()["id"]
    files = [("file", (t["data"]["ocr"], (FORMS / t["data"]["ocr"]).read_bytes(), "image/png")) for t in tasks]
    items = api.admin.post(f"/api/projects/{pid}/files", files=files).json()["items"]
    for task, item in zip(tasks, items, strict=True):
        task["data"]["ocr"] = item["pages"][0]["url"]
    assert api.admin.post(f"/api/projects/{pid}/tasks/import", json=tasks).status_code == 201
    for item in items:
        wait_for(api, f"/api/files/{item['id']}", lambda f: f["pages"][0]["ocr"] == "done", timeout=240)
    return pid


def test_visual_ner_is_refused_without_an_ocr_training_licence_then_trains_on_ray_train_with_layout(training_api: Api) -> None:
    api = training_api
    pid = invoices(api, 20)
    body = {"params": {"epochs": 6, "batch_size": 2, "learning_rate": 0.002}}
    assert api.admin.post(f"/api/projects/{pid}/trainings", json=body).json()["detail"].startswith(
        "[E707] needs a seat of license scope 'ocr:training'"), "no licence grants Visual NER training"

    license = api.admin.post("/api/licenses", json=license_document(["ocr:training"], seats=1)).json()
    (queued,) = api.admin.post(f"/api/projects/{pid}/trainings", json=body).json()["jobs"]
    job = api.admin.get(f"/api/trainings/{queued['id']}").json()
    assert (job["kind"], job["engine"], job["resources"]["cpus"], job["resources"]["memory_gb"], job["licenses"]) == (
        "visual_ner", "spacy.visual_ner.v1", 16, 64, ["ocr:training"])
    (done,), seen = wait_for_trainings(api.admin, [job["id"]], timeout=400)
    assert done["status"] == "succeeded", done
    assert [s["progress"]["epoch"] for s in seen[0]][-1] == 6
    metrics = done["metrics"]
    assert set(metrics["per_label"]) == {"Vendor", "Address", "InvoiceNumber", "Date", "Total"}
    assert metrics["micro"]["f1"] > 0.5, metrics["micro"]  # an untrained model finds nothing
    assert metrics["confusion_matrix"]["labels"] == ["Vendor", "Address", "InvoiceNumber", "Date", "Total", "O"]
    model = api.admin.get(f"/api/models/{done['model']}").json()
    assert (model["kind"], model["name"], model["labels"]) == ("visual_ner", "visual_ner_invoices_annotation_manual", ["Vendor", "Address", "InvoiceNumber", "Date", "Total"]), model
    log = api.admin.get(f"/api/trainings/{done['id']}/log").text
    assert "visual_ner model with engine spacy.visual_ner.v1" in log and "epoch 6/6" in log and "resources per worker: cpus=16.0" in log
    assert [(lic["id"], lic["leased"]) for lic in api.admin.get("/api/licenses").json()] == [(license["id"], 0)], "the seat came back"
