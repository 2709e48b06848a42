"""Labeling config parsing: derived kinds, and each rule refused with line, tag and message."""

import pytest

from annoray.platform.errors import InvalidInput
from annoray.platform.labeling.config import ModelKind, parse_labeling_config

MIXED = """<View>
  <Text name="text" value="$text"/>
  <Labels name="label" toName="text">
    <Label value="Condition"/>
    <Label value="Present" assertion="true"/>
    <Label value="Absent" assertion="true"/>
  </Labels>
  <Choices name="temporality" toName="text" choice="single">
    <Choice value="Recent"/><Choice value="Historical"/>
  </Choices>
</View>"""

SEED_CLASSIFICATION = """<View>
  <Text name="text" value="$text"/>
  <Choices name="smokingstatus" toName="text" choice="multiple">
    <Choice value="Smoker"/><Choice value="Past Smoker"/><Choice value="Nonsmoker"/>
  </Choices>
  <Choices name="age" toName="text" choice="single">
    <Choice value="Child"/><Choice value="Adult"/>
  </Choices>
  <Choices name="gender" {train} toName="text" choice="single">
    <Choice value="Female"/><Choice value="Male"/>
  </Choices>
</View>"""


def errors_of(xml: str, **kwargs) -> list[dict]:
    with pytest.raises(InvalidInput) as info:
        parse_labeling_config(xml, **kwargs)
    return [e.as_dict() for e in info.value.errors]


def test_mixed_config_derives_ner_assertion_and_classification() -> None:
    config = parse_labeling_config(MIXED)
    assert config.kinds == [ModelKind.NER, ModelKind.ASSERTION, ModelKind.CLASSIFICATION]
    assert config.ner.labels == ("Condition",)
    assert config.assertion.labels == ("Present", "Absent")
    assert config.classification.name == "temporality" and not config.classification.multiple
    assert config.data_key("text") == "text"


def test_classification_trains_alphabetically_first_group_by_default() -> None:
    config = parse_labeling_config(SEED_CLASSIFICATION.format(train=""))
    assert config.classification.name == "age"
    assert len(config.classification_groups) == 3


def test_classification_trains_the_group_marked_train() -> None:
    config = parse_labeling_config(SEED_CLASSIFICATION.format(train='train="true"'))
    assert config.classification.name == "gender"


def test_multiple_choice_group_is_multilabel() -> None:
    xml = SEED_CLASSIFICATION.format(train="").replace('name="smokingstatus"', 'name="aaa" train="true"')
    assert parse_labeling_config(xml).classification.multiple


def test_visual_ner_from_labels_on_an_image() -> None:
    xml = """<View><Image name="image" value="$image"/>
      <RectangleLabels name="label" toName="image"><Label value="Name"/><Label value="Date"/></RectangleLabels></View>"""
    config = parse_labeling_config(xml)
    assert config.kinds == [ModelKind.VISUAL_NER]
    assert config.visual_ner.labels == ("Name", "Date")


def test_malformed_xml_names_the_line() -> None:
    (error,) = errors_of("<View>\n<Text name='t' value='$t'>\n</View>")
    assert error["message"].startswith("[E101]") and error["line"] == 3


@pytest.mark.parametrize("payload", [
    '<?xml version="1.0"?><!DOCTYPE v [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><View><Header value="&xxe;"/></View>',
    '<!DOCTYPE v [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><View>&b;</View>',
    '<!DOCTYPE View SYSTEM "http://example.invalid/evil.dtd"><View/>',
])
def test_doctype_entities_and_external_dtds_are_refused(payload: str) -> None:
    (error,) = errors_of(payload)
    assert error["message"].startswith("[E103]")


def test_oversized_config_is_refused_before_parsing() -> None:
    (error,) = errors_of("<View>" + "<Header value='x'/>" * 100 + "</View>", max_bytes=500)
    assert error["message"].startswith("[E102]")


def test_every_error_is_reported_at_once_with_line_and_tag() -> None:
    xml = """<View>
  <Text name="text" value="$text"/>
  <Text name="text" value="$other"/>
  <Labels name="label" toName="nowhere"><Label value="A"/></Labels>
  <Blink/>
  <Choices name="c" toName="text" choice="several"><Choice value="x"/></Choices>
</View>"""
    errors = errors_of(xml)
    codes = {(e["message"][:6], e["line"], e["tag"]) for e in errors}
    assert ("[E107]", 3, "Text") in codes
    assert ("[E108]", 4, "Labels") in codes
    assert ("[E105]", 5, "Blink") in codes
    assert ("[E111]", 6, "Choices") in codes


def test_assertion_label_bound_to_the_projects_ner_model_is_refused() -> None:
    xml = MIXED.replace('value="Condition"', 'value="Condition" model="ner_x"').replace(
        'value="Absent" assertion="true"', 'value="Absent" assertion="true" model="ner_x"')
    assert any(e["message"].startswith("[E112]") for e in errors_of(xml))


def test_assertion_label_bound_to_a_catalog_ner_model_is_refused() -> None:
    xml = MIXED.replace('value="Absent" assertion="true"', 'value="Absent" assertion="true" model="ner_jsl"')
    errors = errors_of(xml, catalog={"ner_jsl": "ner"})
    assert [e["message"][:6] for e in errors] == ["[E112]"]


def test_two_assertion_models_are_refused() -> None:
    xml = MIXED.replace('value="Present" assertion="true"', 'value="Present" assertion="true" model="as_a"').replace(
        'value="Absent" assertion="true"', 'value="Absent" assertion="true" model="as_b"')
    (error,) = errors_of(xml)
    assert error["message"].startswith("[E113]") and error["tag"] == "Label"


def test_more_models_than_the_settings_allow_are_refused() -> None:
    from annoray.platform.settings import Settings

    labels = "".join(f'<Label value="L{i}" model="ner_{i}"/>' for i in range(6))
    xml = f'<View><Text name="text" value="$text"/><Labels name="l" toName="text">{labels}</Labels></View>'
    (error,) = errors_of(xml, max_models=Settings().labeling_config.max_models)
    assert error["message"].startswith("[E114]") and "ner_5" in error["message"] and "at most 5" in error["message"]
    parse_labeling_config(xml, max_models=6)
    parse_labeling_config(xml)  # a stored config: its limit was checked when it was saved


def test_unknown_model_and_wrong_kind_are_refused_against_the_catalog() -> None:
    xml = MIXED.replace('value="Condition"', 'value="Condition" model="missing"').replace(
        'choice="single"', 'choice="single" model="ner_x"')
    messages = [e["message"][:6] for e in errors_of(xml, catalog={"ner_x": "ner"})]
    assert sorted(messages) == ["[E115]", "[E116]"]


def test_two_choices_marked_train_are_refused() -> None:
    xml = SEED_CLASSIFICATION.format(train='train="true"').replace('name="age"', 'name="age" train="true"')
    assert [e["message"][:6] for e in errors_of(xml)] == ["[E117]"]


def test_labels_without_label_and_duplicate_values_are_refused() -> None:
    xml = """<View><Text name="text" value="$text"/><Labels name="a" toName="text"></Labels>
      <Labels name="b" toName="text"><Label value="X"/><Label value="X"/></Labels></View>"""
    assert sorted(e["message"][:6] for e in errors_of(xml)) == ["[E109]", "[E110]"]


def test_root_must_be_view() -> None:
    assert "[E104]" in errors_of('<Text name="t" value="$t"/>')[0]["message"]


RELATIONS = """<View>
  <Text name="text" value="$text"/>
  <Labels name="label" toName="text"><Label value="drug"/><Label value="brand"/></Labels>
  <Relations{attrs}>
    <Relation value="effect"/>
    <Relation value="mechanism" model="ddi_relations"/>
  </Relations>
</View>"""


def test_relations_are_a_kind_between_the_ner_entities_directed_unless_said() -> None:
    config = parse_labeling_config(RELATIONS.format(attrs=""))
    assert ModelKind.RELATION in config.kinds and config.relation.labels == ("effect", "mechanism")
    assert config.relation.directed and config.relation.to_name == "text"
    assert config.summary()["relation"]["directed"] is True and "ddi_relations" in config.models
    assert not parse_labeling_config(RELATIONS.format(attrs=' directed="false"')).relation.directed
    unlabeled = parse_labeling_config('<View><Text name="t" value="$t"/><Labels name="l" toName="t"><Label value="a"/>'
                                      '</Labels><Relations/></View>')
    assert unlabeled.relation is None, "unlabeled relations train nothing"


def test_relations_without_entities_or_twice_or_repeated_are_refused_at_their_line() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_labeling_config('<View><Text name="t" value="$t"/><Choices name="c" toName="t"><Choice value="x"/></Choices>\n'
                              '<Relations><Relation value="r"/><Relation value="r"/></Relations>\n<Relations/></View>')
    messages = [(e.line, e.message[:6]) for e in refused.value.errors]
    assert (2, "[E124]") in messages and (2, "[E110]") in messages and (3, "[E125]") in messages, messages
