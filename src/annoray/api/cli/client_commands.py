"""The client commands of ``annoray``: each reads or changes the platform through its HTTP API alone."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import httpx
import typer
from rich.text import Text

from annoray.api.cli.app import PANEL, JsonOption, ProjectArg, ServerArg, TokenOption, UrlOption, app, things
from annoray.api.cli.follow import POLL_SECONDS, exit_unless_succeeded, follow_preannotation, follow_trainings
from annoray.api.cli.render import (
    cell, console, deployments_table, emit, judged, metrics_table, micro_f1, progress_console, refusal, short, table, trainings_table,
    when,
)
from annoray.api.client import AnnorayClient, ApiError, MissingToken


@contextmanager
def connect(url: str | None, token: str | None) -> Iterator[AnnorayClient]:
    """A client of the API; a refusal or an unreachable API ends the command with one line on stderr, exit code 1."""
    try:
        client = AnnorayClient(url, token)
    except MissingToken as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    try:
        yield client
    except ApiError as error:
        typer.echo(refusal(error), err=True)
        raise typer.Exit(1) from None
    except httpx.TransportError as error:
        typer.echo(f"error: cannot reach the annoray API at {client.http.base_url}: {error or type(error).__name__}", err=True)
        raise typer.Exit(1) from None
    finally:
        client.close()


# --- trainings ---------------------------------------------------------------------------------------


@app.command(rich_help_panel=PANEL)
def train(
    project_id: ProjectArg,
    kind: Annotated[list[str] | None, typer.Option(
        "--kind", help="ner, assertion, classification, relation or visual_ner; repeat for several (default: every kind of the config).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Passes over the training split.")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Initial learning rate.")] = None,
    decay: Annotated[float | None, typer.Option(help="Inverse-time learning-rate decay.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Examples per update.")] = None,
    dropout: Annotated[float | None, typer.Option(help="Dropout rate while training.")] = None,
    validation_split: Annotated[float | None, typer.Option(help="Share of tasks held out for evaluation.")] = None,
    engine: Annotated[str, typer.Option(help="Engine family: spacy (built in), or spacy_words (Visual NER on the words alone, to compare).")] = "spacy",
    embeddings: Annotated[str | None, typer.Option(help="Catalog name of registered embeddings.")] = None,
    config: Annotated[int | None, typer.Option(help="Id of the project's own training config: NER trains with it.")] = None,
    split: Annotated[str, typer.Option(help="random, or tags (tasks tagged train / test).")] = "random",
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Train on tasks with any of these tags; repeatable.")] = None,
    reviewed_only: Annotated[bool, typer.Option("--reviewed-only", help="Only completions a reviewer accepted.")] = False,
    deploy: Annotated[bool, typer.Option(
        "--deploy", help="Deploy the models when the training succeeds and they pass the quality floor and the gate.")] = False,
    force_deploy: Annotated[bool, typer.Option("--force-deploy", help="Deploy the models whatever they score.")] = False,
    follow_jobs: Annotated[bool, typer.Option("--follow", help="Show a progress bar per job until they end.")] = False,
    url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Train the project's models, one job per kind; parameters left out take the API's defaults."""
    params = {"epochs": epochs, "learning_rate": learning_rate, "decay": decay, "batch_size": batch_size,
              "dropout": dropout, "validation_split": validation_split}
    body = {"kinds": kind or None, "engine": engine, "embeddings": embeddings, "config": config, "split": split, "task_tags": tag or [],
            "reviewed_only": reviewed_only, "deploy": "force" if force_deploy else deploy, "params": {k: v for k, v in params.items() if v is not None}}
    with connect(url, token) as client:
        created = client.post(f"/api/projects/{project_id}/trainings", body)
        if not follow_jobs:
            emit(created, as_json, _print_queued)
            return
        if not as_json:
            _print_queued(created)
        jobs = follow_trainings(client, [job["id"] for job in created["jobs"]], progress_console if as_json else console)
        emit({"jobs": jobs, "warnings": created["warnings"]}, as_json, lambda _: _print_trained(jobs))
    exit_unless_succeeded(jobs)


def _print_trained(jobs: list[dict[str, Any]]) -> None:
    console.print(trainings_table(jobs))
    if any(j.get("deployment") for j in jobs):
        console.print(deployments_table(jobs))


def _print_queued(created: dict[str, Any]) -> None:
    console.print(table(("job", "kind", "status"), ((j["id"], j["kind"], j["status"]) for j in created["jobs"]), "queued trainings"))
    for warning in created["warnings"]:
        console.print(Text(f"warning {warning}", style="yellow"))


@app.command("active-learning", rich_help_panel=PANEL)
def active_learning(
    project_id: ProjectArg,
    enable: Annotated[bool | None, typer.Option("--enable/--disable", show_default=False, help="Turn active learning on or off.")] = None,
    every: Annotated[int | None, typer.Option(help="Train after this many newly eligible completions.")] = None,
    deploy: Annotated[bool | None, typer.Option("--deploy/--no-deploy", show_default=False, help="Deploy what it trains.")] = None,
    gate: Annotated[bool | None, typer.Option("--gate/--no-gate", show_default=False,
                                              help="Replace a deployed model only with one that scores at least as well.")] = None,
    metric: Annotated[str | None, typer.Option(help="The gate's metric: micro.f1, macro.f1, accuracy, ...")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs of its trainings.")] = None,
    url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Show a project's active learning, or change it: options left out keep their current value."""
    with connect(url, token) as client:
        path = f"/api/projects/{project_id}/active-learning"
        state = client.get(path)
        changes = {"enabled": enable, "every": every, "deploy": deploy, "gate": gate, "metric": metric}
        if any(v is not None for v in changes.values()) or epochs is not None:
            body = {k: state[k] for k in changes} | {k: v for k, v in changes.items() if v is not None}
            state = client.put(path, body | {"params": state["params"] | ({"epochs": epochs} if epochs else {})})
        emit(state, as_json, _print_active_learning)


def _print_active_learning(s: dict[str, Any]) -> None:
    console.print(Text(f"active learning {'on' if s['enabled'] else 'off'}: every {s['every']} newly eligible completions, "
                       f"deploy {'on' if s['deploy'] else 'off'}, gate {'on' if s['gate'] else 'off'} ({s['metric']}); "
                       f"{s['counter']} counted toward the next training{', one is due' if s['pending'] else ''}"))
    last = s["last"]
    if last:
        console.print(Text(f"last trigger {when(last.get('at'))}: " + (last.get("error") or f"trainings {cell(last.get('jobs'))}")))


@app.command(rich_help_panel=PANEL)
def jobs(
    project_id: Annotated[int | None, typer.Argument(help="List this project's trainings.", show_default=False)] = None,
    job: Annotated[int | None, typer.Option("--job", help="Show this training job with a progress bar until it ends.")] = None,
    log: Annotated[bool, typer.Option("--log", help="With --job: print its training log.")] = False,
    follow_log: Annotated[bool, typer.Option("--follow", help="With --job: stream its log live until it ends.")] = False,
    cancel: Annotated[bool, typer.Option("--cancel", help="With --job: cancel it.")] = False,
    url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """A project's training history, or one training job (--job): its progress, its log (--log, --follow), or cancel it."""
    if (project_id is None) == (job is None):
        raise typer.BadParameter("give a PROJECT_ID, or --job JOB_ID", param_hint="PROJECT_ID / --job")
    with connect(url, token) as client:
        if job is None:
            emit(client.get(f"/api/projects/{project_id}/trainings"), as_json,
                 lambda items: console.print(trainings_table(items, f"trainings of project {project_id}")))
            return
        if log or follow_log:
            _print_log(client, job, follow_log)
            return
        if cancel:
            emit(client.post(f"/api/trainings/{job}/cancel"), as_json, _print_training)
            return
        (final,) = follow_trainings(client, [job], progress_console if as_json else console)
        emit(final, as_json, _print_training)
    exit_unless_succeeded([final])


def _print_log(client: AnnorayClient, job_id: int, live: bool) -> None:
    if not live:
        typer.echo(client.get(f"/api/trainings/{job_id}/log"), nl=False)
        return
    for line in client.stream(f"/api/trainings/{job_id}/log", params={"follow": "true"}):
        typer.echo(line)


def _print_training(job: dict[str, Any]) -> None:
    console.print(trainings_table([job]))
    for warning in job["warnings"]:
        console.print(Text(f"warning {warning}", style="yellow"))
    if job["metrics"]:
        console.print(metrics_table(job["metrics"], f"{job['model'] or job['kind']}, scored on the held-out split"))
        if line := judged(job["metrics"], (job.get("data") or {}).get("test_examples")):
            console.print(line)
    if job.get("deployment"):
        console.print(deployments_table([job]))


# --- models ------------------------------------------------------------------------------------------


@app.command(rich_help_panel=PANEL)
def models(
    name: Annotated[str | None, typer.Argument(help="Show this model with its per-label metrics.", show_default=False)] = None,
    kind: Annotated[str | None, typer.Option(help="Only models of this kind (ner, assertion, classification, relation, visual_ner, embeddings).")] = None,
    import_from: Annotated[str | None, typer.Option("--import", help="Import the spaCy pipeline folder at this path or URI as NAME (admin).")] = None,
    url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """The model catalog, or one model and its benchmark; `models NAME --import PATH` brings a model trained elsewhere."""
    with connect(url, token) as client:
        if import_from is not None:
            if name is None:
                raise typer.BadParameter("name the model to import: annoray models NAME --import PATH", param_hint="NAME")
            emit(client.post("/api/models/import", {"name": name, "uri": import_from, "engine": "spacy"}), as_json, _print_model)
        elif name is None:
            emit(client.get("/api/models", params={"kind": kind} if kind else None), as_json, _print_models)
        else:
            emit(client.get(f"/api/models/{name}"), as_json, _print_model)


def _print_models(items: list[dict[str, Any]]) -> None:
    console.print(table(("name", "kind", "labels", "language", "source", "micro F1"), (
        (m["name"], m["kind"], m["labels"], m["language"], m["source"], micro_f1(m["metrics"])) for m in items), "models"))


def _print_model(m: dict[str, Any]) -> None:
    trained = f"training {m['training_job_id']} of project {m['project_id']}" if m["training_job_id"] else m["source"]
    console.print(Text(f"model {m['name']}: {m['kind']}, language {m['language']}, engine {cell(m['engine'])}, "
                       f"embeddings {cell(m['embeddings'])}, from {trained}, created {when(m['created_at'])}"))
    console.print(Text(f"labels: {cell(m['labels'])}"))
    if m["metrics"]:
        console.print(metrics_table(m["metrics"], "scored on the held-out split"))
        if line := judged(m["metrics"], None):
            console.print(line)
    matrix = m["metrics"].get("confusion_matrix")
    if matrix:
        console.print(table(("gold \\ predicted", *matrix["labels"]),
                            ((label, *row) for label, row in zip(matrix["labels"], matrix["matrix"], strict=True)), "confusion matrix"))


# --- pre-annotation ----------------------------------------------------------------------------------


servers = things("servers", "Pre-annotation servers: list them, show one, deploy one, delete one.")


@servers.command("list")
def list_servers(url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """The pre-annotation servers you may see, with what they serve and where."""
    with connect(url, token) as client:
        emit(client.get("/api/servers"), as_json, lambda items: _print_servers(items, "servers"))


@servers.command("show")
def show_server(server_id: ServerArg, url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """One server."""
    with connect(url, token) as client:
        emit(client.get(f"/api/servers/{server_id}"), as_json, lambda s: _print_servers([s], f"server {s['id']}"))


@servers.command("deploy")
def deploy_server(
    project: Annotated[int | None, typer.Option(help="Serve the models this project's labeling config names.")] = None,
    model: Annotated[list[str] | None, typer.Option(help="Serve this catalog model; repeatable (instead of --project).")] = None,
    name: Annotated[str | None, typer.Option(help="The server's name.")] = None,
    replicas: Annotated[int | None, typer.Option(help="Replicas (the autoscaling minimum).")] = None,
    max_replicas: Annotated[int | None, typer.Option(help="Autoscaling maximum (room for this many is held, spread over the nodes).")] = None,
    target_ongoing_requests: Annotated[float | None, typer.Option(help="Requests waiting on each replica before Serve adds one.")] = None,
    downscale_delay_s: Annotated[float | None, typer.Option(help="Seconds of low load before Serve removes a replica.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the server runs (or failed); exit 1 if it failed.")] = False,
    url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Deploy a pre-annotation server on Ray Serve, for a project (--project) or for catalog models (--model)."""
    body = {"project_id": project, "models": model or None, "name": name, "replicas": replicas, "max_replicas": max_replicas,
            "target_ongoing_requests": target_ongoing_requests, "downscale_delay_s": downscale_delay_s}
    with connect(url, token) as client:
        server = client.post("/api/servers", {k: v for k, v in body.items() if v is not None})
        if wait:
            with (progress_console if as_json else console).status(f"deploying server {server['id']} on Ray Serve"):
                while server["status"] not in ("running", "failed"):
                    time.sleep(POLL_SECONDS)
                    server = client.get(f"/api/servers/{server['id']}")
    emit(server, as_json, lambda s: _print_servers([s], f"server {s['status']}"))
    if server["status"] == "failed":
        raise typer.Exit(1)


@servers.command("delete")
def delete_server(server_id: ServerArg, url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Delete a server, freeing its resources and seats."""
    with connect(url, token) as client:
        client.delete(f"/api/servers/{server_id}")
    emit({"deleted": server_id}, as_json, lambda _: console.print(f"server {server_id} deleted"))


def _served(models: list[dict[str, Any]]) -> str:
    return "\n".join(f"{m['name']} ({cell(m['labels'])})" for m in models)


def _replicas(server: dict[str, Any]) -> str:
    low, high = server["replicas"], server["max_replicas"]
    return str(low) if low == high else f"{low}-{high}"


def _print_servers(items: list[dict[str, Any]], title: str) -> None:
    console.print(table(("id", "name", "status", "models (labels)", "replicas", "nodes", "reason / error"), (
        (s["id"], s["name"], s["status"], _served(s["models"]), _replicas(s),
         " ".join(f"{short(n)}:{k}" for n, k in s["spread"]) or short(s["node_id"]),
         s.get("reason") or s.get("error")) for s in items), title))


@app.command(rich_help_panel=PANEL)
def preannotate(
    project_id: ProjectArg,
    server: Annotated[int, typer.Option(help="The server to pre-annotate with.", show_default=False)],
    task: Annotated[list[int] | None, typer.Option("--task", help="Pre-annotate this task; repeatable (default: the tasks with no completion).")] = None,
    entities_from: Annotated[str, typer.Option(
        "--entities-from", help="models: the server's NER models find the entities; completion: propose relations "
                                "between the entities of each task's latest completion (default tasks: those with one).")] = "models",
    follow_job: Annotated[bool, typer.Option("--follow/--no-follow", help="Show a progress bar until the job ends.")] = True,
    url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Pre-annotate a project's tasks with a server."""
    with connect(url, token) as client:
        job = client.post(f"/api/projects/{project_id}/preannotations",
                          {"server_id": server, "task_ids": task or None, "entities_from": entities_from})
        if follow_job:
            job = follow_preannotation(client, job["id"], progress_console if as_json else console)
        emit(job, as_json, _print_preannotation)
    if follow_job:
        exit_unless_succeeded([job])


def _print_preannotation(job: dict[str, Any]) -> None:
    console.print(Text(f"pre-annotation {job['id']} of project {job['project_id']} with server {job['server_id']}: "
                       f"{job['status']}, {job['done']} of {job['total']} tasks done, {job['failed']} failed"))
    why = job.get("reason") or job.get("error")
    if why:
        console.print(Text(why))
    if job["failures"]:
        console.print(table(("task", "error"), ((f["task_id"], f.get("error")) for f in job["failures"]), "failed tasks"))
