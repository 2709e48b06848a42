"""The built-in spaCy engines learn tiny hand-made sets, checkpoint each epoch and resume after a kill."""

from pathlib import Path

import pytest

from annoray.platform.labeling.datasets import AssertionExample, ClassificationExample, NerExample
from annoray.platform.models.training import TrainingParams
from annoray.trainers.engines import CHECKPOINT_DIR, MODEL_DIR, EngineConfig, get_engine, mark_chunk

FAST = TrainingParams(epochs=12, learning_rate=0.005, dropout=0.1, batch_size=4, seed=1)


def ner_set(template: str, entities: list[str], label: str) -> list[NerExample]:
    out = []
    for i, entity in enumerate(entities):
        text = template.format(entity)
        start = text.index(entity)
        out.append(NerExample(i, i, text, [(start, start + len(entity), label)]))
    return out


@pytest.mark.parametrize("language,template,entities", [
    ("en", "The patient reports {} since monday.", ["fever", "cough", "nausea", "headache", "rash", "fatigue"]),
    ("de", "Der Patient klagt über {} seit Montag.", ["Fieber", "Husten", "Übelkeit", "Kopfschmerzen", "Ausschlag", "Müdigkeit"]),
    ("es", "El paciente refiere {} desde el lunes.", ["fiebre", "tos", "náuseas", "cefalea", "erupción", "cansancio"]),
])
def test_ner_learns_a_tiny_set_in_its_language(tmp_path: Path, language: str, template: str, entities: list[str]) -> None:
    data = ner_set(template, entities, "Condition")
    engine = get_engine("spacy.ner.v1")(EngineConfig(language=language, labels=["Condition"]))
    reports = list(engine.train(train=data * 4, dev=data, params=FAST, output_dir=tmp_path))
    assert [r.epoch for r in reports] == list(range(1, 13))
    assert reports[-1].loss < reports[0].loss
    assert reports[-1].metrics["micro"]["f1"] == 1.0
    assert engine.evaluate(tmp_path / MODEL_DIR, data)["per_label"]["Condition"]["support"] == len(entities)


def test_decay_lowers_the_learning_rate_per_epoch(tmp_path: Path) -> None:
    data = ner_set("I have {} now.", ["fever", "cough"], "C")
    params = TrainingParams(epochs=3, learning_rate=0.01, decay=1.0, batch_size=2)
    engine = get_engine("spacy.ner.v1")(EngineConfig(labels=["C"]))
    assert [round(r.learning_rate, 5) for r in engine.train(train=data, dev=[], params=params, output_dir=tmp_path)] == [0.01, 0.005, 0.00333]


def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    data = ner_set("The patient reports {} today.", ["fever", "cough", "nausea", "rash"], "C")
    config = EngineConfig(labels=["C"])
    first = get_engine("spacy.ner.v1")(config).train(train=data, dev=data, params=FAST, output_dir=tmp_path)
    assert [next(first).epoch for _ in range(3)] == [1, 2, 3]
    first.close()  # the worker dies after its third checkpoint
    assert (tmp_path / CHECKPOINT_DIR).exists() and not (tmp_path / MODEL_DIR).exists()
    resumed = list(get_engine("spacy.ner.v1")(config).train(train=data, dev=data, params=FAST, output_dir=tmp_path))
    assert [r.epoch for r in resumed] == list(range(4, 13))
    assert (tmp_path / MODEL_DIR).exists()


def test_assertion_classifies_the_marked_chunk(tmp_path: Path) -> None:
    rows = []
    for i, (sentence, chunk, label) in enumerate([
        ("Denies chest pain.", "chest pain", "Absent"), ("No fever today.", "fever", "Absent"),
        ("Reports chest pain.", "chest pain", "Present"), ("Has fever today.", "fever", "Present"),
        ("Without nausea.", "nausea", "Absent"), ("With nausea.", "nausea", "Present"),
    ]):
        start = sentence.index(chunk)
        rows.append(AssertionExample(i, i, sentence, start, start + len(chunk), "Condition", label))
    assert mark_chunk("No fever today.", 3, 8) == "No  ⟦ fever ⟧  today."
    engine = get_engine("spacy.assertion.v1")(EngineConfig(labels=["Present", "Absent"]))
    *_, last = engine.train(train=rows * 3, dev=rows, params=FAST.model_copy(update={"epochs": 15}), output_dir=tmp_path)
    assert last.metrics["accuracy"] == 1.0
    assert last.metrics["confusion_matrix"]["labels"] == ["Present", "Absent"]


@pytest.mark.parametrize("multiple", [False, True])
def test_classification_single_and_multiple_choice(tmp_path: Path, multiple: bool) -> None:
    texts = {"smokes daily": ["Smoker"], "quit smoking years ago": ["Past Smoker"], "never smoked": ["Nonsmoker"],
             "smokes and quit drinking": ["Smoker"], "stopped smoking last year": ["Past Smoker"], "no tobacco ever": ["Nonsmoker"]}
    if multiple:
        texts["smokes now, quit once before"] = ["Past Smoker", "Smoker"]
    rows = [ClassificationExample(i, i, t, labels) for i, (t, labels) in enumerate(texts.items())]
    engine = get_engine("spacy.classification.v1")(
        EngineConfig(labels=["Smoker", "Past Smoker", "Nonsmoker"], multiple=multiple))
    *_, last = engine.train(train=rows * 4, dev=rows, params=FAST.model_copy(update={"epochs": 15}), output_dir=tmp_path)
    assert last.metrics["micro"]["f1"] >= 0.8
    assert ("confusion_matrix" in last.metrics) is not multiple


def test_unknown_engine_names_the_available_ones() -> None:
    with pytest.raises(KeyError, match="spacy.ner.v1"):
        get_engine("spacy.relations.v1")


@pytest.mark.parametrize("engine,multiple", [("spacy.ner.v1", False), ("spacy.classification.v1", False), ("spacy.classification.v1", True)])
def test_static_vectors_from_a_local_file_feed_every_engine(tmp_path: Path, engine: str, multiple: bool) -> None:
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("3 2\nfever 0.9 0.1\ncough 0.8 0.2\nsmokes 0.1 0.9\n")
    if engine == "spacy.ner.v1":
        rows, labels = ner_set("I have {} now.", ["fever", "cough"], "C"), ["C"]
    else:
        rows = [ClassificationExample(0, 0, "I have fever now.", ["Sick"]), ClassificationExample(1, 1, "He smokes.", ["Smoker"])]
        labels = ["Sick", "Smoker"]
    trained = get_engine(engine)(EngineConfig(labels=labels, multiple=multiple, embeddings=vectors))
    list(trained.train(train=rows, dev=rows, params=FAST.model_copy(update={"epochs": 2}), output_dir=tmp_path / "out"))
    import spacy

    nlp = spacy.load(tmp_path / "out" / MODEL_DIR)
    assert nlp.vocab.vectors.n_keys == 3 and nlp.vocab["fever"].has_vector
