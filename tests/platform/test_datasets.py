"""Per-kind datasets: alignment, pairing, classification rows, splits, counts, warnings, errors."""

import pytest

from annoray.platform.labeling.config import ModelKind, parse_labeling_config
from annoray.platform.labeling.datasets import (
    AssertionExample,
    DatasetBuilder,
    SelectedCompletion,
    SplitMethod,
    bio_tags,
    split_tasks,
)

from .test_labeling_config import MIXED

CONFIG = parse_labeling_config(MIXED)


def span(start: int, end: int, label: str, text: str) -> dict:
    return {"from_name": "label", "to_name": "text", "type": "labels",
            "value": {"start": start, "end": end, "text": text[start:end], "labels": [label]}}


def choice(*choices: str, name: str = "temporality") -> dict:
    return {"from_name": name, "to_name": "text", "type": "choices", "value": {"choices": list(choices)}}


def selected(task_id: int, text: str, result: list, tags: tuple = ()) -> SelectedCompletion:
    return SelectedCompletion(task_id, task_id * 10, {"text": text}, tags, result)


def test_ner_spans_align_to_tokens_and_become_bio_tags() -> None:
    text = "No chest pain today."
    b = DatasetBuilder(CONFIG, kinds=[ModelKind.NER]).add_all([selected(1, text, [span(3, 13, "Condition", text)])])
    (example,) = b.examples[ModelKind.NER]
    assert example.spans == [(3, 13, "Condition")]
    assert bio_tags(b.nlp, example) == [("No", "O"), ("chest", "B-Condition"), ("pain", "I-Condition"), ("today", "O"), (".", "O")]


def test_misaligned_span_is_reported_not_silently_dropped() -> None:
    text = "No chest pain today."
    b = DatasetBuilder(CONFIG, kinds=[ModelKind.NER]).add_all([selected(7, text, [span(4, 13, "Condition", text)])])
    assert b.examples[ModelKind.NER][0].spans == []
    (issue,) = b.issues
    assert issue.message.startswith("[E305] task 7: span 4-13 'hest pain'") and "'chest pain'" in issue.message


def test_overlapping_entities_are_reported() -> None:
    text = "chest pain"
    b = DatasetBuilder(CONFIG, kinds=[ModelKind.NER]).add_all(
        [selected(1, text, [span(0, 10, "Condition", text), span(6, 10, "Condition", text)])])
    assert b.examples[ModelKind.NER][0].spans == [(0, 10, "Condition")]
    assert b.issues[0].message.startswith("[E306]")


def test_assertion_pairs_label_with_ner_chunk_on_same_span_within_its_sentence() -> None:
    text = "He is well. Denies chest pain. Has fever."
    result = [span(19, 29, "Condition", text), span(19, 29, "Absent", text),
              span(35, 40, "Condition", text), span(35, 40, "Present", text), span(0, 2, "Present", text)]
    b = DatasetBuilder(CONFIG, kinds=[ModelKind.ASSERTION]).add_all([selected(1, text, result)])
    first, second = b.examples[ModelKind.ASSERTION]
    assert first == AssertionExample(1, 10, "Denies chest pain.", 7, 17, "Condition", "Absent")
    assert second.text == "Has fever." and second.text[second.start:second.end] == "fever"
    assert [i.message[:6] for i in b.issues] == ["[E307]"]


def test_single_choice_rows_and_conflicting_choices_reported() -> None:
    b = DatasetBuilder(CONFIG, kinds=[ModelKind.CLASSIFICATION]).add_all([
        selected(1, "a", [choice("Recent")]), selected(2, "b", [choice("Recent", "Historical")]), selected(3, "c", []),
    ])
    assert [(e.task_id, e.labels) for e in b.examples[ModelKind.CLASSIFICATION]] == [(1, ["Recent"])]
    assert b.issues[0].message.startswith("[E308] task 2")


def test_multi_choice_rows_keep_every_label() -> None:
    config = parse_labeling_config("""<View><Text name="text" value="$text"/>
      <Choices name="smoking" toName="text" choice="multiple"><Choice value="A"/><Choice value="B"/></Choices></View>""")
    b = DatasetBuilder(config).add_all([selected(1, "x", [choice("B", "A", name="smoking")])])
    assert b.examples[ModelKind.CLASSIFICATION][0].labels == ["A", "B"]


def test_random_split_is_seeded_and_keeps_the_ratio() -> None:
    ids = range(1, 101)
    a = split_tasks(ids, {}, validation_split=0.25, seed=7)
    b = split_tasks(reversed(ids), {}, validation_split=0.25, seed=7)
    c = split_tasks(ids, {}, validation_split=0.25, seed=8)
    assert 15 <= len(a.test_task_ids) <= 35 and a.train_task_ids | a.test_task_ids == set(ids)
    assert not a.train_task_ids & a.test_task_ids
    assert a.test_task_ids == b.test_task_ids != c.test_task_ids
    assert a.seed == 7
    big = split_tasks(range(1, 20_001), {}, validation_split=0.25, seed=7)
    assert abs(len(big.test_task_ids) - 5_000) < 300


def test_random_split_keeps_each_task_on_its_side_as_the_project_grows() -> None:
    before = split_tasks(range(1, 101), {}, validation_split=0.2, seed=3)
    after = split_tasks(range(1, 161), {}, validation_split=0.2, seed=3)
    assert before.test_task_ids <= after.test_task_ids and before.train_task_ids <= after.train_task_ids
    assert len(split_tasks([1, 2], {}, validation_split=0.2).test_task_ids) == 1, "two tasks still hold one out"
    assert len(split_tasks([1, 2], {}, validation_split=0.99).train_task_ids) == 1, "and still train on one"


def test_split_by_tags_uses_train_and_test_tags_and_reports_untagged() -> None:
    tags = {1: ("train",), 2: ("test",), 3: ("train", "x"), 4: ()}
    split = split_tasks(tags, tags, method=SplitMethod.TAGS)
    assert split.train_task_ids == {1, 3} and split.test_task_ids == {2}
    assert [n.message[:6] for n in split.warnings] == ["[E311]"] and split.errors == []
    no_test = split_tasks({1: ("train",)}, {1: ("train",)}, method=SplitMethod.TAGS)
    assert no_test.errors[0].message.startswith("[E309]")


def test_counts_warn_under_the_minimum_and_error_at_zero() -> None:
    text = "chest pain"
    items = [selected(i, text, [span(0, 10, "Condition", text), span(0, 10, "Present", text), choice("Recent")])
             for i in range(1, 46)]
    items += [selected(i, text, [choice("Historical")]) for i in range(46, 50)]
    datasets, split = DatasetBuilder(CONFIG).add_all(items).build(validation_split=0.2, seed=1)
    assert datasets[ModelKind.NER].label_counts == {"Condition": 45}
    assert datasets[ModelKind.NER].warnings == [] and datasets[ModelKind.NER].errors == []
    assertion = datasets[ModelKind.ASSERTION]
    assert assertion.label_counts == {"Present": 45, "Absent": 0}
    assert [e.message for e in assertion.errors] == ["[E301] label 'Absent' has no training example"]
    cls = datasets[ModelKind.CLASSIFICATION]
    assert [w.message[:6] for w in cls.warnings] == ["[E302]"] and "'Historical' has only 4" in cls.warnings[0].message
    assert len(cls.train) + len(cls.test) == 49
    assert {e.task_id for e in cls.test} == split.test_task_ids


@pytest.mark.parametrize("language,text,entity", [
    ("de", "Der Patient hat keine Brustschmerzen.", "Brustschmerzen"),
    ("es", "El paciente no tiene dolor torácico.", "dolor torácico"),
])
def test_european_languages_tokenize_with_their_own_rules(language: str, text: str, entity: str) -> None:
    start = text.index(entity)
    b = DatasetBuilder(CONFIG, language=language, kinds=[ModelKind.NER])
    b.add(selected(1, text, [span(start, start + len(entity), "Condition", text)]))
    assert b.examples[ModelKind.NER][0].spans == [(start, start + len(entity), "Condition")] and not b.issues
