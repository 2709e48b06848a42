"""The text of a training log's lines; each line's record also feeds the JSON log (`platform.training_log`)."""

from __future__ import annotations

import platform
import sys
from typing import Any

from annoray.platform.models.training_log import reference_text


def library_versions(engine_versions: dict[str, str]) -> dict[str, str]:
    import ray

    from annoray import __version__

    return {"annoray": __version__, "python": sys.version.split()[0], "ray": ray.__version__,
            "platform": platform.platform(terse=True)} | engine_versions


def request_text(job: dict[str, Any]) -> str:
    params = ", ".join(f"{k}={v}" for k, v in job["params"].items())
    selection = ", ".join(f"{k}={v}" for k, v in job["selection"].items())
    embeddings = job.get("embeddings") or "none (hash embeddings)"
    return (f"training {job['id']}: {job['kind']} model with engine {job['engine']} (source {job['source']}, "
            f"language {job['language']}), requested by {job['requested_by'] or 'the platform'}"
            f"\n  parameters: {params}\n  selection: {selection}\n  embeddings: {embeddings}"
            + (f"\n  license seats: {', '.join(job['licenses'])}" if job.get("licenses") else "")
            + (f"\n  pipeline: the project's own training config '{job['custom_config']}'" if job.get("custom_config") else ""))


def start_text(run: dict[str, Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in run["versions"].items())
    resources = ", ".join(f"{k}={v}" for k, v in run["resources"].items())
    return (f"started on Ray Train as run '{run['run']}' (attempt {run['attempt']}, up to {run['max_failures']} worker "
            f"restarts)\n  resources per worker: {resources}\n  versions: {versions}")


def data_text(data: dict[str, Any]) -> str:
    split = data["split"]
    counts = ", ".join(f"{label}={n}" for label, n in data["label_counts"].items())
    return (f"data: {data['tasks_selected']} tasks with an eligible completion; split {split['method']} "
            f"(validation {split['validation_split']}, seed {split['seed']}): {split['train_tasks']} train / "
            f"{split['test_tasks']} test tasks; {data['train_examples']} train / {data['test_examples']} test examples"
            f"\n  examples per label: {counts}")


def epoch_text(report: dict[str, Any]) -> str:
    took = (f"{report['wall_seconds']:.1f} s ({report['seconds']:.2f} s training and scoring, the rest saving its checkpoint)"
            if "wall_seconds" in report else f"{report['seconds']:.2f} s")
    line = f"epoch {report['epoch']}/{report['epochs']}: loss {report['loss']:.4f}, {took}, learning rate {report['learning_rate']:.6g}"
    micro = report.get("metrics", {}).get("micro")
    if micro:
        line += f", dev micro P/R/F1 {micro['precision']:.4f}/{micro['recall']:.4f}/{micro['f1']:.4f}"
    return line


def metrics_text(metrics: dict[str, Any]) -> str:
    """The benchmark as a table: per label, micro and macro P/R/F1, accuracy and confusion matrix when present."""
    rows = [f"  {'label':<24} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}"]
    for label, m in metrics.get("per_label", {}).items():
        rows.append(f"  {label:<24} {m['precision']:>9.4f} {m['recall']:>9.4f} {m['f1']:>9.4f} {m['support']:>8}")
    for avg in ("micro", "macro"):
        if avg in metrics:
            m = metrics[avg]
            rows.append(f"  {avg + ' avg':<24} {m['precision']:>9.4f} {m['recall']:>9.4f} {m['f1']:>9.4f}")
    if "accuracy" in metrics:
        rows.append(f"  accuracy {metrics['accuracy']:.4f}")
    if "confusion_matrix" in metrics:
        labels, matrix = metrics["confusion_matrix"]["labels"], metrics["confusion_matrix"]["matrix"]
        width = max(len(label) for label in labels) + 2
        rows.append("  confusion matrix (rows: gold, columns: predicted)")
        rows.append("  " + " " * width + "".join(f"{label:>{width}}" for label in labels))
        for label, row in zip(labels, matrix, strict=True):
            rows.append(f"  {label:<{width}}" + "".join(f"{n:>{width}}" for n in row))
    if guess := metrics.get("reference"):
        rows.append(f"  to judge them by, {reference_text(guess)}")
    return "final metrics on the held-out split:\n" + "\n".join(rows)



def deploy_text(decision: dict[str, Any]) -> str:
    """The deploy after training: what was decided, on which scores."""
    def score(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    line = f"deploy: {decision['decision']} {decision['model']} ({decision['metric']} {score(decision['score'])}"
    if decision.get("current"):
        line += f"; in place: {decision['current']} {score(decision['current_score'])} on {decision.get('current_scored_on', 'no score')}"
    line += f"; gate {'on' if decision['gated'] else 'off'}): {decision['reason']}"
    if decision["decision"] == "deployed":
        line += f"\n  labeling config version {decision['config_version']}; servers redeploying: {decision['servers'] or 'none'}"
    return line
