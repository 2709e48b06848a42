"""An owner's own NER training config: checked by building and training it one step, listed, deleted, named by a
training; code only where the operator allows it, and only from an admin."""

from concurrent.futures import ThreadPoolExecutor
from functools import cache

import httpx
import pytest

from ..conftest import Api, refused


@cache
def spacy_ner_config(lang: str = "en") -> str:
    """What `spacy init config --pipeline ner` writes."""
    from spacy.cli.init_config import init_config

    return init_config(lang=lang, pipeline=["ner"], optimize="efficiency").to_str()


def test_a_config_is_checked_kept_listed_named_by_a_training_and_deleted(api: Api, clinic: tuple[int, httpx.Client]) -> None:
    pid, owner = clinic
    configs = f"/api/projects/{pid}/training-configs"
    created = owner.post(configs, json={"name": "wide ner", "config": spacy_ner_config().replace("width = 96", "width = 128")})
    assert created.status_code == 201, created.text
    config = created.json()
    assert (config["name"], config["kind"], config["code"], "width = 128" in config["text"]) == ("wide ner", "ner", False, True)
    assert [c["id"] for c in owner.get(configs).json()] == [config["id"]]
    assert owner.get(f"{configs}/{config['id']}").json() == config
    assert refused(api, lambda: owner.post(configs, json={"name": "wide ner", "config": spacy_ner_config()}), 409)["detail"].startswith("[E624]")

    queued = owner.post(f"/api/projects/{pid}/trainings", json={"config": config["id"]})
    assert queued.status_code == 202, queued.text
    ner = next(j for j in queued.json()["jobs"] if j["kind"] == "ner")
    log = owner.get(f"/api/trainings/{ner['id']}/log").text
    assert "pipeline: the project's own training config 'wide ner'" in log, log
    other = next(j for j in queued.json()["jobs"] if j["kind"] != "ner")
    assert "own training config" not in owner.get(f"/api/trainings/{other['id']}/log").text, "only NER trains with it"

    assert owner.delete(f"{configs}/{config['id']}").status_code == 204
    assert owner.get(configs).json() == [] and owner.get(f"{configs}/{config['id']}").status_code == 404
    body = refused(api, lambda: owner.post(f"/api/projects/{pid}/trainings", json={"config": config["id"]}), 422)
    assert body["errors"][0]["message"] == f"[E622] training config {config['id']} is not one of this project's; its configs: none"


@pytest.mark.parametrize(("change", "where", "why"), [
    (lambda c: c.replace("width = 96", 'width = "wide"'), "components.tok2vec.model.embed.width", "is not <class 'int'>"),
    (lambda c: c.replace("spacy.Tok2Vec.v2", "spacy.Tok2Vec.v9"), "components.tok2vec.model.@architectures",
     "Could not find function 'spacy.Tok2Vec.v9'"),
    (lambda c: c.replace('pipeline = ["tok2vec", "ner"]', 'pipeline = ["tok2vec"]'), "nlp.pipeline", "exactly one component"),
    (lambda c: c.replace('lang = "en"', 'lang = "de"'), "nlp.lang", "the project's language is 'en'"),
    (lambda c: "[nlp\nlang = en", "config", "it is not a config spaCy reads"),
])
def test_a_broken_config_is_refused_with_the_section_and_key_at_fault(api: Api, clinic: tuple[int, httpx.Client],
                                                                        change, where: str, why: str) -> None:
    pid, owner = clinic
    body = refused(api, lambda: owner.post(f"/api/projects/{pid}/training-configs",
                                           json={"name": "broken", "config": change(spacy_ner_config())}), 422)
    assert body["errors"][0]["field"] == where and why in body["errors"][0]["message"], body
    assert body["detail"].startswith(f"[E620] the training config is refused: {where}: ")


@pytest.mark.parametrize(("change", "where", "code"), [
    (lambda c: c.replace("[components.ner]", '[components.ner]\nsource = "/srv/annoray/models/their_ner"'),
     "components.ner.source", "[E629]"),
    (lambda c: c + '\n[components.ner.labels]\n@readers = "spacy.read_labels.v1"\n', "components.ner.labels.@readers", "[E629]"),
    (lambda c: c.replace("rows = [5000, 1000, 2500, 2500]", "rows = [200000000, 1000, 2500, 2500]"),
     "components.tok2vec.model.embed.rows", "[E630]"),
])
def test_a_config_that_reads_the_servers_disk_or_asks_for_too_much_is_refused_before_it_is_built(
        api: Api, clinic: tuple[int, httpx.Client], change, where: str, code: str) -> None:
    pid, owner = clinic
    body = refused(api, lambda: owner.post(f"/api/projects/{pid}/training-configs",
                                           json={"name": "hostile", "config": change(spacy_ner_config())}), 422)
    assert any(e["field"] == where and e["message"].startswith(code) for e in body["errors"]), body


def test_a_config_too_big_for_its_check_fails_the_check_not_the_api(api: Api, clinic: tuple[int, httpx.Client]) -> None:
    """Within every size cap but needing more memory than the check's budget: the check's own process fails, the API
    answers meanwhile and after."""
    pid, owner = clinic
    big = (spacy_ner_config().replace("rows = [5000, 1000, 2500, 2500]", "rows = [100000, 100000, 100000, 100000]")
           .replace("width = 96", "width = 1024"))
    with ThreadPoolExecutor(1) as pool:
        upload = pool.submit(owner.post, f"/api/projects/{pid}/training-configs", json={"name": "big", "config": big})
        answered = 0
        while not upload.done():
            assert owner.get(f"/api/projects/{pid}").status_code == 200
            answered += 1
        body = upload.result()
    assert body.status_code == 422 and "memory" in body.json()["detail"] and answered > 1, body.text
    assert owner.get(f"/api/projects/{pid}/training-configs").json() == []


def test_code_needs_the_operators_setting_and_an_admin(api: Api, clinic: tuple[int, httpx.Client]) -> None:
    pid, owner = clinic
    code = "import spacy\n@spacy.registry.misc('annoray_test.nothing.v1')\ndef nothing():\n    return None\n"
    upload = {"name": "with code", "config": spacy_ner_config(), "code": code}
    body = refused(api, lambda: owner.post(f"/api/projects/{pid}/training-configs", json=upload), 403)
    assert body["detail"].startswith("[E621] code comes with a training config only when the operator sets")
    refused(api, lambda: api.admin.post(f"/api/projects/{pid}/training-configs", json=upload), 403)  # the setting is off
    manager = api.user("mia")
    owner.post(f"/api/projects/{pid}/members", json={"username": "mia", "role": "manager"})
    body = refused(api, lambda: manager.post(f"/api/projects/{pid}/training-configs", json={"name": "x", "config": spacy_ner_config()}), 403)
    assert body["detail"].startswith("[E402] role 'manager' may not upload training configs")


def test_the_engines_are_listed_with_their_kinds_languages_and_whether_they_train_here(api: Api) -> None:
    engines = {e["name"]: e for e in api.admin.get("/api/engines").json()}
    assert {"spacy.ner.v1", "spacy.assertion.v1", "spacy.classification.v1", "spacy.visual_ner.v1", "spacy_words.visual_ner.v1"} <= set(engines)
    ner = engines["spacy.ner.v1"]
    assert (ner["family"], ner["kinds"], ner["available"], ner["reason"]) == ("spacy", ["ner"], True, None)
    assert {"en", "de", "es", "pt", "it", "da", "ro"} <= set(ner["languages"])
    assert api.client("nonsense").get("/api/engines").status_code == 401


def test_spark_nlp_is_listed_unavailable_with_the_reason_and_its_trainings_are_refused_with_it(
        api: Api, clinic: tuple[int, httpx.Client], tmp_path) -> None:
    pid, owner = clinic
    engines = {e["name"]: e for e in api.admin.get("/api/engines").json()}
    for name in ("sparknlp.ner.v1", "sparknlp.classification.v1", "sparknlp.assertion.v1"):
        assert engines[name]["family"] == "sparknlp" and not engines[name]["available"], engines[name]
        assert engines[name]["reason"].startswith("no Spark NLP jar is configured: set ANNORAY_SPARKNLP__JAR"), engines[name]
    body = refused(api, lambda: owner.post(f"/api/projects/{pid}/trainings", json={"engine": "sparknlp"}), 422)
    assert [e["message"] for e in body["errors"]][:1] == [
        "[E602] engine 'sparknlp.ner.v1' is not available here: no Spark NLP jar is configured: set ANNORAY_SPARKNLP__JAR "
        "to the assembly jar (it is never downloaded)"], body
    body = refused(api, lambda: api.admin.post("/api/models", json={"name": "glove", "kind": "sparknlp_embeddings",
                                                                    "uri": str(tmp_path)}), 422)
    assert body["detail"] == f"[E625] {tmp_path} is not a saved Spark NLP WordEmbeddingsModel folder (its metadata declares no dimension)"
