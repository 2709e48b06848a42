"""Models trained outside annoray: imported after inspection of their own files, refused with the reason otherwise."""

import json
import random
import shutil
from pathlib import Path

import pytest

from ..conftest import Api, refused

SENTENCES = [("The patient has {} since monday.", "asthma"), ("No sign of {} today.", "diabetes"),
             ("History of {} in the family.", "migraine"), ("She was treated for {} last year.", "pneumonia")]


def outside_pipeline(path: Path, *, component: str = "disease_ner", textcat: bool = False) -> Path:
    """A spaCy NER pipeline trained with spaCy alone, as a user would bring it (its component named its own way)."""
    import spacy
    from spacy.training import Example

    nlp = spacy.blank("en")
    ner = nlp.add_pipe("ner", name=component)
    ner.add_label("Disease")
    if textcat:
        textcat_pipe = nlp.add_pipe("textcat")
        for label in ("urgent", "routine"):
            textcat_pipe.add_label(label)
    examples = []
    for template, disease in SENTENCES * 3:
        text = template.format(disease)
        start = text.index(disease)
        gold = {"entities": [(start, start + len(disease), "Disease")]} | ({"cats": {"urgent": 1.0, "routine": 0.0}} if textcat else {})
        examples.append(Example.from_dict(nlp.make_doc(text), gold))
    random.seed(0)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(25):
        random.shuffle(examples)
        nlp.update(examples, sgd=optimizer, drop=0.1)
    nlp.to_disk(path)
    return path


def spark_pipeline(path: Path, *stages: str) -> Path:
    """The metadata of a saved Spark ML PipelineModel with these Spark NLP stages (what PipelineModel.save writes)."""
    def metadata(folder: Path, cls: str) -> None:
        (folder / "metadata").mkdir(parents=True)
        (folder / "metadata" / "part-00000").write_text(json.dumps({"class": cls, "paramMap": {}}) + "\n")

    metadata(path, "org.apache.spark.ml.PipelineModel")
    for i, stage in enumerate(stages):  # a name with a dot is a class of its own (a Python stage's module.Class)
        metadata(path / "stages" / f"{i}_{stage.rsplit('.', 1)[-1]}_1a2b", stage if "." in stage else f"com.johnsnowlabs.nlp.{stage}")
    return path


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return outside_pipeline(tmp_path_factory.mktemp("outside") / "disease_model")


def store_listing(api: Api) -> list[str]:
    root = Path(api.settings.resolved_model_store)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_a_spacy_pipeline_is_imported_with_what_its_files_say_and_named_in_a_config(api: Api, pipeline: Path) -> None:
    created = api.admin.post("/api/models/import", json={"name": "disease_ner_outside", "uri": str(pipeline), "engine": "spacy"})
    assert created.status_code == 201, created.text
    model = created.json()
    assert {k: model[k] for k in ("kind", "labels", "language", "source", "engine", "project_id", "metrics")} == {
        "kind": "ner", "labels": ["Disease"], "language": "en", "source": "imported", "engine": "spacy.ner.v1",
        "project_id": None, "metrics": {}}
    assert model["uri"] == f"{api.settings.resolved_model_store}/disease_ner_outside", "copied into the model store"
    assert (Path(model["uri"]) / "meta.json").exists()
    assert "disease_ner_outside" in [m["name"] for m in api.admin.get("/api/models", params={"kind": "ner"}).json()]
    seen = api.user("reader").get("/api/models/disease_ner_outside").json()
    assert seen["uri"] is None and seen["stored"] is True, "the model store's paths are for admins only"

    config = ('<View><Text name="text" value="$text"/><Labels name="label" toName="text">'
              '<Label value="Disease" model="{m}"/><Label value="Drug"/></Labels></View>')
    project = api.admin.post("/api/projects", json={"name": "uses it", "labeling_config": config.format(m="disease_ner_outside")})
    assert project.status_code == 201, project.text
    wrong = ('<View><Text name="text" value="$text"/><Choices name="c" toName="text" model="disease_ner_outside">'
             '<Choice value="a"/><Choice value="b"/></Choices></View>')
    body = refused(api, lambda: api.admin.post("/api/projects", json={"name": "wrong kind", "labeling_config": wrong}), 422)
    assert any("disease_ner_outside" in e["message"] and "[E11" in e["message"] for e in body["errors"]), body


def test_what_annoray_cannot_serve_is_refused_with_the_reason_and_nothing_kept(api: Api, pipeline: Path, tmp_path: Path) -> None:
    both = outside_pipeline(tmp_path / "both", textcat=True)
    alien = tmp_path / "alien"
    shutil.copytree(pipeline, alien)
    (alien / "config.cfg").write_text((alien / "config.cfg").read_text().replace('factory = "ner"', 'factory = "fancy_ner"'))
    empty = tmp_path / "empty"
    empty.mkdir()
    no_labels = tmp_path / "no_labels"
    shutil.copytree(pipeline, no_labels)
    meta = json.loads((no_labels / "meta.json").read_text())
    (no_labels / "meta.json").write_text(json.dumps(meta | {"labels": {}}))
    before = store_listing(api)
    for uri, engine, why in (
            ("https://models.example.com/ner.tar.gz", "spacy", "annoray downloads nothing"),
            (str(tmp_path / "nowhere"), "spacy", "there is no folder at"),
            ("/" + "x" * 1999, "spacy", "it cannot be read here (File name too long)"),
            (str(empty), "spacy", "it is not a spaCy pipeline folder"),
            (str(both), "spacy", "it holds 2 models (disease_ner, textcat)"),
            (str(alien), "spacy", "it needs the spaCy factories fancy_ner"),
            (str(no_labels), "spacy", "its meta.json lists no labels for 'disease_ner'"),
            (str(pipeline), "sparknlp", "it is not a saved Spark ML PipelineModel folder"),
            (str(spark_pipeline(tmp_path / "python", "DocumentAssembler", "payload.Run", "NerDLModel", "NerConverter")), "sparknlp",
             "it names Python classes (payload.Run), which loading it would import and run"),
            (str(spark_pipeline(tmp_path / "spark", "DocumentAssembler", "Tokenizer", "NerDLModel")), "sparknlp",
             "its NerDLModel is not followed by a NerConverter"),
            (str(spark_pipeline(tmp_path / "spark_ok", "DocumentAssembler", "SentenceDetector", "Tokenizer", "WordEmbeddingsModel",
                                "NerDLModel", "NerConverter")), "sparknlp",
             "Spark NLP models are read and served with the Spark NLP jar: no Spark NLP jar is configured"),
            (str(pipeline), "tensorflow", "[E511] models of engine 'tensorflow' cannot be imported here; importable: spacy, sparknlp")):
        body = refused(api, lambda uri=uri, engine=engine: api.admin.post(
            "/api/models/import", json={"name": "m", "uri": uri, "engine": engine}), 422)
        assert why in body["detail"], (why, body)
        if engine != "tensorflow":
            assert body["detail"].startswith(f"[E510] cannot import the model at {uri}: ")
    assert store_listing(api) == before

    assert api.admin.post("/api/models/import", json={"name": "taken", "uri": str(pipeline)}).status_code == 201
    assert refused(api, lambda: api.admin.post("/api/models/import", json={"name": "taken", "uri": str(pipeline)}), 409)["detail"].startswith("[E508]")
    someone = api.user("someone")
    assert refused(api, lambda: someone.post("/api/models/import", json={"name": "x", "uri": str(pipeline)}), 403)
