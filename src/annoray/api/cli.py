"""The ``annoray`` command: ``up`` runs the platform, the rest are clients of its HTTP API."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from annoray.api.commands import console, follow_trainings, register
from annoray.platform.settings import Settings

if TYPE_CHECKING:
    from annoray.api.client import AnnorayClient

app = typer.Typer(help="annoray: train NLP models from annotations and pre-annotate with them, on Ray.", no_args_is_help=True)

HomeOption = Annotated[Path | None, typer.Option("--home", help="ANNORAY_HOME: database, model store, admin token.")]


def _settings(home: Path | None, **api: object) -> Settings:
    settings = Settings()
    if home is not None:
        settings = settings.model_copy(update={"home": home.expanduser().resolve()})
    if api:
        settings = settings.model_copy(update={"api": settings.api.model_copy(update=api)})
    return settings


def sample_project() -> tuple[str, list[dict]]:
    """The bundled mixed clinical project: its labeling config and Label Studio tasks."""
    samples = resources.files("annoray.platform") / "samples"
    config = (samples / "clinical_config.xml").read_text(encoding="utf-8")
    tasks = json.loads((samples / "clinical_tasks.json").read_text(encoding="utf-8"))
    return config, tasks


@app.command()
def up(
    home: HomeOption = None,
    port: Annotated[int, typer.Option(help="Port of the HTTP API.")] = 8765,
    host: Annotated[str, typer.Option(help="Interface of the HTTP API.")] = "127.0.0.1",
    address: Annotated[str | None, typer.Option(help="Ray address to join (e.g. auto); default: start a local Ray.")] = None,
    cluster_config: Annotated[Path | None, typer.Option(help="Ray autoscaler config whose node types jobs may wait for.", exists=True)] = None,
) -> None:
    """Create the home, database and admin token, start or reconnect to the scheduler, then serve the API."""
    import uvicorn

    from annoray.api.app import create_app
    from annoray.platform.home import init_home
    from annoray.scheduler.factory import start_scheduler

    settings = _settings(home, port=port, host=host)
    if address or cluster_config:
        settings = settings.model_copy(update={"scheduler": settings.scheduler.model_copy(
            update={"ray_address": address or settings.scheduler.ray_address,
                    "cluster_config": cluster_config or settings.scheduler.cluster_config})})
    engine = init_home(settings)
    with console.status("starting Ray and the scheduler"):
        start_scheduler(settings)
    console.print(f"annoray home: {settings.home}")
    console.print(f"admin token: {settings.admin_token_path}")
    console.print(f"API: http://{host}:{port}  (OpenAPI at /docs)")
    uvicorn.run(create_app(settings, engine=engine), host=host, port=port, log_level="info")


QUICKSTART_PARAMS = {"epochs": 5, "learning_rate": 0.002, "batch_size": 32}


@app.command()
def quickstart(home: HomeOption = None) -> None:
    """Run the main job on the bundled sample project, on the embedded default, through the HTTP API."""
    from annoray.api.app import create_app
    from annoray.api.client import AnnorayClient
    from annoray.api.server import BackgroundServer
    from annoray.platform.home import init_home
    from annoray.scheduler.factory import start_scheduler

    settings = _settings(home or Path.cwd() / "annoray-quickstart")
    engine = init_home(settings)
    token = settings.admin_token_path.read_text().strip()
    config, tasks = sample_project()
    with console.status("starting Ray and the scheduler"):
        start_scheduler(settings)
    with BackgroundServer(create_app(settings, engine=engine)) as url:
        client = AnnorayClient(url, token)
        with console.status("creating the mixed clinical project"):
            project = client.post("/api/projects", {"name": "clinical-quickstart", "labeling_config": config})
        console.print(f"project [bold]{project['name']}[/] (id {project['id']}): kinds {', '.join(k for k in project['kinds'] if k != 'models')}")
        with console.status(f"importing {len(tasks)} tasks"):
            imported = client.post(f"/api/projects/{project['id']}/tasks/import", tasks)
        console.print(f"imported {imported['imported']} tasks")
        summary = client.get(f"/api/projects/{project['id']}/training-data")
        _print_training_data(summary)
        created = client.post(f"/api/projects/{project['id']}/trainings", {"params": QUICKSTART_PARAMS})
        jobs = follow_trainings(client, [j["id"] for j in created["jobs"]])
        _print_metrics(client, jobs)
        client.close()
    console.print(f"training logs: {url}/api/trainings/<id>/log while `annoray up` serves this home; models: {settings.resolved_model_store}")
    console.print(f"database: {settings.resolved_database_url}")
    if any(job["status"] != "succeeded" for job in jobs):
        raise typer.Exit(1)


def _print_metrics(client: AnnorayClient, jobs: list[dict]) -> None:
    table = Table(title="trained models, scored on the held-out split")
    for column in ("model", "kind", "label", "precision", "recall", "f1", "support"):
        table.add_column(column)
    for job in jobs:
        if job["status"] != "succeeded":
            console.print(f"[red]training {job['id']} ({job['kind']}) {job['status']}[/]: {job['error']}")
            continue
        metrics = client.get(f"/api/models/{job['model']}")["metrics"]
        rows = list(metrics["per_label"].items()) + [(f"{avg} avg", metrics[avg]) for avg in ("micro", "macro")]
        for i, (label, m) in enumerate(rows):
            table.add_row(job["model"] if i == 0 else "", job["kind"] if i == 0 else "", label,
                          f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m.get("support", "")))
    console.print(table)


def _print_training_data(summary: dict) -> None:
    split = summary["split"]
    console.print(
        f"training selection: {summary['tasks_selected']} tasks; split {split['method']} "
        f"(validation {split['validation_split']}, seed {split['seed']}): {split['train_tasks']} train / {split['test_tasks']} test"
    )
    table = Table(title="training data per model kind")
    for column in ("kind", "label", "examples", "train", "test"):
        table.add_column(column)
    for kind, data in summary["kinds"].items():
        title = f"{kind} ({data['name']})" if data.get("name") else kind
        for i, (label, count) in enumerate(data["label_counts"].items()):
            table.add_row(title if i == 0 else "", label, str(count),
                          str(data["train_examples"]) if i == 0 else "", str(data["test_examples"]) if i == 0 else "")
    console.print(table)
    for warning in summary["warnings"][:10]:
        console.print(f"[yellow]warning[/] {warning}")
    for error in summary["errors"]:
        console.print(f"[red]error[/] {error}")


@app.command("convert-conll")
def convert_conll(
    source: Annotated[Path, typer.Argument(help="CoNLL file: token<TAB>tag or CoNLL-2003 columns.", exists=True, dir_okay=False)],
    output: Annotated[Path, typer.Argument(help="Label Studio task JSON to write.")],
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag every task (e.g. train or test).")] = None,
) -> None:
    """Convert a CoNLL file into Label Studio tasks (labels group 'label' on text 'text')."""
    from annoray.platform.conll import conll_to_tasks

    tasks = conll_to_tasks(source, tags=tag or ())
    output.write_text(json.dumps(tasks, ensure_ascii=False))
    console.print(f"{len(tasks)} tasks written to {output}")


register(app)

if __name__ == "__main__":
    app()
