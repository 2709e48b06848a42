"""The client commands of ``annoray`` for licences, tokens, the audit log and the cluster, through the HTTP API alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from annoray.api.cli.app import PANEL, JsonOption, TokenOption, UrlOption, app
from annoray.api.cli.client_commands import connect
from annoray.api.cli.render import console, emit, license_rows, resources, short, table, when


# --- licenses and the cluster ------------------------------------------------------------------------


@app.command(rich_help_panel=PANEL)
def licenses(
    install: Annotated[Path | None, typer.Option(help="Install this license document (JSON).", exists=True, dir_okay=False)] = None,
    delete: Annotated[int | None, typer.Option(help="Delete this license; none of its seats may be leased.")] = None,
    url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Installed licenses, their seats and who holds them (admin); --install or --delete one."""
    with connect(url, token) as client:
        if install is not None:
            emit(client.post("/api/licenses", _document(install)), as_json, lambda lic: _print_licenses([lic], "license installed"))
        elif delete is not None:
            client.delete(f"/api/licenses/{delete}")
            emit({"deleted": delete}, as_json, lambda _: console.print(f"license {delete} deleted"))
        else:
            emit(client.get("/api/licenses"), as_json, lambda items: _print_licenses(items, "licenses"))


def _document(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise typer.BadParameter(f"{path} is not a JSON license document: {error}", param_hint="--install") from None


def _print_licenses(items: list[dict[str, Any]], title: str) -> None:
    holders = {lic["id"]: [f"{lease['holder']} {lease['holder_id']} ({lease['scope']})" for lease in lic["leases"]] for lic in items}
    console.print(table(("id", "key", "scopes", "leased/seats", "expires", "issuer", "held by"), (
        (*row, lic["issuer"], holders[lic["id"]]) for row, lic in zip(license_rows(items), items, strict=True)), title))


@app.command(rich_help_panel=PANEL)
def tokens(
    create: Annotated[str | None, typer.Option(help="Make a named token (its secret is printed this once).")] = None,
    scope: Annotated[str, typer.Option(help="With --create: read, write or admin.")] = "write",
    days: Annotated[float | None, typer.Option(help="With --create: days until it stops working (default 90).")] = None,
    user: Annotated[str | None, typer.Option(help="With --create: whose token (admins), e.g. a service account.")] = None,
    revoke: Annotated[int | None, typer.Option(help="Revoke this token.")] = None,
    all_users: Annotated[bool, typer.Option("--all", help="Every user's tokens (admins).")] = False,
    url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Your named API tokens for automation (name, scope, expiry, last use; never their secrets); --create or --revoke one."""
    with connect(url, token) as client:
        if create is not None:
            body = {"name": create, "scope": scope, "username": user} | ({"expires_in_days": days} if days is not None else {})
            emit(client.post("/api/tokens", body), as_json, lambda t: (
                _print_tokens([t], "token made"), console.print(Text(f"token (shown this once): {t['token']}"))))
        elif revoke is not None:
            client.delete(f"/api/tokens/{revoke}")
            emit({"revoked": revoke}, as_json, lambda _: console.print(f"token {revoke} revoked"))
        else:
            emit(client.get("/api/tokens", params={"all": all_users}), as_json, lambda items: _print_tokens(items, "tokens"))


def _print_tokens(items: list[dict[str, Any]], title: str) -> None:
    console.print(table(("id", "name", "user", "scope", "expires", "last used", "revoked"), (
        (t["id"], t["name"], t["username"], t["scope"], when(t["expires_at"]) or "never", when(t["last_used_at"]),
         when(t["revoked_at"])) for t in items), title))


@app.command(rich_help_panel=PANEL)
def audit(
    user: Annotated[str | None, typer.Option(help="Only this user's requests.")] = None,
    outcome: Annotated[str | None, typer.Option(help="ok, refused or error.")] = None,
    path: Annotated[str | None, typer.Option(help="Only paths starting with this.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Every change made through the API and the dashboard: who, when, from where, what, the outcome (admins)."""
    params = {k: v for k, v in {"username": user, "outcome": outcome, "path": path, "page_size": limit}.items() if v is not None}
    with connect(url, token) as client:
        emit(client.get("/api/audit", params=params), as_json, lambda page: console.print(table(
            ("when", "user", "address", "request", "status", "outcome"),
            ((when(e["at"]), e["username"], e["address"], f"{e['method']} {e['path']}", e["status"],
              e["outcome"] + (f" {e['detail']}" if e["detail"] else "")) for e in page["items"]),
            f"audit log ({page['total']} matching)")))


@app.command(rich_help_panel=PANEL)
def cluster(url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Nodes with free/total resources, running trainings and servers, the queue with its reasons, license seats."""
    with connect(url, token) as client:
        emit(client.get("/api/cluster"), as_json, _print_cluster)


def _free_of_total(node: dict[str, Any], resource: str) -> str:
    if resource == "memory_gb":
        return f"{node['free'][resource]:.1f}/{node['total'][resource]:.1f} GB"
    return f"{node['free'][resource]:g}/{node['total'][resource]:g}"


def _print_cluster(view: dict[str, Any]) -> None:
    console.print(table(("node", "CPU free/total", "memory GB free/total", "GPU free/total"), (
        (n["node_id"], *(_free_of_total(n, r) for r in ("cpus", "memory_gb", "gpus"))) for n in view["nodes"]), "nodes"))
    console.print(table(("training", "project", "kind", "node", "resources", "seats"), (
        (t["id"], t["project_id"], t["kind"], short(t["node_id"]), resources(t["resources"]), [x["scope"] for x in t["leases"]])
        for t in view["trainings"]), "running trainings"))
    console.print(table(("server", "name", "status", "models", "node", "resources per replica"), (
        (s["id"], s["name"], s["status"], s["models"], short(s["node_id"]), resources(s["resources"])) for s in view["servers"]), "servers"))
    _print_queue(view["queue"])
    console.print(table(("id", "key", "scopes", "leased/seats", "expires"), license_rows(view["licenses"]), "license seats"))


@app.command(rich_help_panel=PANEL)
def queue(url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """The trainings waiting to start, in the order the scheduler decides them: position, team, priority, why each
    waits, and how often it was preempted."""
    with connect(url, token) as client:
        emit(client.get("/api/queue"), as_json, _print_queue)


def _print_queue(items: list[dict[str, Any]]) -> None:
    console.print(table(("#", "training", "project", "kind", "team", "priority", "status", "waits", "preempted", "reason"), (
        (q["position"] or "", q["id"], q["project_id"], q["kind"], q["team"], q["priority"], q["status"], q["waits"] or "",
         f"{q['preemptions']}x" if q["preemptions"] else "", q["reason"] or "") for q in items), "queue"))
