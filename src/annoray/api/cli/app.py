"""The ``annoray`` Typer app and the options its commands share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="annoray: train NLP models from annotations and pre-annotate with them, on Ray.", no_args_is_help=True)

PANEL = "Client commands (HTTP API)"

HomeOption = Annotated[Path | None, typer.Option("--home", help="ANNORAY_HOME: database, model store, admin token.")]
UrlOption = Annotated[str | None, typer.Option(
    "--url", envvar="ANNORAY_URL", show_default=False, help="Address of the API (default http://127.0.0.1:8765).")]
TokenOption = Annotated[str | None, typer.Option("--token", envvar="ANNORAY_TOKEN", show_default=False, help="Your API token.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of tables.")]
ProjectArg = Annotated[int, typer.Argument(help="Project id.", show_default=False)]
