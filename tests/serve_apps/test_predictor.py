"""The pre-annotation server's computation without Serve: chunk-level entities with scores, assertion on those
chunks, classes, rules; written as Label Studio predictions for a project's config."""

from pathlib import Path

import pytest

from annoray.platform.labeling.config import parse_labeling_config
from annoray.platform.labeling.predictions import label_studio_result
from annoray.serve_apps.predictor import Predictor, ServedModel, ServedRule

from ..conftest import CLINICAL_CONFIG, tiny_models

TEXTS = ["The patient takes folic acid daily for the heart problem.", "No warfarin was given for the brain problem."]
RULES = [ServedRule("dose", "Dose", "regex", pattern=r"\b\d+ ?mg\b"), ServedRule("drugs", "Drug", "dictionary", terms=("Aspirin",))]


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    models = tiny_models()
    return Predictor([ServedModel(f"{kind}_m", kind, str(path)) for kind, path in models.items()], RULES)


def config(rules: str = "") -> object:
    return parse_labeling_config(CLINICAL_CONFIG.format(rules=rules, ner="ner_m", assertion="assertion_m",
                                                        classification="classification_m"))


def test_entities_are_whole_chunks_with_a_confidence(predictor: Predictor) -> None:
    first, second = predictor.predict(TEXTS)
    (folic,) = first.entities
    assert (folic["start"], folic["end"], folic["text"], folic["label"]) == (18, 28, "folic acid", "Drug")
    assert 0.5 < folic["score"] <= 1.0
    assert [e["text"] for e in second.entities] == ["warfarin"]


def test_assertion_labels_the_chunks_and_classification_the_text(predictor: Predictor) -> None:
    first, second = predictor.predict(TEXTS)
    assert [(a["text"], a["label"]) for a in first.assertions + second.assertions] == [("folic acid", "present"), ("warfarin", "absent")]
    assert max(first.classes[0]["scores"], key=first.classes[0]["scores"].get) == "cardiology"
    assert max(second.classes[0]["scores"], key=second.classes[0]["scores"].get) == "neurology"


def test_label_studio_predictions_for_the_project_config(predictor: Predictor) -> None:
    (output,) = predictor.predict(["The patient takes aspirin daily for the heart problem."])
    result, score = label_studio_result(config(), output.as_dict())
    kinds = [(r["from_name"], r["type"], r["value"].get("labels") or r["value"]["choices"], r["value"].get("text")) for r in result]
    assert kinds == [("label", "labels", ["Drug"], "aspirin"), ("status", "labels", ["present"], "aspirin"),
                     ("specialty", "choices", ["cardiology"], None)]
    assert all(r["to_name"] == "text" and 0 <= r["score"] <= 1 for r in result) and 0 < score <= 1


def test_rules_appear_alongside_models_only_for_a_project_that_opts_in(predictor: Predictor) -> None:
    (output,) = predictor.predict(["The patient takes Aspirin 100 mg daily."])
    assert {(m["rule"], m["text"]) for m in output.rules} == {("dose", "100 mg"), ("drugs", "Aspirin")}
    with_rules, _ = label_studio_result(config(' rules="dose,drugs"'), output.as_dict())
    without, _ = label_studio_result(config(), output.as_dict())
    assert {(r["value"]["text"], r["value"]["labels"][0]) for r in with_rules if r["from_name"] == "label"} >= {
        ("100 mg", "Dose"), ("Aspirin", "Drug")}
    assert not any(r["value"].get("text") == "100 mg" for r in without)


def test_a_sixth_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at most 5 models"):
        Predictor([ServedModel(f"m{i}", "ner", str(tmp_path)) for i in range(6)], max_models=5)


@pytest.mark.timeout(60)
def test_a_catastrophic_pattern_cannot_hang_a_replica() -> None:
    """`(a+)+$` backtracks exponentially in Python's `re`: 41 characters took more than 3 minutes. RE2 runs it in
    time linear in the text, so this finishes (the timeout is the test's failure, not a speed goal)."""
    rules = [ServedRule("evil", "A", "regex", pattern="(a+)+$"), ServedRule("tail", "A", "regex", pattern="a+b$")]
    (prediction,) = Predictor([], rules).predict(["a" * 5000 + "!"])
    assert prediction.rules == []
    (prediction,) = Predictor([], rules).predict(["x aaaa"])
    assert [(r["start"], r["end"], r["rule"]) for r in prediction.rules] == [(2, 6, "evil")]
