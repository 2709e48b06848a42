"""The commands that run the platform itself: ``up``, ``quickstart``, and ``convert-conll``."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from annoray.api.cli.app import HomeOption, app
from annoray.api.cli.render import console, progress_console
from annoray.platform.settings import Settings


SIGN_IN_LINK_FILE = "sign-in.link"


def _settings(home: Path | None, **api: object) -> Settings:
    settings = Settings()
    if home is not None:
        settings = settings.model_copy(update={"home": home.expanduser().resolve()})
    if api:
        settings = settings.model_copy(update={"api": settings.api.model_copy(update=api)})
    return settings


def admin_sign_in_link(settings: Settings, engine: Any) -> str:
    """A one-time dashboard sign-in link for the admin (the token's owner)."""
    from annoray.platform.services.access import sign_in_link
    from annoray.platform.store.db import session_factory

    return sign_in_link(session_factory(engine, write=True), settings.admin_token_path.read_text().strip())


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
    from annoray.api.ops import configure_logging
    from annoray.platform.store.home import init_home
    from annoray.scheduler import start_scheduler

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
    link = f"http://{host}:{port}{admin_sign_in_link(settings, engine)}"
    if sys.stdout.isatty():
        console.print(f"dashboard: http://{host}:{port}/ui/  sign in once as admin, within the hour: {link}", soft_wrap=True)
    else:  # a log collector would keep the link: it goes to a file only the admin reads
        path = settings.home / SIGN_IN_LINK_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(link + "\n")
        console.print(f"dashboard: http://{host}:{port}/ui/  a one-time admin sign-in link, valid for an hour, is in {path}",
                      soft_wrap=True)
    if (warning := exposure_warning(host, settings.api.allowed_hosts)) is not None:
        console.print(Text(warning, style="bold yellow"), soft_wrap=True)
    configure_logging(settings.api.log_format)
    uvicorn.run(create_app(settings, engine=engine), host=host, port=port, log_level="info", log_config=None,
                proxy_headers=False)  # the app believes its own ANNORAY_API__TRUSTED_PROXIES


def exposure_warning(host: str, allowed_hosts: list[str]) -> str | None:
    """What to do when the API listens beyond this machine: annoray speaks plain HTTP, so tokens would cross the
    network in clear text unless a TLS proxy is in front."""
    import ipaddress

    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    advice = "" if allowed_hosts != ["*"] else " and set ANNORAY_API__ALLOWED_HOSTS to the names it is reached by"
    return (f"warning: the API listens on {host}, beyond this machine, over plain HTTP: API tokens and sign-in links "
            f"would cross the network unencrypted. Put a TLS-terminating proxy in front{advice} (README: Running in "
            "production).")


@app.command()
def quickstart(home: HomeOption = None) -> None:
    """Run the main job on the bundled sample project, on the embedded default, through the HTTP API: train and
    deploy, pre-annotate, then retrain and redeploy by active learning as completions arrive."""
    from annoray.api import quickstart as steps
    from annoray.api.app import create_app
    from annoray.api.client import AnnorayClient
    from annoray.api.server import BackgroundServer
    from annoray.platform.store.home import init_home
    from annoray.scheduler import start_scheduler

    from annoray.api.quickstart_visual import quickstart_settings

    settings = quickstart_settings(_settings(home or Path.cwd() / "annoray-quickstart"))
    engine = init_home(settings)
    token = settings.admin_token_path.read_text().strip()
    driver_log = settings.home / "ray-driver.log"
    with ray_output_to(driver_log):
        with console.status("starting Ray and the scheduler"):
            start_scheduler(settings)
        with BackgroundServer(create_app(settings, engine=engine)) as url:
            client = AnnorayClient(url, token)
            jobs = steps.run(client, settings)
            client.close()
    console.rule("where things are")
    console.print(f"models: {settings.resolved_model_store}")
    console.print(f"training logs: in the database {settings.resolved_database_url}; serve them with "
                  f"`annoray up --home {settings.home}`, then `annoray jobs --job <id> --log` or GET /api/trainings/<id>/log")
    console.print(f"Ray's own logs (workers, Serve replicas): {_ray_logs()}; what Ray printed here: {driver_log}")
    projects = sorted({job["project_id"] for job in jobs})
    console.print(f"in the dashboard: run `annoray up --home {settings.home}` and open the sign-in link it prints; then "
                  + ", ".join(f"/ui/projects/{pid}/history" for pid in projects)
                  + " (trainings, their logs and comparisons), /ui/models (benchmarks, confusion matrices), /ui/clusters")
    if any(job["status"] != "succeeded" for job in jobs):
        raise typer.Exit(1)


@contextmanager
def ray_output_to(path: Path) -> Iterator[None]:
    """Ray's driver prints its own messages (its logger's lines, the raylet's warnings about worker processes) to
    whatever ``sys.stdout`` and ``sys.stderr`` are when it prints: send them to ``path``, while annoray's consoles
    keep the terminal."""
    import logging

    import ray  # noqa: F401  (configures Ray's logger, whose handlers are moved below)

    terminal = console.file, progress_console.file
    console.file, progress_console.file = terminal
    handlers = [h for h in logging.getLogger("ray").handlers if isinstance(h, logging.StreamHandler)]
    with path.open("a", encoding="utf-8") as log, redirect_stdout(log), redirect_stderr(log):
        streams = [h.setStream(log) for h in handlers]
        try:
            yield
        finally:
            for handler, stream in zip(handlers, streams, strict=True):
                handler.setStream(stream)
            console.file, progress_console.file = terminal


def _ray_logs() -> str:
    """Where a local Ray writes its logs: Ray links its latest session folder under its temp dir (/tmp/ray)."""
    return "/tmp/ray/session_latest/logs"


@app.command("convert-conll")
def convert_conll(
    source: Annotated[Path, typer.Argument(help="CoNLL file: token<TAB>tag or CoNLL-2003 columns.", exists=True, dir_okay=False)],
    output: Annotated[Path, typer.Argument(help="Label Studio task JSON to write.")],
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag every task (e.g. train or test).")] = None,
) -> None:
    """Convert a CoNLL file into Label Studio tasks (labels group 'label' on text 'text')."""
    from annoray.platform.labeling.conll import conll_to_tasks

    tasks = conll_to_tasks(source, tags=tag or ())
    output.write_text(json.dumps(tasks, ensure_ascii=False))
    console.print(f"{len(tasks)} tasks written to {output}")

