"""A server's output for one task, written as a Label Studio prediction for one project's config.

Entities go to the ``<Labels>`` that holds their label (an entity an annotator marked keeps its region id), assertion
status to the assertion labels on the same span, relations between entities to ``<Relations>`` as Label Studio
relation items joining the entities' region ids (``bi`` when the config's relations are undirected), document
classes to the ``<Choices>`` bound to their model (or whose choices they are), rule matches to the ``<Labels>`` that
opted into the rule. A page's Visual NER entities become Label Studio OCR regions, one per entity: a rectangle
holding its words, its label and its text sharing one region id, in percent of the page. Labels the config does not have are
left out. The task's score is the mean of its regions' scores.
"""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from annoray.platform.labeling.config import CHOSEN_FROM, LabelGroup, LabelingConfig
from annoray.platform.store.tables import Prediction, Task


def _span(group: LabelGroup, item: dict[str, Any], score: float) -> dict[str, Any]:
    label = item["label"]
    return {"from_name": group.label_from[label], "to_name": group.to_name, "type": "labels",
            "value": {"start": item["start"], "end": item["end"], "text": item["text"], "labels": [label]}, "score": score}


def label_studio_result(config: LabelingConfig, output: dict[str, Any]) -> tuple[list[dict[str, Any]], float | None]:
    """The ``result`` list and the task ``score`` of a prediction for a project with ``config``."""
    result: list[dict[str, Any]] = []
    regions: dict[int, dict[str, Any]] = {}  # entity index -> its item, for the relations that join them
    if config.ner:
        for i, entity in enumerate(output.get("entities", [])):
            if entity["label"] in config.ner.label_from:
                regions[i] = _span(config.ner, entity, entity["score"]) | ({"id": entity["id"]} if entity.get("id") else {})
        result += regions.values()
        for match in output.get("rules", []):
            holder = config.rules.get(match["rule"])
            if holder is not None and config.ner.label_from.get(match["label"]) == holder:
                result.append(_span(config.ner, match, 1.0))
    if config.assertion:
        result += [_span(config.assertion, a, a["score"]) for a in output.get("assertions", [])
                   if a["label"] in config.assertion.label_from]
    for classes in output.get("classes", []):
        scores: dict[str, float] = classes["scores"]
        group = next((g for g in config.classification_groups if g.model == classes["model"]), None) or next(
            (g for g in config.classification_groups if set(scores) <= set(g.choices)), None)
        if group is None or not scores:
            continue
        if classes["multiple"]:
            chosen = [c for c, p in scores.items() if p >= CHOSEN_FROM and c in group.choices]
            score = min((scores[c] for c in chosen), default=0.0)
        else:
            best = max(scores, key=lambda c: scores[c])
            chosen, score = ([best], scores[best]) if best in group.choices else ([], 0.0)
        if chosen:
            result.append({"from_name": group.name, "to_name": group.to_name, "type": "choices",
                           "value": {"choices": chosen}, "score": score})
    given = {item["id"] for item in result if "id" in item}  # a marked entity's own
    fresh = (f"r{n}" for n in itertools.count() if f"r{n}" not in given)
    for item in result:
        if "id" not in item:
            item["id"] = next(fresh)
    if config.relation:
        direction = "right" if config.relation.directed else "bi"
        result += [{"type": "relation", "from_id": regions[r["from"]]["id"], "to_id": regions[r["to"]]["id"],
                    "direction": direction, "labels": [r["label"]], "score": r["score"]}
                   for r in output.get("relations", [])
                   if r["label"] in config.relation.labels and r["from"] in regions and r["to"] in regions]
    if config.visual_ner and output.get("page"):
        result += _page_regions(config, config.visual_ner, output["page"], output.get("regions", []))
    scores = [item["score"] for item in result if item.get("score") is not None]  # a model may give no confidence
    return result, (round(sum(scores) / len(scores), 4) if scores else None)


def _page_regions(config: LabelingConfig, group: LabelGroup, page: dict[str, Any], entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Label Studio OCR regions, one per entity: a ``rectanglelabels`` region, or a ``rectangle`` + ``labels`` pair,
    with a ``textarea`` holding its text line by line when the config has one; the items of one region share its id,
    and its box is the union of its words' (as an annotator draws an entity that runs over two lines)."""
    width, height = page["width"], page["height"]
    rectangle, textarea = config.control("Rectangle", group.to_name), config.control("TextArea", group.to_name)
    out: list[dict[str, Any]] = []
    for entity in entities:
        holder = group.label_from.get(entity["label"])
        if holder is None:
            continue
        tag = "rectanglelabels" if config.controls.get(holder) == "RectangleLabels" else "labels"
        boxes = [line["box"] for line in entity["lines"]]
        x0, y0, x1, y1 = min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)
        box = {"x": round(100 * x0 / width, 4), "y": round(100 * y0 / height, 4), "width": round(100 * (x1 - x0) / width, 4),
               "height": round(100 * (y1 - y0) / height, 4), "rotation": 0}
        shared = {"id": f"v{len(out)}", "to_name": group.to_name, "original_width": width, "original_height": height,
                  "score": entity["score"]}
        items = [shared | {"from_name": holder, "type": tag, "value": box | {tag: [entity["label"]]}}]
        if tag == "labels" and rectangle:
            items.insert(0, shared | {"from_name": rectangle, "type": "rectangle", "value": box})
        if textarea:
            items.append(shared | {"from_name": textarea, "type": "textarea", "value": box | {"text": [line["text"] for line in entity["lines"]]}})
        out += items
    return out


def relations_listed(result: list[Any]) -> list[dict[str, Any]]:
    """The relation items of a result as people read them: the two entities' text, the label, the score, and an arrow
    (``→``, ``←`` or ``↔`` after Label Studio's ``direction``)."""
    texts = {str(r.get("id")): (r.get("value") or {}).get("text", "") for r in result
             if isinstance(r, dict) and r.get("type") != "relation" and r.get("id") is not None}
    arrows = {"right": "→", "left": "←", "bi": "↔"}
    return [{"from": texts.get(str(r.get("from_id")), r.get("from_id")), "to": texts.get(str(r.get("to_id")), r.get("to_id")),
             "label": ", ".join(r.get("labels") or []) or "related", "score": r.get("score"),
             "arrow": arrows.get(r.get("direction", "right"), "→")}
            for r in result if isinstance(r, dict) and r.get("type") == "relation"]


def marked_entities(config: LabelingConfig, result: list[Any]) -> list[dict[str, Any]]:
    """The NER entities of a completion's result, with their region ids, as a server takes them given."""
    if config.ner is None:
        return []
    out = []
    for i, item in enumerate(result):
        if not isinstance(item, dict) or item.get("from_name") not in config.ner.from_names:
            continue
        value = item.get("value") or {}
        labels = [label for label in value.get("labels") or [] if label in config.ner.labels]
        if labels and isinstance(value.get("start"), int) and isinstance(value.get("end"), int):
            out.append({"start": value["start"], "end": value["end"], "label": labels[0], "id": str(item.get("id") or f"c{i}")})
    return out


def task_text(config: LabelingConfig, data: dict[str, Any]) -> str:
    """The text a server reads from a task: the object the config's text labels point at."""
    group = config.ner or config.assertion or config.classification
    key = config.data_key(group.to_name) if group else next(iter(data), "text")
    value = data.get(key, "")
    return value if isinstance(value, str) else str(value)


def uncertainty(result: list[dict[str, Any]]) -> float | None:
    """1 - the lowest confidence among a prediction's regions; None when the models found nothing."""
    scores = [r["score"] for r in result if r.get("score") is not None]
    return round(1.0 - min(scores), 4) if scores else None


def keep_predictions(session: Session, project_id: int, rows: list[dict[str, Any]], model_version: str, *,
                     job_id: int | None = None) -> list[dict[str, Any]]:
    """Keep predictions (``task_id``, ``result``, ``score``) once per task and pre-annotation job (without a job: per
    model version), each task's uncertainty with them, so annotators can take the tasks the models are least sure of
    first. Answers the rows kept: a task seen before is not written again."""
    ids = [r["task_id"] for r in rows]
    same = Prediction.preannotation_job_id == job_id if job_id is not None else Prediction.model_version == model_version
    seen = set(session.scalars(select(Prediction.task_id).where(
        Prediction.project_id == project_id, same, Prediction.task_id.in_(ids)))) if ids else set()
    fresh = []
    for r in rows:
        if r["task_id"] not in seen:
            seen.add(r["task_id"])
            fresh.append(r)
    session.add_all(Prediction(project_id=project_id, task_id=r["task_id"], result=r["result"], score=r["score"],
                               model_version=model_version, preannotation_job_id=job_id) for r in fresh)
    if fresh:
        session.execute(update(Task), [{"id": r["task_id"], "uncertainty": uncertainty(r["result"])} for r in fresh])
    return fresh
