"""Metrics in the API's shape, checked against values worked out by hand."""

from annoray.trainers.metrics import classification_metrics, multilabel_metrics, ner_metrics, reference


def test_ner_is_strict_span_match_per_label_micro_and_macro() -> None:
    gold = [[(0, 5, "A"), (10, 15, "B")], [(0, 3, "A")]]
    pred = [[(0, 5, "A"), (10, 14, "B")], [(0, 3, "B")]]
    m = ner_metrics(gold, pred, ["A", "B"])
    assert m["per_label"]["A"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2}
    assert m["per_label"]["B"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["micro"] == {"precision": 0.3333, "recall": 0.3333, "f1": 0.3333}
    assert m["macro"]["f1"] == 0.3333


def test_classification_has_accuracy_and_confusion_matrix_rows_gold() -> None:
    m = classification_metrics(["x", "x", "y", "z"], ["x", "y", "y", "x"], ["x", "y", "z"])
    assert m["accuracy"] == 0.5
    assert m["confusion_matrix"] == {"labels": ["x", "y", "z"], "matrix": [[1, 1, 0], [0, 1, 0], [1, 0, 0]]}
    assert m["per_label"]["y"] == {"precision": 0.5, "recall": 1.0, "f1": 0.6667, "support": 1}
    assert m["micro"]["f1"] == 0.5


def test_multilabel_scores_each_label_as_its_own_decision() -> None:
    m = multilabel_metrics([{"a", "b"}, {"b"}], [{"a"}, {"b", "c"}], ["a", "b", "c"])
    assert m["per_label"]["a"]["f1"] == 1.0 and m["per_label"]["b"]["recall"] == 0.5
    assert m["per_label"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["micro"] == {"precision": 0.6667, "recall": 0.6667, "f1": 0.6667} and m["accuracy"] == 0.0


def test_the_reference_with_no_model_is_the_training_splits_entities_or_its_most_frequent_label() -> None:
    from annoray.platform.labeling.datasets import AssertionExample, ClassificationExample, NerExample

    def ner(text: str, *entities: tuple[str, str]) -> NerExample:
        return NerExample(0, 0, text, [(text.index(e), text.index(e) + len(e), label) for e, label in entities])

    train = [ner("Takes folic acid daily.", ("folic acid", "Drug")), ner("No acid reflux.", ("acid reflux", "Condition"))]
    dev = [ner("Folic acid and folic acid.", ("folic acid", "Drug")), ner("Has acid reflux", ("acid reflux", "Condition")),
           ner("The acid reflux of folic acids.", ("acid reflux", "Condition")), ner("Reflux of folic acid.")]
    guess = reference(train, dev, ["Drug", "Condition"])
    assert guess["name"] == "the 2 entity strings of the training split, matched exactly"
    assert guess["micro"] == {"precision": 0.75, "recall": 1.0, "f1": 0.8571}, "exact, case-sensitive, whole words"

    def chunk(label: str) -> AssertionExample:
        return AssertionExample(0, 0, "no pain", 3, 7, "Condition", label)

    guess = reference([chunk("absent"), chunk("absent"), chunk("present")], [chunk("absent"), chunk("present")], ["present", "absent"])
    assert guess["name"] == "the most frequent label, 'absent', for every example" and guess["accuracy"] == 0.5

    def doc(*labels: str) -> ClassificationExample:
        return ClassificationExample(0, 0, "text", list(labels))

    guess = reference([doc("a", "b"), doc("a")], [doc("a"), doc("b")], ["a", "b"], multiple=True)
    assert guess["name"] == "every label of at least half the training examples (a, b)" and guess["micro"]["precision"] == 0.5
    assert reference([], dev, ["Drug"]) is None and reference(train, [], ["Drug"]) is None
