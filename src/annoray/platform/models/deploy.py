"""Deploy after training: point the labeling config at a newly trained model, behind the project's gate.

The rewrite sets ``model="<new model>"`` on each label of the trained kind that is not bound to a
pretrained model (one this project did not train), and on the trained ``Choices``. The new config is
validated like any edit (at most five models, one assertion model, ...) and saved as a new version;
the project's servers are told to serve what it names. With the gate on, a model only replaces the
one in place when it scores at least as well on the project's metric; the incumbent is scored on
this training's held-out split when the worker could, else its own benchmark is used.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from typing import Any

from lxml import etree
from sqlalchemy.orm import Session

from annoray.platform.errors import Errors, InvalidInput
from annoray.platform.labeling.config import OBJECT_TAGS, LabelingConfig, ModelKind, hardened_parser, label_kind
from annoray.platform.labeling.projects import project_config, update_labeling_config
from annoray.platform.models.active_learning import metric_value
from annoray.platform.settings import Settings
from annoray.platform.store.repositories import ModelRepository, ServerRepository
from annoray.platform.store.tables import Project, ServerStatus, TrainingJob

SERVING = (ServerStatus.QUEUED, ServerStatus.DEPLOYING, ServerStatus.RUNNING)


def rewrite_config(xml: str, kind: ModelKind, model: str, *, own: Collection[str], choices: str | None = None) -> str:
    """``xml`` with ``model`` on every label of ``kind`` that is unbound or bound to one of ``own`` (or on the
    ``Choices`` named ``choices``, or on the ``<Relation>`` values); comments and layout stay as they were."""
    root = etree.fromstring(xml.encode(), hardened_parser(keep_comments=True))
    objects = {el.get("name"): el.tag for el in root.iter() if isinstance(el.tag, str) and el.tag in OBJECT_TAGS}
    for el in root.iter("Choices", "Label", "Relation"):
        if el.tag == "Relation":
            if kind is ModelKind.RELATION and (el.get("model") is None or el.get("model") in own):
                el.set("model", model)
            continue
        if el.tag == "Choices":
            if kind is ModelKind.CLASSIFICATION and el.get("name") == choices:
                el.set("model", model)
            continue
        parent = el.getparent()
        if parent is None or parent.tag not in ("Labels", "RectangleLabels"):
            continue
        target = objects.get((parent.get("toName") or "").split(",")[0])
        if label_kind(assertion=el.get("assertion") == "true", object_tag=target) is kind and (el.get("model") is None or el.get("model") in own):
            el.set("model", model)
    return etree.tostring(root, encoding="unicode")


def retarget_servers(session: Session, project: Project, config: LabelingConfig) -> list[int]:
    """Point the project's servers at the models its config names now; the scheduler redeploys them."""
    servers = [s for s in ServerRepository(session).with_status(*SERVING, project_id=project.id) if s.models != config.models]
    for server in servers:
        server.models = config.models
    session.flush()
    return [s.id for s in servers]


def incumbent(config: LabelingConfig, kind: ModelKind, own: Collection[str]) -> str | None:
    """The model this project trained that the config names for ``kind`` now (the one a deploy would replace)."""
    group = config.group(kind)
    if group is None:
        return None
    bound = Counter(m for m in group.models.values() if m and m in own)
    return bound.most_common(1)[0][0] if bound else None


def deploy_trained_model(session: Session, settings: Settings, project: Project, job: TrainingJob, model: str,
                         metrics: dict[str, Any], baseline: dict[str, Any] | None, *, held_out: int) -> dict[str, Any]:
    """Check the quality floor and the gate, rewrite and save the config, and retarget the project's servers; returns
    the decision for the history. A forced deploy (``deploy: "force"``) passes the floor and the gate.

    Args:
        baseline: ``{"model", "metrics"}`` of the incumbent scored on this training's held-out split, if it was.
        held_out: how many held-out examples the model was scored on.

    Runs in the caller's transaction, so the catalog entry, the job's end and the deploy land together.
    """
    kind = ModelKind(job.kind)
    config = project_config(project)
    own = ModelRepository(session).trained_for(project.id)
    current = incumbent(config, kind, own - {model})
    metric = project.deploy_metric
    record: dict[str, Any] = {"metric": metric, "model": model, "score": metric_value(metrics, metric),
                              "gated": project.deploy_gate, "current": current, "current_score": None,
                              "held_out": held_out, "forced": job.deploy_forced}
    if current is not None:
        if baseline and baseline.get("model") == current and baseline.get("metrics"):
            record.update(current_score=metric_value(baseline["metrics"], metric), current_scored_on="this training's held-out split")
        elif (catalogued := ModelRepository(session).by_name(current)) is not None:
            record.update(current_score=metric_value(catalogued.metrics or {}, metric), current_scored_on="its own training's held-out split")
    new, old = record["score"], record["current_score"]
    floor = settings.deploy
    if not job.deploy_forced and held_out < floor.min_held_out:
        return record | {"decision": "not deployed", "reason": Errors.E618.format(count=held_out, minimum=floor.min_held_out)}
    if not job.deploy_forced and (new is None or new < floor.floor):
        score = "cannot be measured" if new is None else f"{new:.4f}"
        return record | {"decision": "not deployed", "reason": Errors.E619.format(metric=metric, score=score, floor=floor.floor)}
    if project.deploy_gate and not job.deploy_forced and current is not None and new is not None and old is not None and new < old:
        return record | {"decision": "kept", "reason": f"{metric} {new:.4f} of {model} is below {old:.4f} of {current}, which stays deployed"}
    group = config.group(kind)
    xml = rewrite_config(project.labeling_config, kind, model, own=own, choices=group.name if group else None)
    try:
        updated = update_labeling_config(session, settings, project, xml, reason=f"deploy of {model} (training {job.id})")
    except InvalidInput as exc:
        return record | {"decision": "refused", "reason": Errors.E615.format(why="; ".join(e.message for e in exc.errors) or exc.detail)}
    servers = retarget_servers(session, project, updated)
    reason = f"replaces {current}" if current else "first model of its kind in the config"
    return record | {"decision": "deployed", "config_version": project.config_version, "servers": servers,
                     "reason": f"forced, whatever it scores: {reason}" if job.deploy_forced else reason}
