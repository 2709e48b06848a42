"""Deploy after training: the config rewrite, its rules, the gate, and the servers that follow the config."""

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from annoray.platform.labeling.config import ModelKind, parse_labeling_config
from annoray.platform.models.deploy import deploy_trained_model, rewrite_config
from annoray.platform.settings import Settings
from annoray.platform.store.tables import (
    CatalogModel, JobStatus, LabelingConfigVersion, PreannotationServer, Project, ServerStatus, TrainingJob, User,
)

pytestmark = pytest.mark.both_databases  # deploys rewrite configs in one transaction

MIXED = """<View>
  <!-- the clinic's config -->
  <Text name="text" value="$text"/>
  <Labels name="label" toName="text">
    <Label value="Drug"{drug}/>
    <Label value="Dose" model="ner_pretrained_doses"/>
    <Label value="present" assertion="true"{assertion}/>
    <Label value="absent" assertion="true"/>
  </Labels>
  <Choices name="specialty" toName="text"><Choice value="cardiology"/><Choice value="neurology"/></Choices>
  <Choices name="urgency" toName="text"><Choice value="high"/><Choice value="low"/></Choices>
</View>"""


def models_of(xml: str) -> dict[str, str | None]:
    config = parse_labeling_config(xml)
    out = {label: model for group in (config.ner, config.assertion) if group for label, model in group.models.items()}
    return out | {g.name: g.model for g in config.classification_groups}


def test_rewrite_binds_unbound_and_own_labels_of_the_kind_and_the_trained_choices_only() -> None:
    xml = MIXED.format(drug=' model="ner_clinic_annotation_manual"', assertion="")
    ner = rewrite_config(xml, ModelKind.NER, "ner_clinic_annotation_manual_v2", own={"ner_clinic_annotation_manual"})
    assert models_of(ner) == {"Drug": "ner_clinic_annotation_manual_v2", "Dose": "ner_pretrained_doses",
                              "present": None, "absent": None, "specialty": None, "urgency": None}
    assert "<!-- the clinic's config -->" in ner, "comments and layout stay"
    assertion = rewrite_config(xml, ModelKind.ASSERTION, "assertion_clinic", own=set())
    assert (models_of(assertion)["present"], models_of(assertion)["absent"]) == ("assertion_clinic", "assertion_clinic")
    assert models_of(assertion)["Drug"] == "ner_clinic_annotation_manual"
    choices = rewrite_config(xml, ModelKind.CLASSIFICATION, "classification_specialty", own=set(), choices="specialty")
    assert (models_of(choices)["specialty"], models_of(choices)["urgency"]) == ("classification_specialty", None)


@pytest.fixture
def session(engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


def trained(session: Session, project: Project, kind: str, name: str, f1: float) -> CatalogModel:
    job = TrainingJob(project_id=project.id, kind=kind, engine=f"spacy.{kind}.v1", status=JobStatus.SUCCEEDED, deploy=True)
    session.add(job)
    session.flush()
    model = CatalogModel(name=name, kind=kind, labels=["Drug"], engine=job.engine, project_id=project.id, training_job_id=job.id,
                         uri=f"/store/{name}", metrics={"micro": {"precision": f1, "recall": f1, "f1": f1}})
    session.add(model)
    session.flush()
    return model


def clinic(session: Session, xml: str) -> Project:
    user = User(username="olivia", token_hash="x" * 64)
    session.add(user)
    session.flush()
    project = Project(name="clinic", labeling_config=xml, created_by=user.id)
    session.add(project)
    session.flush()
    return project


def job_of(session: Session, model: CatalogModel) -> TrainingJob:
    return session.get(TrainingJob, model.training_job_id)


def test_deploy_rewrites_saves_a_version_and_retargets_the_servers(session: Session, settings: Settings) -> None:
    project = clinic(session, MIXED.format(drug="", assertion=""))
    session.add(CatalogModel(name="ner_pretrained_doses", kind="ner", labels=["Dose"], source="registered"))
    server = PreannotationServer(name="clinic-server", project_id=project.id, models=["ner_pretrained_doses"],
                                 deployed_models=["ner_pretrained_doses"], status=ServerStatus.RUNNING)
    session.add(server)
    first = trained(session, project, "ner", "ner_clinic_annotation_manual", 0.60)
    decision = deploy_trained_model(session, settings, project, job_of(session, first), first.name, first.metrics, None, held_out=100)
    assert (decision["decision"], decision["current"], decision["config_version"]) == ("deployed", None, 2)
    assert models_of(project.labeling_config)["Drug"] == first.name
    assert server.models == ["ner_clinic_annotation_manual", "ner_pretrained_doses"] and server.deployed_models == ["ner_pretrained_doses"]
    versions = session.scalars(select(LabelingConfigVersion.reason).where(LabelingConfigVersion.project_id == project.id)).all()
    assert versions == [f"deploy of {first.name} (training {first.training_job_id})"]

    worse = trained(session, project, "ner", "ner_clinic_annotation_active_learning", 0.50)
    kept = deploy_trained_model(session, settings, project, job_of(session, worse), worse.name, worse.metrics,
                                {"model": first.name, "metrics": {"micro": {"f1": 0.55}}}, held_out=100)
    assert (kept["decision"], kept["score"], kept["current"], kept["current_score"]) == ("kept", 0.50, first.name, 0.55)
    assert kept["current_scored_on"] == "this training's held-out split" and "below" in kept["reason"]
    assert models_of(project.labeling_config)["Drug"] == first.name and project.config_version == 2

    project.deploy_gate = False
    ungated = deploy_trained_model(session, settings, project, job_of(session, worse), worse.name, worse.metrics, None, held_out=100)
    assert (ungated["decision"], ungated["current_score"], ungated["current_scored_on"]) == ("deployed", 0.60, "its own training's held-out split")
    assert models_of(project.labeling_config)["Drug"] == worse.name and project.config_version == 3

    project.deploy_gate, project.deploy_metric = True, "macro.f1"
    better = trained(session, project, "ner", "ner_clinic_annotation_active_learning_v2", 0.9)
    unscored = deploy_trained_model(session, settings, project, job_of(session, better), better.name, better.metrics, None, held_out=100)
    assert (unscored["decision"], unscored["score"]) == ("not deployed", None), "a metric the model lacks cannot clear the floor"
    assert unscored["reason"].startswith("[E619]") and "cannot be measured" in unscored["reason"]


def test_a_deploy_that_breaks_a_rule_is_not_applied_and_says_why(session: Session, settings: Settings) -> None:
    pretrained = [f"ner_pretrained_{i}" for i in range(5)]
    labels = "".join(f'<Label value="L{i}" model="{m}"/>' for i, m in enumerate(pretrained))
    xml = f'<View><Text name="text" value="$text"/><Labels name="label" toName="text">{labels}<Label value="New"/></Labels></View>'
    project = clinic(session, xml)
    session.add_all([CatalogModel(name=m, kind="ner", labels=[], source="registered") for m in pretrained])
    sixth = trained(session, project, "ner", "ner_clinic_annotation_manual", 0.7)
    decision = deploy_trained_model(session, settings, project, job_of(session, sixth), sixth.name, sixth.metrics, None, held_out=100)
    assert decision["decision"] == "refused" and decision["reason"].startswith("[E615]") and "at most 5" in decision["reason"]
    assert project.labeling_config == xml and project.config_version == 1

    xml = MIXED.format(drug="", assertion=' model="assertion_pretrained"')
    other = clinic_named(session, xml)
    session.add(CatalogModel(name="assertion_pretrained", kind="assertion", labels=[], source="registered"))
    session.add(CatalogModel(name="ner_pretrained_doses", kind="ner", labels=["Dose"], source="registered"))
    second = trained(session, other, "assertion", "assertion_clinic_annotation_manual", 0.8)
    decision = deploy_trained_model(session, settings, other, job_of(session, second), second.name, second.metrics, None, held_out=100)
    assert decision["decision"] == "refused" and "assertion" in decision["reason"], decision
    assert other.labeling_config == xml


def clinic_named(session: Session, xml: str) -> Project:
    owner = session.scalars(select(User)).first()
    project = Project(name="second clinic", labeling_config=xml, created_by=owner.id)
    session.add(project)
    session.flush()
    return project


def test_a_model_too_little_judged_or_below_the_floor_is_not_deployed_unless_forced(session: Session, settings: Settings) -> None:
    project = clinic(session, MIXED.format(drug="", assertion=""))
    session.add(CatalogModel(name="ner_pretrained_doses", kind="ner", labels=["Dose"], source="registered"))
    first = trained(session, project, "ner", "ner_clinic_annotation_manual", 0.60)
    small = deploy_trained_model(session, settings, project, job_of(session, first), first.name, first.metrics, None, held_out=3)
    assert (small["decision"], small["held_out"]) == ("not deployed", 3)
    assert small["reason"].startswith("[E618] the model was not deployed: it was scored on 3 held-out examples, fewer than the 20")
    poor = trained(session, project, "ner", "ner_clinic_annotation_manual_v2", 0.05)
    low = deploy_trained_model(session, settings, project, job_of(session, poor), poor.name, poor.metrics, None, held_out=100)
    assert low["decision"] == "not deployed" and low["reason"].startswith("[E619]") and "0.0500 is below the floor of 0.1" in low["reason"]
    assert models_of(project.labeling_config)["Drug"] is None and project.config_version == 1, "nothing was deployed"
    job_of(session, poor).deploy_forced = True
    forced = deploy_trained_model(session, settings, project, job_of(session, poor), poor.name, poor.metrics, None, held_out=3)
    assert (forced["decision"], forced["forced"]) == ("deployed", True), forced
    assert models_of(project.labeling_config)["Drug"] == poor.name
