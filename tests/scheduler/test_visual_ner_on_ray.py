"""Visual NER through HTTP on a real Ray (a logical 16 CPU / 64 GB node): forms uploaded and OCR'd, their gold
regions imported, the layout-aware engine trained with its defaults (no parameter given) on Ray Train with the Visual NER
spec and an `ocr:training` seat; it beats a guess with no model, deploys and draws labeled rectangles on new forms."""

import json
import logging
from importlib import resources
from pathlib import Path

import pytest
from sqlalchemy import text

from ..conftest import SECRET, Api, license_document, sample_forms, wait_for, wait_for_trainings

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(600)]

FORMS = resources.files("annoray.platform") / "samples" / "forms"


def ray_session_logs() -> str:
    """Ray's log folder of this session: the raylet's, the GCS's, and every worker's and actor's (annoray's scheduler,
    runners, Serve replicas, pre-annotation and OCR tasks)."""
    import ray

    return ray._private.worker._global_node.get_logs_dir_path()


def invoices(api: Api, count: int) -> int:
    """A project of ``count`` sample forms with their gold tasks, OCR done."""
    pid, _, items = sample_forms(api, count)
    for item in items:
        wait_for(api, f"/api/files/{item['id']}", lambda f: f["pages"][0]["ocr"] == "done", timeout=240)
    return pid


def test_visual_ner_trains_with_its_defaults_on_ray_train_with_an_ocr_seat_deploys_and_draws_labeled_rectangles(
        training_api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every log line of the API and annoray in this process, for the secrets check below
    api = training_api
    pid = invoices(api, 20)
    defaults = next(e["defaults"] for e in api.admin.get("/api/engines").json() if e["name"] == "spacy.visual_ner.v1")
    assert defaults["epochs"] > 10, "a page is one example: more passes than the text kinds"
    body = {"deploy": "force"}  # no parameter: the engine's defaults; 4 forms held out are too few to judge
    assert api.admin.post(f"/api/projects/{pid}/trainings", json=body).json()["detail"].startswith(
        "[E707] needs a seat of license scope 'ocr:training'"), "no licence grants Visual NER training"

    license = api.admin.post("/api/licenses", json=license_document(["ocr:training", "ocr:inference"], seats=2)).json()
    (queued,) = api.admin.post(f"/api/projects/{pid}/trainings", json=body).json()["jobs"]
    job = api.admin.get(f"/api/trainings/{queued['id']}").json()
    assert (job["kind"], job["engine"], job["resources"]["cpus"], job["resources"]["memory_gb"], job["licenses"]) == (
        "visual_ner", "spacy.visual_ner.v1", 16, 64, ["ocr:training"])
    (done,), seen = wait_for_trainings(api.admin, [job["id"]], timeout=400)
    assert done["status"] == "succeeded", done
    assert done["params"] == defaults and [s["progress"]["epoch"] for s in seen[0]][-1] == defaults["epochs"]
    metrics = done["metrics"]
    assert metrics["micro"]["f1"] > metrics["reference"]["micro"]["f1"], "beats a guess with no model (training runs of words)"
    assert set(metrics["per_label"]) == {"Vendor", "Address", "InvoiceNumber", "Date", "Total"}
    assert metrics["micro"]["f1"] > 0.5, metrics["micro"]  # an untrained model finds nothing
    assert metrics["confusion_matrix"]["labels"] == ["Vendor", "Address", "InvoiceNumber", "Date", "Total", "O"]
    model = api.admin.get(f"/api/models/{done['model']}").json()
    assert (model["kind"], model["name"], model["labels"]) == ("visual_ner", "visual_ner_invoices_annotation_manual", ["Vendor", "Address", "InvoiceNumber", "Date", "Total"]), model
    log = api.admin.get(f"/api/trainings/{done['id']}/log").text
    assert "visual_ner model with engine spacy.visual_ner.v1" in log and f"epoch {defaults['epochs']}/{defaults['epochs']}" in log and "resources per worker: cpus=16.0" in log
    assert [(lic["id"], lic["leased"]) for lic in api.admin.get("/api/licenses").json()] == [(license["id"], 0)], "the seat came back"

    # deployed (forced), served, and run over ten new forms uploaded as tasks, some still waiting for their OCR
    assert done["deployment"]["decision"] == "deployed" and done["model"] in api.admin.get(f"/api/projects/{pid}").json()["models"]
    server = api.admin.post("/api/servers", json={"project_id": pid, "name": "invoices"}).json()
    server = wait_for(api, f"/api/servers/{server['id']}", lambda s: s["status"] in ("running", "failed"), timeout=240)
    assert server["status"] == "running" and server["licenses"] == ["ocr:inference"], server
    new = json.loads((FORMS / "tasks.json").read_text())[20:30]
    files = [("file", (t["data"]["ocr"], (FORMS / t["data"]["ocr"]).read_bytes(), "image/png")) for t in new]
    uploaded = api.admin.post(f"/api/projects/{pid}/files", params={"tasks": "true"}, files=files).json()
    job = api.admin.post(f"/api/projects/{pid}/preannotations", json={"server_id": server["id"]}).json()
    assert job["total"] == 10
    job = wait_for(api, f"/api/preannotations/{job['id']}", lambda j: j["status"] in ("succeeded", "failed"), timeout=300)
    assert (job["status"], job["done"], job["failed"]) == ("succeeded", 10, 0), job

    found = 0
    for task_id, gold in zip(uploaded["task_ids"], new, strict=True):
        (prediction,) = api.admin.get(f"/api/projects/{pid}/tasks/{task_id}/predictions").json()
        regions: dict[str, dict[str, dict]] = {}
        for item in prediction["result"]:
            regions.setdefault(item["id"], {})[item["type"]] = item
        assert all(set(r) == {"rectangle", "labels", "textarea"} for r in regions.values()), "a rectangle, its label, its text"
        for region in regions.values():
            box = region["rectangle"]["value"]
            assert (region["rectangle"]["original_width"], region["rectangle"]["original_height"]) == (850, 1100)
            assert 0 <= box["x"] < 100 and 0 < box["width"] <= 100 - box["x"] and 0 <= region["labels"]["score"] <= 1
            assert region["labels"]["value"]["labels"][0] in {"Vendor", "Address", "InvoiceNumber", "Date", "Total"}
        vendor = next(r["value"]["text"][0] for r in gold["annotations"][0]["result"]
                      if r["type"] == "textarea" and r["id"].endswith("-0"))
        found += any(r["labels"]["value"]["labels"] == ["Vendor"] and r["textarea"]["value"]["text"] == [vendor] for r in regions.values())
    assert found >= 8, f"the vendor is found with its text on {found} of 10 new forms"
    vera = api.user("vera")
    assert api.admin.post(f"/api/projects/{pid}/members", json={"username": "vera", "role": "manager"}).status_code == 201
    created = vera.post(f"/api/projects/{pid}/tasks/{uploaded['task_ids'][-1]}/completions/from-prediction/{prediction['id']}")
    assert created.status_code == 201 and created.json()["result"] == prediction["result"], created.text

    # No log annoray wrote in this whole run holds a token or the licence's secret.
    secrets = {"the admin token": api.admin.headers["Authorization"][7:], "a user token": vera.headers["Authorization"][7:],
               "the licence secret": SECRET}
    logs = {"this process's log records": caplog.text, "the training log": log}
    with api.engine.connect() as db:
        logs["the audit log"] = " ".join(map(str, db.execute(text("SELECT * FROM audit_events")).all()))
        logs["every training log"] = " ".join(map(str, db.execute(text("SELECT text, data FROM training_log_lines")).all()))
    files = [f for f in Path(ray_session_logs()).rglob("*") if f.is_file()]
    files += [f for f in api.settings.home.rglob("*") if f.is_file() and f.name != "admin.token" and not f.name.startswith("annoray.db")]
    assert len(files) > 10, files
    logs |= {str(f): f.read_bytes().decode(errors="replace") for f in files}
    leaks = [f"{what} in {where}" for where, text_ in logs.items() for what, secret in secrets.items() if secret in text_]
    assert not leaks, leaks
