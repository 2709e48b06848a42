"""Relations in Label Studio's shape: validated in completions and imports against the config."""

from annoray.platform.labeling.config import parse_labeling_config
from annoray.platform.labeling.tasks import validate_result

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
