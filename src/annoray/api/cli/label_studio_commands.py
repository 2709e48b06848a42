"""``annoray ls``: Label Studio in front, for teams that pull instead of connecting annoray as the ML backend.

``annoray ls sync`` reads a Label Studio project through Label Studio's own API (``label-studio-sdk``) and sends it to
annoray page by page (``POST /ls/import``): tasks, annotations and annotators mirrored, idempotent by Label Studio's
ids, so a sync stopped half-way is run again and goes on (pages already sent change nothing). ``--push-predictions``
writes annoray's newest prediction of each task back to Label Studio, once per task and model version.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from annoray.api.cli.app import PANEL, app
from annoray.api.cli.client_commands import connect

ls_app = typer.Typer(help="Label Studio in front of annoray: pull its annotations, push annoray's predictions.", no_args_is_help=True)
app.add_typer(ls_app, name="ls", rich_help_panel=PANEL)


def _studio(url: str, token: str) -> Any:
    try:
        from label_studio_sdk import LabelStudio
    except ImportError:
        typer.echo("error: `annoray ls` needs Label Studio's SDK: pip install 'annoray[labelstudio]'", err=True)
        raise typer.Exit(1) from None
    return LabelStudio(base_url=url.rstrip("/"), api_key=token)


def _plain(item: Any) -> dict[str, Any]:
    """An annotation or prediction as JSON (the SDK gives some as dicts, some as its own models)."""
    return item if isinstance(item, dict) else item.model_dump(mode="json")


@ls_app.command()
def sync(
    url: Annotated[str, typer.Option("--url", envvar="LABEL_STUDIO_URL", help="Label Studio's address.")],
    token: Annotated[str, typer.Option("--token", envvar="LABEL_STUDIO_API_KEY", help="A Label Studio access token.")],
    project: Annotated[int, typer.Option("--project", help="The Label Studio project id.")],
    push_predictions: Annotated[bool, typer.Option("--push-predictions", help="Also write annoray's predictions back to Label Studio.")] = False,
    page_size: Annotated[int, typer.Option(min=1, max=1000, help="Tasks sent to annoray per request.")] = 200,
    annoray_url: Annotated[str | None, typer.Option("--annoray-url", envvar="ANNORAY_URL", show_default=False,
                                                    help="Address of annoray's API (default http://127.0.0.1:8765).")] = None,
    annoray_token: Annotated[str | None, typer.Option("--annoray-token", envvar="ANNORAY_TOKEN", show_default=False,
                                                      help="Your annoray token (an owner or manager of the linked project).")] = None,
) -> None:
    """Mirror a Label Studio project's tasks and annotations into annoray (its project linked, or made from its
    labeling config, as connecting annoray as the ML backend does), then optionally push predictions back."""
    studio = _studio(url, token)
    remote = studio.projects.get(id=project)
    uid = f"{remote.id}.{int(remote.created_at.timestamp())}"
    users = {str(u.id): u.email for u in studio.users.list() if getattr(u, "email", None)}
    pushed: dict[int, set[str]] = {}  # Label Studio task id -> the model versions of its predictions
    totals = {"tasks": 0, "completions": 0, "removed": 0}
    with connect(annoray_url, annoray_token) as client:
        page: list[dict[str, Any]] = []

        def send() -> None:
            answer = client.post("/ls/import", json={"project": uid, "schema": remote.label_config, "title": remote.title or "",
                                                     "instance": url, "users": users, "tasks": page})
            for key in totals:
                totals[key] += answer[key]
            typer.echo(f"annoray project {answer['project_id']}: {totals['tasks']} tasks, {totals['completions']} "
                       f"completions so far", err=True)
            page.clear()

        for task in studio.tasks.list(project=project, fields="all", page_size=page_size):
            annotations = [_plain(a) for a in task.annotations or []]
            page.append({"id": task.id, "data": task.data, "annotations": annotations})
            pushed[task.id] = {_plain(p).get("model_version") for p in task.predictions or []}
            if len(page) >= page_size:
                send()
        if page or not totals["tasks"]:
            send()
        written = 0
        if push_predictions:
            after: int | None = 0
            while after is not None:
                answer = client.get("/ls/predictions", params={"project": uid, "after": after})
                for item in answer["items"]:
                    if item["model_version"] in pushed.get(item["task"], set()):
                        continue
                    studio.predictions.create(task=item["task"], result=item["result"], score=item["score"],
                                              model_version=item["model_version"])
                    written += 1
                after = answer["next"]
    typer.echo(f"synced Label Studio project {project}: {totals['tasks']} tasks, {totals['completions']} completions, "
               f"{totals['removed']} removed" + (f"; {written} predictions pushed" if push_predictions else ""))
