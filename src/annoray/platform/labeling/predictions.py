"""A server's output for one task, written as a Label Studio prediction for one project's config.

Entities go to the ``<Labels>`` that holds their label, assertion status to the assertion labels on
the same span, document classes to the ``<Choices>`` bound to their model (or whose choices they
are), rule matches to the ``<Labels>`` that opted into the rule. A page's Visual NER entities become Label
Studio OCR regions: per line of an entity, a rectangle, its label and its text sharing one region id, in percent
of the page. Labels the config does not have are left out. The task's score is the mean of its regions' scores.
"""

from __future__ import annotations

from typing import Any

from annoray.platform.labeling.config import CHOSEN_FROM, LabelGroup, LabelingConfig


def _span(group: LabelGroup, item: dict[str, Any], score: float) -> dict[str, Any]:
    label = item["label"]
    return {"from_name": group.label_from[label], "to_name": group.to_name, "type": "labels",
            "value": {"start": item["start"], "end": item["end"], "text": item["text"], "labels": [label]}, "score": score}


def label_studio_result(config: LabelingConfig, output: dict[str, Any]) -> tuple[list[dict[str, Any]], float | None]:
    """The ``result`` list and the task ``score`` of a prediction for a project with ``config``."""
    result: list[dict[str, Any]] = []
    if config.ner:
        result += [_span(config.ner, e, e["score"]) for e in output.get("entities", []) if e["label"] in config.ner.label_from]
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
    for i, item in enumerate(result):
        item["id"] = f"r{i}"
    if config.visual_ner and output.get("page"):
        result += _page_regions(config, config.visual_ner, output["page"], output.get("regions", []))
    scores = [item["score"] for item in result if item.get("score") is not None]  # a model may give no confidence
    return result, (round(sum(scores) / len(scores), 4) if scores else None)


def _page_regions(config: LabelingConfig, group: LabelGroup, page: dict[str, Any], entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Label Studio OCR regions: a ``rectanglelabels`` region, or a ``rectangle`` + ``labels`` pair, with a ``textarea``
    holding the text when the config has one; the items of one region share its id."""
    width, height = page["width"], page["height"]
    rectangle, textarea = config.control("Rectangle", group.to_name), config.control("TextArea", group.to_name)
    out: list[dict[str, Any]] = []
    for entity in entities:
        holder = group.label_from.get(entity["label"])
        if holder is None:
            continue
        tag = "rectanglelabels" if config.controls.get(holder) == "RectangleLabels" else "labels"
        for line in entity["lines"]:
            x0, y0, x1, y1 = line["box"]
            box = {"x": round(100 * x0 / width, 4), "y": round(100 * y0 / height, 4), "width": round(100 * (x1 - x0) / width, 4),
                   "height": round(100 * (y1 - y0) / height, 4), "rotation": 0}
            shared = {"id": f"v{len(out)}", "to_name": group.to_name, "original_width": width, "original_height": height,
                      "score": entity["score"]}
            items = [shared | {"from_name": holder, "type": tag, "value": box | {tag: [entity["label"]]}}]
            if tag == "labels" and rectangle:
                items.insert(0, shared | {"from_name": rectangle, "type": "rectangle", "value": box})
            if textarea:
                items.append(shared | {"from_name": textarea, "type": "textarea", "value": box | {"text": [line["text"]]}})
            out += items
    return out
