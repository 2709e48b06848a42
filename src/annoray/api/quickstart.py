"""``annoray quickstart``: the whole loop on the bundled clinical project, through the HTTP API.

Import, train NER, assertion and classification and deploy them, serve them, pre-annotate the tasks
nobody annotated, then let annotators submit more completions so active learning retrains and the
server is redeployed with the new models. Then Visual NER on the bundled sample invoices (``quickstart_visual.py``).
"""

from __future__ import annotations

import json
from importlib import resources


from annoray.api import quickstart_visual as visual
from annoray.api.cli.follow import follow_preannotation, follow_trainings, print_metrics, print_server, wait
from annoray.api.cli.render import console, deployments_table, table
from annoray.api.client import AnnorayClient
from annoray.platform.settings import Settings

PARAMS = {"epochs": 5, "learning_rate": 0.002, "batch_size": 32}
HELD_BACK = 60  # annotated tasks imported without their completion, submitted later to show active learning
EVERY = 50


def sample_project() -> tuple[str, list[dict]]:
    """The bundled mixed clinical project: its labeling config and Label Studio tasks."""
    samples = resources.files("annoray.platform") / "samples"
    config = (samples / "clinical_config.xml").read_text(encoding="utf-8")
    tasks = json.loads((samples / "clinical_tasks.json").read_text(encoding="utf-8"))
    return config, tasks


def run(client: AnnorayClient, settings: Settings) -> list[dict]:
    """Every step in order; returns every training job it ran."""
    invoices, new_form = visual.upload(client)
    jobs = run_text(client)
    if any(job["status"] != "succeeded" for job in jobs):
        return jobs
    console.rule("4. Visual NER: labeled rectangles on scanned forms")
    return jobs + visual.run(client, settings, invoices, new_form)


def run_text(client: AnnorayClient) -> list[dict]:
    """The mixed clinical project: train and deploy, serve and pre-annotate, retrain by active learning."""
    config, tasks = sample_project()
    annotated = [i for i, t in enumerate(tasks) if t.get("annotations")]
    held = {i: tasks[i]["annotations"][0]["result"] for i in annotated[-HELD_BACK:]}
    tasks = [{"data": t["data"]} if i in held else t for i, t in enumerate(tasks)]
    with console.status("creating the mixed clinical project"):
        project = client.post("/api/projects", {"name": "clinical-quickstart", "labeling_config": config})
    pid = project["id"]
    console.print(f"project [bold]{project['name']}[/] (id {pid}): kinds {', '.join(project['kinds'])}")
    with console.status(f"importing {len(tasks)} tasks"):
        imported = client.post(f"/api/projects/{pid}/tasks/import", tasks)
    console.print(f"imported {imported['imported']} tasks ({len(held)} of them held back unannotated, to annotate later)")
    print_training_data(client.get(f"/api/projects/{pid}/training-data"))

    console.rule("1. train and deploy")
    created = client.post(f"/api/projects/{pid}/trainings", {"params": PARAMS, "deploy": True})
    manual = follow_trainings(client, [j["id"] for j in created["jobs"]])
    print_metrics(manual)
    console.print(deployments_table(manual))
    if any(job["status"] != "succeeded" for job in manual):
        return manual

    console.rule("2. serve and pre-annotate")
    server = client.post("/api/servers", {"project_id": pid, "name": "clinical-quickstart-server"})
    server = wait(client, f"/api/servers/{server['id']}", lambda s: s["status"] in ("running", "failed"),
                  f"deploying server {server['id']} on Ray Serve")
    print_server(server)
    job = client.post(f"/api/projects/{pid}/preannotations", {"server_id": server["id"]})
    job = follow_preannotation(client, job["id"], console)
    console.print(f"pre-annotated {job['done']} tasks with no completion ({job['failed']} failed)")
    print_predictions(client, pid)

    console.rule("3. active learning")
    client.put(f"/api/projects/{pid}/active-learning",
               {"enabled": True, "every": EVERY, "deploy": True, "gate": False, "params": PARAMS})
    console.print(f"active learning on: every {EVERY} newly eligible completions retrain every kind and deploy the models "
                  "(gate off here: a new model replaces the one in place whatever its score; both scores are kept)")
    with console.status(f"annotators submit {len(held)} completions"):
        for i, result in held.items():
            client.post(f"/api/projects/{pid}/tasks/{imported['task_ids'][i]}/completions", {"result": result, "status": "submitted"})
    state = wait(client, f"/api/projects/{pid}/active-learning", lambda s: bool(s["last"].get("jobs") or s["last"].get("error")),
                 "waiting for the scheduler to queue the active-learning training")
    if state["last"].get("error"):
        console.print(f"[red]{state['last']['error']}[/]")
        return manual
    console.print(f"{len(held)} completions submitted: training {', '.join(map(str, state['last']['jobs']))} queued "
                  f"(source active_learning); {state['counter']} count toward the next one")
    retrained = follow_trainings(client, state["last"]["jobs"])
    print_metrics(retrained)
    console.print(deployments_table(retrained))
    names = sorted(j["model"] for j in retrained if j.get("deployment", {}).get("decision") == "deployed")
    if names:
        server = wait(client, f"/api/servers/{server['id']}",
                      lambda s: sorted(s["deployed_models"]) == sorted(m["name"] for m in s["models"]) and not s["reason"],
                      "redeploying the server with the new models")
        console.print("server redeployed:")
        print_server(server)
    return manual + retrained


def print_training_data(summary: dict) -> None:
    split = summary["split"]
    console.print(
        f"training selection: {summary['tasks_selected']} tasks; split {split['method']} "
        f"(validation {split['validation_split']}, seed {split['seed']}): {split['train_tasks']} train / {split['test_tasks']} test"
    )
    rows = []
    for kind, data in summary["kinds"].items():
        title = f"{kind} ({data['name']})" if data.get("name") else kind
        for i, (label, count) in enumerate(data["label_counts"].items()):
            rows.append((title, label, count, data["train_examples"], data["test_examples"]) if i == 0 else ("", label, count, "", ""))
    console.print(table(("kind", "label", "examples", "train", "test"), rows, "training data per model kind"))
    for warning in summary["warnings"][:10]:
        console.print(f"[yellow]warning[/] {warning}")
    for error in summary["errors"]:
        console.print(f"[red]error[/] {error}")


def print_predictions(client: AnnorayClient, pid: int, count: int = 5) -> None:
    """The tasks the models were least sure of (what annotators get first), in that order, with each region's confidence."""
    ranked = client.get(f"/api/projects/{pid}/tasks", params={"order": "uncertainty", "page_size": count})["items"]
    rows = []
    for task in ranked:
        predictions = client.get(f"/api/projects/{pid}/tasks/{task['id']}/predictions")
        if not predictions:
            continue
        regions = [f"{r['value'].get('text')}: {', '.join(r['value']['labels'])}" if "labels" in r["value"]
                   else f"{r['from_name']}: {', '.join(r['value'].get('choices', []))}" for r in predictions[-1]["result"]]
        scores = [r.get("score") for r in predictions[-1]["result"]]
        rows.append((task["uncertainty"], task["id"], task["data"].get("text", "")[:70],
                     "\n".join(f"{region} ({score:.2f})" if score is not None else region
                               for region, score in zip(regions, scores, strict=True)) or "(nothing)"))
    console.print(table(("uncertainty ↓", "task", "text", "predicted (confidence)"), rows,
                        f"the {count} tasks the models were least sure of, by uncertainty (1 - the lowest confidence of "
                        "a task's regions): annotators get these first"))
