"""Client commands that set a project up and read what it holds: users, projects and their members, tasks, the
training data, exports, and a training's log (read from the database itself when no API is running)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.text import Text

from annoray.api.cli.app import PANEL, HomeOption, JsonOption, ProjectArg, TokenOption, UrlOption, app, things
from annoray.api.cli.client_commands import connect
from annoray.api.cli.render import cell, console, emit, progress_console, table, when

users = typer.Typer(help="Users of the platform (admin).", no_args_is_help=True)
tasks = typer.Typer(help="A project's tasks: import Label Studio JSON, list them.", no_args_is_help=True)
files = typer.Typer(help="A Visual NER project's documents: upload scans and PDFs, list them with their OCR.", no_args_is_help=True)
app.add_typer(users, name="users", rich_help_panel=PANEL)
app.add_typer(tasks, name="tasks", rich_help_panel=PANEL)
app.add_typer(files, name="files", rich_help_panel=PANEL)

IMPORT_BATCH = 1000  # tasks per request: a big file imports in steps, each all or nothing, with a progress bar


@users.command("create")
def create_user(username: Annotated[str, typer.Argument(help="The new user's name.")],
                url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Create a user and print their API token (shown this once)."""
    with connect(url, token) as client:
        user = client.post("/api/users", {"username": username})
    emit(user, as_json, lambda u: console.print(f"user {u['username']} (id {u['id']}); token, shown once: {u['token']}"))


@users.command("list")
def list_users(url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Every user, disabled ones too (admins)."""
    with connect(url, token) as client:
        emit(client.get("/api/users"), as_json, lambda items: console.print(table(("id", "user", "admin", "service", "active"), (
            (u["id"], u["username"], cell(u["is_admin"]), cell(u["is_service"]), cell(u["active"])) for u in items), "users")))


def _set_active(username: str, active: bool, url: str | None, token: str | None, as_json: bool) -> None:
    with connect(url, token) as client:
        user = client.patch(f"/api/users/{username}", {"active": active})
    emit(user, as_json, lambda u: console.print(f"user {u['username']} " + (
        "enabled: it has no token yet; make one with `annoray tokens --create NAME --user " + u["username"] + "`"
        if u["active"] else "disabled: its tokens and dashboard sessions no longer work")))


@users.command("disable")
def disable_user(username: Annotated[str, typer.Argument(help="Whom to disable.")],
                 url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Disable a user: every token and dashboard session of theirs stops at once (admins)."""
    _set_active(username, False, url, token, as_json)


@users.command("enable")
def enable_user(username: Annotated[str, typer.Argument(help="Whom to enable again.")],
                url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Enable a disabled user again, with no token (admins make them one)."""
    _set_active(username, True, url, token, as_json)


@users.command("rotate-token")
def rotate_token(url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Replace your own API token: the one you send stops at once; the new one is printed this once."""
    with connect(url, token) as client:
        user = client.post("/api/users/me/token", {})
    emit(user, as_json, lambda u: console.print(Text(f"user {u['username']}: your old token no longer works; new token, "
                                                     f"shown once: {u['token']}")))


# --- projects ----------------------------------------------------------------------------------------


projects = things("projects", "Projects: list them, show one, create one from a labeling config, add members.")
members = typer.Typer(help="A project's members and their roles.", no_args_is_help=True)
projects.add_typer(members, name="members")


@projects.command("list")
def list_projects(url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """The projects you are a member of, with your role."""
    with connect(url, token) as client:
        emit(client.get("/api/projects"), as_json, _print_projects)


@projects.command("show")
def show_project(project_id: ProjectArg, url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """One project: its kinds, labels and the models its config names."""
    with connect(url, token) as client:
        emit(client.get(f"/api/projects/{project_id}"), as_json, _print_project)


@projects.command("create")
def create_project(
    name: Annotated[str, typer.Argument(help="The project's name.", show_default=False)],
    config: Annotated[Path, typer.Option("--config", help="The labeling config (Label Studio XML).", exists=True, dir_okay=False)],
    language: Annotated[str, typer.Option(help="Language of the texts (en, de, ...).")] = "en",
    model_type: Annotated[str, typer.Option(help="open_source, or a licensed family (healthcare, legal, finance).")] = "open_source",
    url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Create a project from a labeling config; you become its owner. A config with errors is refused with each one."""
    body = {"name": name, "labeling_config": config.read_text(encoding="utf-8"), "language": language, "model_type": model_type}
    with connect(url, token) as client:
        emit(client.post("/api/projects", body), as_json, _print_project)


@members.command("add")
def add_member(
    project_id: ProjectArg,
    username: Annotated[str, typer.Argument(help="The user to add.", show_default=False)],
    role: Annotated[str, typer.Option(help="owner, manager, reviewer or annotator.")] = "annotator",
    priority: Annotated[int, typer.Option(help="Higher wins when several members submitted a task.")] = 0,
    url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Add a user to a project with a role (owners only)."""
    with connect(url, token) as client:
        member = client.post(f"/api/projects/{project_id}/members", {"username": username, "role": role, "priority": priority})
    emit(member, as_json, lambda m: console.print(f"{m['username']} is now {m['role']} of project {project_id}"))


@members.command("list")
def list_members(project_id: ProjectArg, url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """A project's members, their roles and priorities."""
    with connect(url, token) as client:
        found = client.get(f"/api/projects/{project_id}/members")
    emit(found, as_json, lambda items: console.print(table(("user", "role", "priority"), (
        (m["username"], m["role"], m["priority"]) for m in items), f"members of project {project_id}")))


def _kinds(project: dict[str, Any]) -> list[str]:
    return list(project["kinds"])


def _print_projects(items: list[dict[str, Any]]) -> None:
    console.print(table(("id", "name", "role", "kinds", "config version"), (
        (p["id"], p["name"], p["role"], _kinds(p), p["config_version"]) for p in items), "projects"))


def _print_project(p: dict[str, Any]) -> None:
    console.print(Text(f"project {p['name']} (id {p['id']}): role {p['role']}, language {p['language']}, "
                       f"model type {p['model_type']}, config version {p['config_version']}"))
    console.print(table(("kind", "labels", "group"), (
        (kind, p["kinds"][kind]["labels"], p["kinds"][kind].get("name") or p["kinds"][kind]["from_names"]) for kind in _kinds(p)),
        "model kinds of the labeling config"))
    console.print(Text(f"models the config names: {cell(p['models']) if p['models'] else 'none'}"))


@tasks.command("import")
def import_tasks(project_id: ProjectArg, file: Annotated[Path, typer.Argument(help="Label Studio JSON: a list of tasks.", exists=True, dir_okay=False)],
                 url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Import tasks (with their annotations, predictions and tags) in batches of 1,000, each all or nothing."""
    items = json.loads(file.read_text())
    if not isinstance(items, list):
        typer.echo(f"error: {file} holds {type(items).__name__}, not a JSON list of tasks", err=True)
        raise typer.Exit(1)
    task_ids: list[int] = []
    # a big file gets a bar, drawn on stderr: stdout holds only the result (or nothing, when the import is refused)
    bar = Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(), console=progress_console, transient=True,
                   disable=len(items) <= IMPORT_BATCH)
    with connect(url, token) as client, bar:
        progress = bar.add_task("tasks", total=len(items))
        for start in range(0, len(items), IMPORT_BATCH):
            task_ids += client.post(f"/api/projects/{project_id}/tasks/import", items[start:start + IMPORT_BATCH])["task_ids"]
            bar.update(progress, completed=len(task_ids))
    emit({"imported": len(task_ids), "task_ids": task_ids}, as_json,
         lambda r: console.print(f"imported {r['imported']} tasks into project {project_id}"))


@tasks.command("list")
def list_tasks(project_id: ProjectArg,
               tag: Annotated[list[str] | None, typer.Option("--tag", help="Only tasks with any of these tags; repeatable.")] = None,
               page: Annotated[int, typer.Option(help="Page, from 1.")] = 1,
               page_size: Annotated[int, typer.Option(help="Tasks per page.")] = 20,
               url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """A page of a project's tasks, with their tags and how many completions and predictions each has."""
    params: dict[str, Any] = {"page": page, "page_size": page_size} | ({"tags": ",".join(tag)} if tag else {})
    with connect(url, token) as client:
        found = client.get(f"/api/projects/{project_id}/tasks", params=params)
    emit(found, as_json, lambda f: console.print(table(("id", "text", "tags", "created"), (
        (t["id"], _preview(t["data"]), t.get("tags"), when(t["created_at"])) for t in f["items"]),
        f"tasks of project {project_id} (page {f['page']}, {f['total']} in all)")))


@tasks.command("show")
def show_task(project_id: ProjectArg, task_id: Annotated[int, typer.Argument(help="Task id.")],
              url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """A task's text, and the entities, choices and relations of its completions and predictions."""
    with connect(url, token) as client:
        found = client.get(f"/api/projects/{project_id}/tasks/{task_id}")
        found["predictions"] = client.get(f"/api/projects/{project_id}/tasks/{task_id}/predictions")
    emit(found, as_json, _print_task)


def _print_task(task: dict[str, Any]) -> None:
    from annoray.platform.labeling.config import region_labels
    from annoray.platform.labeling.predictions import relations_listed

    console.print(Text(f"task {task['id']}: " + next((v for v in task["data"].values() if isinstance(v, str)), json.dumps(task["data"]))))
    labeled = [(f"completion {c['id']}", c["result"]) for c in task["completions"]]
    labeled += [(f"prediction {p['id']} ({p['model_version']})", p["result"]) for p in task["predictions"]]
    for title, result in labeled:
        console.print(table(("region", "label", "text", "score"), (
            (r.get("id"), ", ".join(region_labels(r.get("value") or {})), (r.get("value") or {}).get("text"), r.get("score"))
            for r in result if r.get("type") != "relation"), title))
        for r in relations_listed(result):
            score = f" ({r['score']:.2f})" if r["score"] is not None else ""
            console.print(Text(f"  {r['from']} {r['arrow']} {r['label']} {r['arrow']} {r['to']}{score}"))


def _preview(data: dict[str, Any]) -> str:
    text = next((v for v in data.values() if isinstance(v, str)), json.dumps(data))
    return text if len(text) <= 60 else text[:59] + "…"


@files.command("upload")
def upload_files(project_id: ProjectArg,
                 paths: Annotated[list[Path], typer.Argument(help="PNG, JPEG, TIFF or PDF files.", exists=True, dir_okay=False)],
                 with_tasks: Annotated[bool, typer.Option("--tasks", help="Also create one unannotated task per page.")] = False,
                 url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Upload documents in one request (all or nothing); their pages are OCR'd in the background."""
    parts = [("file", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]  # the bytes say what they are
    with connect(url, token) as client:
        done = client.post(f"/api/projects/{project_id}/files", files=parts, params={"tasks": str(with_tasks).lower()})
    emit(done, as_json, lambda d: (
        console.print(_files_table(d["items"], f"uploaded into project {project_id}")),
        console.print(f"{len(d['task_ids'])} tasks created, one per page" if with_tasks else "no tasks created (add --tasks)")))


@files.command("list")
def list_files(project_id: ProjectArg, url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """A project's documents, their pages and how far each page's OCR is."""
    with connect(url, token) as client:
        found = client.get(f"/api/projects/{project_id}/files")
    emit(found, as_json, lambda f: console.print(_files_table(f, f"documents of project {project_id}")))


def _files_table(items: list[dict[str, Any]], title: str) -> Any:
    return table(("file", "name", "page", "size", "ocr", "words", "url"), (
        (f["id"], f["filename"], p["page"], f"{p['width']} x {p['height']}", p["error"] or p["ocr"], p["word_count"], p["url"])
        for f in items for p in f["pages"]), title)


@app.command("training-configs", rich_help_panel=PANEL)
def training_configs(project_id: ProjectArg,
                     upload: Annotated[Path | None, typer.Option(help="Upload this spaCy config.cfg (owner).", exists=True, dir_okay=False)] = None,
                     name: Annotated[str | None, typer.Option(help="The uploaded config's name (default: the file's).")] = None,
                     delete: Annotated[int | None, typer.Option(help="Delete this config (owner).")] = None,
                     url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """A project's own NER training configs; `train --config ID` trains NER with one."""
    path = f"/api/projects/{project_id}/training-configs"
    with connect(url, token) as client:
        if upload is not None:
            found = [client.post(path, {"name": name or upload.stem, "config": upload.read_text(encoding="utf-8")})]
        elif delete is not None:
            client.delete(f"{path}/{delete}")
            found = client.get(path)
        else:
            found = client.get(path)
    emit(found, as_json, lambda items: console.print(table(("id", "name", "kind", "code", "created"), (
        (c["id"], c["name"], c["kind"], "yes" if c["code"] else "no", when(c["created_at"])) for c in items),
        f"training configs of project {project_id}")))


@app.command(rich_help_panel=PANEL)
def engines(url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """The training engines, their kinds and languages, their default parameters, and whether each can train here."""
    with connect(url, token) as client:
        found = client.get("/api/engines")
    emit(found, as_json, lambda items: console.print(table(("engine", "family", "kinds", "languages", "defaults", "here"), (
        (e["name"], e["family"], e["kinds"], e["languages"], _defaults(e["defaults"]), "yes" if e["available"] else e["reason"])
        for e in items), "engines")))


def _defaults(params: dict[str, Any]) -> str:
    return f"{params['epochs']} epochs, batch {params['batch_size']}, lr {params['learning_rate']:g}, dropout {params['dropout']:g}"


@app.command("training-data", rich_help_panel=PANEL)
def training_data(project_id: ProjectArg, url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """What a training would use now: the selection, the split and per-label counts, with warnings and errors."""
    with connect(url, token) as client:
        summary = client.get(f"/api/projects/{project_id}/training-data")
    emit(summary, as_json, _print_training_data)


def _print_training_data(s: dict[str, Any]) -> None:
    split = s["split"]
    console.print(f"{s['tasks_selected']} tasks selected; split {split['method']}: {split['train_tasks']} to train, "
                  f"{split['test_tasks']} held out")
    console.print(table(("kind", "label", "examples"), (
        (kind, label, count) for kind, d in s["kinds"].items() for label, count in d["label_counts"].items()), "labels"))
    for line in s["warnings"]:
        console.print(f"[yellow]warning[/] {line}", highlight=False)
    for line in s["errors"]:
        console.print(f"[red]error[/] {line}", highlight=False)


@app.command("export", rich_help_panel=PANEL)
def export(project_id: ProjectArg,
           output: Annotated[Path, typer.Option("-o", "--output", help="The file to write.")],
           format: Annotated[str, typer.Option("--format", help="json (Label Studio), conll, or spacy (a tar of DocBin shards).")] = "json",
           url: UrlOption = None, token: TokenOption = None) -> None:
    """Write the project's training selection to a file, streamed."""
    with connect(url, token) as client:
        size, headers = client.download(f"/api/projects/{project_id}/export", output, params={"format": format})
    console.print(f"wrote {output} ({size:,} bytes, {format})")
    if left_out := headers.get("Annoray-Left-Out"):
        console.print(f"left out: {left_out}")


@app.command("logs", rich_help_panel=PANEL)
def logs(job_id: Annotated[int, typer.Argument(help="Training job id.")], home: HomeOption = None) -> None:
    """A training's log, read from the database of ``--home`` (or ANNORAY_HOME): no running API needed."""
    from annoray.platform.errors import NotFound
    from annoray.platform.models.training_log import log_text
    from annoray.platform.settings import Settings
    from annoray.platform.store.db import create_db_engine, session_factory
    from annoray.platform.store.repositories import TrainingJobRepository, TrainingLogRepository

    settings = Settings() if home is None else Settings(home=home.expanduser().resolve())
    if settings.database_url is None and not settings.home.joinpath("annoray.db").exists():
        typer.echo(f"error: no annoray database under {settings.home}; give the home with --home or ANNORAY_HOME", err=True)
        raise typer.Exit(1)
    engine = create_db_engine(settings.resolved_database_url)
    try:
        with session_factory(engine)() as session:
            TrainingJobRepository(session).get(job_id)
            typer.echo(log_text(TrainingLogRepository(session).lines(job_id)), nl=False)
    except NotFound as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
