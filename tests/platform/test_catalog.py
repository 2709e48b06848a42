"""Models are named after kind, subject and source, as the seeds do, and versioned without overwriting."""

from annoray.platform.labeling.config import parse_labeling_config
from annoray.platform.models.catalog import model_base_name, next_model_name

CONFIG = """<View><Text name="text" value="$text"/>
<Labels name="label" toName="text"><Label value="Condition"/><Label value="Absent" assertion="true"/></Labels>
<Choices name="Age" toName="text"><Choice value="Adult"/><Choice value="Child"/></Choices></View>"""


def test_names_follow_the_seeds() -> None:
    config = parse_labeling_config(CONFIG)
    assert model_base_name(config.kinds[0], config.ner, "Clinical Notes (2026)", "manual") == "ner_clinical_notes_2026_annotation_manual"
    assert model_base_name(config.kinds[1], config.assertion, "Clinical Notes", "manual") == "assertion_clinical_notes_annotation_manual"
    assert model_base_name(config.kinds[2], config.classification, "Clinical Notes", "active_learning") == "classification_age_annotation_active_learning"


def test_versions_count_up_and_never_reuse_a_name() -> None:
    base = "ner_x_annotation_manual"
    assert next_model_name(base, []) == base
    assert next_model_name(base, [base]) == f"{base}_v2"
    assert next_model_name(base, [base, f"{base}_v2", f"{base}_v7", f"{base}_vx", "ner_x_annotation_manual_other"]) == f"{base}_v8"
