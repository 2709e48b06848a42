"""The ``annoray`` Typer app and the options its commands share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import click
import typer
from typer.core import TyperGroup

app = typer.Typer(help="annoray: train NLP models from annotations and pre-annotate with them, on Ray.", no_args_is_help=True)

PANEL = "Client commands (HTTP API)"

HomeOption = Annotated[Path | None, typer.Option("--home", help="ANNORAY_HOME: database, model store, admin token.")]
UrlOption = Annotated[str | None, typer.Option(
    "--url", envvar="ANNORAY_URL", show_default=False, help="Address of the API (default http://127.0.0.1:8765).")]
TokenOption = Annotated[str | None, typer.Option("--token", envvar="ANNORAY_TOKEN", show_default=False, help="Your API token.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of tables.")]


class ListOrShow(TyperGroup):
    """A group of commands about one kind of thing: alone it lists them (``annoray projects``), with an id it shows that
    one (``annoray projects 3``); any other first word is one of its commands (``annoray projects create``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0].isdigit():
            args = ["show", *args]
        elif not args or (args[0].startswith("-") and args[0] not in ("--help", "-h")):
            args = ["list", *args]
        return super().parse_args(ctx, args)


def things(name: str, help: str) -> typer.Typer:
    """A ``ListOrShow`` group added to the app; it needs a ``list`` and a ``show`` command."""
    group = typer.Typer(cls=ListOrShow, help=f"{help} `annoray {name}` lists them, `annoray {name} ID` shows one.",
                        no_args_is_help=False)
    app.add_typer(group, name=name, rich_help_panel=PANEL)
    return group


ProjectArg = Annotated[int, typer.Argument(help="Project id.", show_default=False)]
ServerArg = Annotated[int, typer.Argument(help="Server id.", show_default=False)]
