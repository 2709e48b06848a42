"""A server's output for one task, written as a Label Studio prediction for one project's config.

Entities go to the ``<Labels>`` that holds their label, assertion status to the assertion labels on
the same span, document classes to the ``<Choices>`` bound to their model (or whose choices they
are), rule matches to the ``<Labels>`` that opted into the rule. Labels the config does not have are
left out. The task's score is the mean of its regions' scores.
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
    scores = [item["score"] for item in result]
    return result, (round(sum(scores) / len(scores), 4) if scores else None)
