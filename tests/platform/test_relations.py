"""Relations in Label Studio's shape: validated in completions and imports against the config."""

from annoray.platform.labeling.config import NO_RELATION, ModelKind, parse_labeling_config
from annoray.platform.labeling.tasks import validate_result
from annoray.trainers.relations import mark_pair
from annoray.trainers.metrics import relation_metrics

from .test_labeling_config import RELATIONS

TEXT = "Ketoconazole raises imatinib levels."


def entity(region: str, start: int, end: int, label: str = "drug") -> dict:
    return {"id": region, "from_name": "label", "to_name": "text", "type": "labels",
            "value": {"start": start, "end": end, "text": TEXT[start:end], "labels": [label]}}


def relation(from_id: str, to_id: str, *labels: str) -> dict:
    return {"type": "relation", "from_id": from_id, "to_id": to_id, "direction": "right", "labels": list(labels)}


def test_a_relation_joins_regions_of_its_result_with_the_configs_labels() -> None:
    config = parse_labeling_config(RELATIONS.format(attrs=""))
    data = {"text": TEXT}
    good = [entity("a", 0, 12), entity("b", 20, 28), relation("a", "b", "mechanism"), relation("b", "a")]
    assert validate_result(config, data, good) == []
    bad = [entity("a", 0, 12), relation("a", "zz", "effect"), relation("a", "a", "causes")]
    problems = [(e.field, e.message[:6]) for e in validate_result(config, data, bad)]
    assert problems == [("result[1]", "[E221]"), ("result[2]", "[E222]")], problems


def _examples(attrs: str, result: list[dict]) -> tuple[list, list]:
    from annoray.platform.labeling.datasets import DatasetBuilder, SelectedCompletion

    config = parse_labeling_config(RELATIONS.format(attrs=attrs))
    builder = DatasetBuilder(config, kinds=[ModelKind.RELATION])
    builder.add(SelectedCompletion(1, 1, {"text": TWO_SENTENCES}, (), result))
    return builder.examples[ModelKind.RELATION], [e.message[:6] for e in builder.issues]


TWO_SENTENCES = "Ketoconazole raises imatinib and aspirin levels. Warfarin is fine."


def test_pairs_of_a_sentence_are_the_relations_and_the_negatives_directed_or_not() -> None:
    def ent(region: str, word: str) -> dict:
        start = TWO_SENTENCES.index(word)
        return {"id": region, "from_name": "label", "to_name": "text", "type": "labels",
                "value": {"start": start, "end": start + len(word), "text": word, "labels": ["drug"]}}

    entities = [ent("k", "Ketoconazole"), ent("i", "imatinib"), ent("a", "aspirin"), ent("w", "Warfarin")]
    result = [*entities, relation("i", "k", "mechanism"), relation("k", "w", "effect"), relation("k", "zz", "effect")]
    undirected, issues = _examples(' directed="false"', result)
    pairs = {(e.spans[e.head][0], e.spans[e.tail][0], e.label) for e in undirected}
    assert pairs == {(0, 20, "mechanism"), (0, 33, NO_RELATION), (20, 33, NO_RELATION)}, "text order, once a pair"
    assert sorted(issues) == ["[E318]", "[E319]"], "across sentences, and to a region that is no entity: left out, said why"
    directed, _ = _examples("", result)
    labelled = {(e.spans[e.head][0], e.spans[e.tail][0]): e.label for e in directed}
    assert len(directed) == 6 and labelled[(20, 0)] == "mechanism" and labelled[(0, 20)] == NO_RELATION
    assert mark_pair(undirected[0].text, undirected[0].spans, 0, 1) == " HEAD_drug  raises  TAIL_drug  and  OTHER_drug  levels."


def test_relation_scores_leave_out_pairs_rightly_unrelated() -> None:
    gold = ["effect", NO_RELATION, NO_RELATION, "mechanism"]
    predicted = ["effect", NO_RELATION, "effect", NO_RELATION]
    scores = relation_metrics(gold, predicted, ["effect", "mechanism", NO_RELATION])
    assert scores["micro"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5} and scores["accuracy"] == 0.5
    assert scores["confusion_matrix"]["labels"] == ["effect", "mechanism", NO_RELATION]
    assert set(scores["per_label"]) == {"effect", "mechanism"}
