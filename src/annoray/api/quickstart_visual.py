"""The quickstart's Visual NER part: the bundled sample invoices uploaded at the start (their OCR runs while the text
models train), then a layout-aware model trained on 20 of them, served, and run over a form it has never seen.

Visual NER needs an `ocr` licence. The quickstart signs a one-day one for its own home with a key of its own, which
only that home's quickstart trusts; a real deployment trusts its vendors' keys (``ANNORAY_LICENSES__ISSUERS``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from annoray.api.cli.follow import follow_preannotation, follow_trainings, print_metrics, print_server, wait
from annoray.api.cli.render import console, deployments_table, table
from annoray.api.client import AnnorayClient
from annoray.platform.settings import ResourceSpec, Settings, TrainingSettings

TRAIN_FORMS = 20
PARAMS = {"epochs": 8, "batch_size": 2, "learning_rate": 0.002}
ISSUER = "annoray-quickstart"
DEMO_SIZE = ResourceSpec(cpus=1, memory_gb=2)  # the visual_ner specs (16 CPU / 64 GB to train) do not fit a laptop


def quickstart_settings(settings: Settings) -> Settings:
    """Visual NER sized for the machine the quickstart runs on, and the quickstart's own licence issuer trusted."""
    from annoray.platform.access.licenses import public_key_text

    training = settings.training.model_copy(update={"resources": settings.training.resources | {"visual_ner": DEMO_SIZE}})
    servers = settings.servers.model_copy(update={"resources": settings.servers.resources | {"visual_ner": DEMO_SIZE}})
    licenses = settings.licenses.model_copy(update={"issuers": settings.licenses.issuers | {ISSUER: public_key_text(_key(settings.home))}})
    return settings.model_copy(update={"training": training, "servers": servers, "licenses": licenses})


def _key(home: Path) -> Any:
    """The quickstart's issuer key, kept in its home (0600) so that a licence it signed stays valid there."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, load_pem_private_key

    path = home / "quickstart-issuer.pem"
    if path.exists():
        return load_pem_private_key(path.read_bytes(), password=None)
    key = Ed25519PrivateKey.generate()
    home.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return key


def upload(client: AnnorayClient) -> tuple[int, int]:
    """The invoices project: 20 forms with their gold regions and one new form as an unannotated task; returns the
    project's id and the new task's."""
    forms = resources.files("annoray.platform") / "samples" / "forms"
    tasks = json.loads((forms / "tasks.json").read_text(encoding="utf-8"))[:TRAIN_FORMS + 1]
    project = client.post("/api/projects", {"name": "invoices-quickstart", "labeling_config": (forms / "config.xml").read_text()})
    pid = project["id"]
    files = [("file", (t["data"]["ocr"], (forms / t["data"]["ocr"]).read_bytes(), "image/png")) for t in tasks[:TRAIN_FORMS]]
    items = client.post(f"/api/projects/{pid}/files", files=files)["items"]
    for task, item in zip(tasks, items, strict=False):
        task["data"]["ocr"] = item["pages"][0]["url"]
    client.post(f"/api/projects/{pid}/tasks/import", tasks[:TRAIN_FORMS])
    new = tasks[TRAIN_FORMS]["data"]["ocr"]
    task_id = client.post(f"/api/projects/{pid}/files", files=[("file", (new, (forms / new).read_bytes(), "image/png"))],
                          params={"tasks": "true"})["task_ids"][0]
    console.print(f"project [bold]{project['name']}[/] (id {pid}): kind visual_ner; uploaded {TRAIN_FORMS} sample invoices "
                  "with their labeled rectangles and 1 new one; their OCR runs in the background meanwhile")
    return pid, task_id


def run(client: AnnorayClient, settings: Settings, pid: int, task_id: int) -> list[dict]:
    """License, train, serve and pre-annotate the new form; returns the training job."""
    from annoray.platform.access.licenses import sign_license

    fields = {"id": "quickstart-ocr", "issuer": ISSUER, "licensee": "this quickstart's home", "scopes": ["ocr:training", "ocr:inference"],
              "seats": 2, "expires_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    client.post("/api/licenses", sign_license(fields, _key(settings.home)))
    stock = TrainingSettings().resources["visual_ner"]
    console.print("licence: Visual NER takes seats of an `ocr` licence; the quickstart signed a one-day one for this home "
                  f"(trusted by its quickstart only). Sized for this machine: {DEMO_SIZE.resources().describe()} to train and to serve "
                  f"(by default {stock.resources().describe()} to train, as on a cluster)")
    summary = wait(client, f"/api/projects/{pid}/training-data", lambda s: not any("[E316]" in w for w in s["warnings"]),
                   "waiting for the OCR of the sample invoices")
    data = summary["kinds"]["visual_ner"]
    console.print(f"OCR done: {data['train_examples']} train / {data['test_examples']} test pages; words labeled per label: "
                  + ", ".join(f"{label} {count}" for label, count in data["label_counts"].items()))
    created = client.post(f"/api/projects/{pid}/trainings", {"params": PARAMS, "deploy": "force"})
    jobs = follow_trainings(client, [j["id"] for j in created["jobs"]])
    print_metrics(jobs)
    console.print(deployments_table(jobs))
    if jobs[0]["status"] != "succeeded":
        return jobs
    server = client.post("/api/servers", {"project_id": pid, "name": "invoices-quickstart-server"})
    server = wait(client, f"/api/servers/{server['id']}", lambda s: s["status"] in ("running", "failed"),
                  f"deploying server {server['id']} on Ray Serve")
    print_server(server)
    job = client.post(f"/api/projects/{pid}/preannotations", {"server_id": server["id"], "task_ids": [task_id]})
    follow_preannotation(client, job["id"], console)
    print_page(client, pid, task_id)
    return jobs


def print_page(client: AnnorayClient, pid: int, task_id: int) -> None:
    """The new form's regions as Label Studio shows them: a rectangle (percent of the page), its label and text."""
    predictions = client.get(f"/api/projects/{pid}/tasks/{task_id}/predictions")
    regions: dict[str, dict[str, Any]] = {}
    for item in predictions[-1]["result"] if predictions else []:
        regions.setdefault(item["id"], {})[item["type"]] = item
    rows = [(r["labels"]["value"]["labels"][0], " ".join(r["textarea"]["value"]["text"]), f"{r['labels']['score']:.2f}",
             "x {x:.1f}, y {y:.1f}, {width:.1f} x {height:.1f}".format(**r["rectangle"]["value"])) for r in regions.values()]
    console.print(table(("label", "text", "confidence", "rectangle (% of the page)"), rows,
                        f"the new invoice (task {task_id}), pre-annotated: Label Studio OCR regions"))
