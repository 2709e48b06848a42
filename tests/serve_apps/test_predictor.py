"""The pre-annotation server's computation without Serve: chunk-level entities with scores, assertion on those
chunks, classes, rules; written as Label Studio predictions for a project's config."""

from pathlib import Path

import pytest

from annoray.platform.labeling.config import parse_labeling_config
from annoray.platform.labeling.predictions import label_studio_result
from annoray.serve_apps.predictor import Predictor, ServedModel, ServedRule

from ..conftest import CLINICAL_CONFIG, clinical_sentences, tiny_models

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


@pytest.fixture(scope="module")
def unsure_ner(tmp_path_factory: pytest.TempPathFactory) -> object:
    """A NER trained too little to be sure of anything: its confidences spread."""
    from annoray.platform.labeling.datasets import NerExample
    from annoray.platform.models.training import TrainingParams
    from annoray.trainers.custom import load_with_code
    from annoray.trainers.engines import MODEL_DIR, EngineConfig, SpacyNer

    work = tmp_path_factory.mktemp("unsure")
    examples = [NerExample(i, i, t, [(s, e, "Drug")]) for i, (t, s, e, _, _) in enumerate(clinical_sentences())]
    for _ in SpacyNer(EngineConfig(language="en", labels=["Drug"])).train(
            train=examples, dev=[], params=TrainingParams(epochs=4, batch_size=4, dropout=0.1), output_dir=work):
        pass
    return load_with_code(work / MODEL_DIR)


UNSURE = ["The patient takes folic acid daily for the heart problem.", "No warfarin was given for the brain problem.",
          "The patient takes amoxicillin daily for the heart problem.", "The patient takes rest daily.",
          "No tylenol was given.", "The patient takes Vitamin daily for the brain problem.", "", "He takes the pills daily."]


def greedy_path_slowly(nlp: object, doc: object) -> list[float]:
    """The reference: spaCy's greedy choice at each token, one doc alone, every action's validity checked; the
    chosen action's softmax probability among the valid ones."""
    import numpy as np

    ner = nlp.get_pipe("ner")
    names = [ner.moves.get_class_name(i) for i in range(ner.moves.n_moves)]
    (state,) = ner.moves.init_batch([doc])
    model, probs = ner.model.predict([doc]), []
    while not state.is_final():
        scores = model.predict([state])[0]
        valid = [a for a in range(len(names)) if ner.moves.is_valid(state, names[a])]
        best = max(valid, key=lambda a: scores[a])
        probs.append(float(np.exp(scores[best]) / np.exp(scores[valid]).sum()))
        ner.moves.apply_transition(state, names[best])
    model.clear_memory()
    return probs


def test_confidences_are_read_from_the_greedy_parse_itself(unsure_ner: object) -> None:
    """The entities are nlp.pipe's own; each confidence is the probability of the greedy path through the entity
    (the product of its tokens' choices), in (0, 1], equal to the slow one-doc reference; they spread, and a chunk
    seen in training in its own sentence is surer than a word never seen as a drug."""
    import numpy as np

    from annoray.serve_apps.confidence import pipe_with_confidence

    scored = list(pipe_with_confidence(unsure_ner, UNSURE, batch_size=3))
    plain = list(unsure_ner.pipe(UNSURE))
    assert [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d, _ in scored] == \
        [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in plain]
    found = {e.text: c for doc, confidences in scored for e, c in zip(doc.ents, confidences, strict=True)}
    assert found and all(0 < c <= 1 for c in found.values()), found
    for doc in unsure_ner.pipe(UNSURE, disable=["ner"]):
        path = greedy_path_slowly(unsure_ner, doc)
        assert len(path) == len(doc)
        reference = [e for d, _ in scored if d.text == doc.text for e in d.ents]
        for ent, confidence in zip(reference, next(c for d, c in scored if d.text == doc.text), strict=True):
            assert confidence == pytest.approx(float(np.prod(path[ent.start:ent.end])), abs=2e-4), ent.text
    assert max(found.values()) - min(found.values()) > 0.01, found


def test_a_page_entity_over_two_lines_is_one_region_whose_box_holds_its_words() -> None:
    """One Label Studio OCR region per entity: its rectangle, label and text share an id, the rectangle is the union
    of its lines' boxes in percent of the page, and the text keeps its lines."""
    from importlib import resources

    config = parse_labeling_config((resources.files("annoray.platform") / "samples" / "forms" / "config.xml").read_text())
    address = {"label": "Address", "score": 0.9, "text": "1 Main St Springfield",
               "lines": [{"box": [100, 200, 300, 220], "text": "1 Main St"}, {"box": [100, 224, 260, 244], "text": "Springfield"}]}
    total = {"label": "Total", "score": 0.8, "text": "12.50", "lines": [{"box": [500, 900, 560, 920], "text": "12.50"}]}
    result, _ = label_studio_result(config, {"page": {"width": 1000, "height": 1000}, "regions": [address, total]})
    regions: dict[str, dict[str, dict]] = {}
    for item in result:
        regions.setdefault(item["id"], {})[item["type"]] = item
    assert len(regions) == 2 and all(set(r) == {"rectangle", "labels", "textarea"} for r in regions.values()), result
    first, second = regions.values()
    assert {k: first["rectangle"]["value"][k] for k in ("x", "y", "width", "height")} == {"x": 10, "y": 20, "width": 20, "height": 4.4}
    assert first["labels"]["value"]["labels"] == ["Address"] and first["textarea"]["value"]["text"] == ["1 Main St", "Springfield"]
    assert second["labels"]["value"]["labels"] == ["Total"] and second["rectangle"]["original_width"] == 1000
