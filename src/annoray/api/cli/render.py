"""How the CLI shows what the API answers: tables of plain text, metrics, one-line refusals, or the JSON itself."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from annoray.api.client import ApiError
from annoray.platform.models.training_log import reference_text

console = Console()
progress_console = Console(stderr=True)  # keeps stdout pure JSON under --json


def refusal(error: ApiError) -> str:
    """``error 422: <detail>; <where>: <message>; ...``, leaving out errors the detail already says."""
    reasons = [r for r in map(_reason, error.errors) if r not in error.detail]
    return "; ".join([f"error {error.status}: {error.detail}", *reasons])


def _reason(error: dict[str, Any]) -> str:
    where = [error.get("field"), error.get("line") is not None and f"line {error['line']}",
             error.get("tag") and f"<{error['tag']}>", error.get("index") is not None and f"item {error['index']}"]
    place = " ".join(str(w) for w in where if w)
    return f"{place}: {error.get('message', '')}" if place else str(error.get("message", ""))


def emit(data: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    """The API's JSON as it came (``--json``), or the rendering meant for people."""
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        render(data)


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> Table | Text:
    """A Rich table whose cells are plain text (names and labels from the API are never read as markup) and wrap rather
    than being cut, so a narrow terminal shows every name whole; a line saying so when there is nothing to show."""
    rows = list(rows)
    if not rows:
        return Text(f"no {title or 'rows'}", style="dim")
    out = Table(title=title)
    for column in columns:
        out.add_column(column, overflow="fold")
    for row in rows:
        out.add_row(*(Text(cell(value)) for value in row))
    return out


def cell(value: Any) -> str:
    if value is None or value == []:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def when(iso: str | None) -> str | None:
    return iso[:16].replace("T", " ") if iso else None


def micro_f1(metrics: dict[str, Any]) -> float | None:
    return (metrics or {}).get("micro", {}).get("f1")


def resources(r: dict[str, Any]) -> str:
    text = f"{r.get('cpus', 0):g} CPU / {r.get('memory_gb', 0):g} GB"
    return text + (f" / {r['gpus']:g} GPU" if r.get("gpus") else "")


def short(node_id: str | None) -> str | None:
    return node_id[:12] if node_id else None


def job_progress(job: dict[str, Any]) -> str:
    return f"{job['progress']['epoch']}/{job['progress']['epochs']}"


def trainings_table(jobs: list[dict[str, Any]], title: str | None = None) -> Table | Text:
    return table(("id", "kind", "source", "status", "epoch", "micro F1", "model", "created", "reason / error"), (
        (j["id"], j["kind"], j["source"], j["status"], job_progress(j), micro_f1(j["metrics"]), j["model"],
         when(j["created_at"]), j.get("reason") or j.get("error")) for j in jobs), title)


def deployments_table(jobs: list[dict[str, Any]]) -> Table | Text:
    """The deploy after training of each job that asked for one: the decision and why, on which scores."""
    return table(("model", "decision", "metric", "new", "held out", "in place", "its score, scored on", "why"), (
        (d["model"], d["decision"], d["metric"], d["score"], d.get("held_out"), d.get("current"), _incumbent_score(d),
         d.get("reason", "")) for d in (j["deployment"] for j in jobs if j.get("deployment"))), "deploy after training")


def _incumbent_score(decision: dict[str, Any]) -> str | None:
    """The model in place is scored again on each new training's held-out split, so its score moves with the split."""
    if decision.get("current_score") is None:
        return None
    return f"{decision['current_score']:.3f}, {decision.get('current_scored_on', 'its own held-out split')}"


def judged(metrics: dict[str, Any], held_out: int | None) -> Text | None:
    """What a model's scores can be judged by: how many examples they rest on and what a guess with no model scores."""
    parts = [f"scored on {held_out} held-out examples"] if held_out is not None else []
    if guess := metrics.get("reference"):
        parts.append(reference_text(guess))
    return Text("; ".join(parts), style="dim") if parts else None


def metric_rows(metrics: dict[str, Any]) -> list[tuple[str, float, float, float, int | None]]:
    """(label, precision, recall, f1, support) per label, then the micro and macro averages."""
    rows = [*metrics.get("per_label", {}).items(), *((f"{avg} avg", metrics[avg]) for avg in ("micro", "macro") if avg in metrics)]
    return [(label, m["precision"], m["recall"], m["f1"], m.get("support")) for label, m in rows]


def metrics_table(metrics: dict[str, Any], title: str) -> Table | Text:
    return table(("label", "precision", "recall", "f1", "support"), metric_rows(metrics), title)


def license_rows(licenses: list[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    for lic in licenses:
        expiry = when(lic["expires_at"]) + (" (expired)" if lic["expired"] else "")
        yield lic["id"], lic["key"], lic["scopes"], f"{lic['leased']}/{lic['seats']}", expiry
