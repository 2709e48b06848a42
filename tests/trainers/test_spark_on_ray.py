"""Spark on the test Ray through RayDP, sized from a job's resources, with the platform's own training data as
DataFrames; and, where the Spark NLP jar is given, the Spark NLP engines end to end."""

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import Api, ray_available, shutdown_ray, wait_for_trainings

import ray  # noqa: E402  (a dependency of annoray: never skipped)
pytest.importorskip("raydp", reason="the spark extra is not installed (pip install 'annoray[spark]')")
pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(600)]

JAR = os.environ.get("ANNORAY_SPARKNLP__JAR") or os.environ.get("ANNORAY_SPARKNLP_JAR")
needs_jar = pytest.mark.skipif(
    not (JAR and os.environ.get("ANNORAY_SPARKNLP__GRAPHS") and os.environ.get("ANNORAY_TEST_SPARKNLP_EMBEDDINGS")),
    reason="the Spark NLP jar cannot be fetched here: set ANNORAY_SPARKNLP_JAR (the assembly jar), ANNORAY_SPARKNLP__GRAPHS "
           "(NerDL graphs) and ANNORAY_TEST_SPARKNLP_EMBEDDINGS (a saved WordEmbeddingsModel folder, e.g. glove_100d)")


@pytest.fixture
def own_ray(_ray_shutdown: None) -> Iterator[None]:
    """A Ray of the test's own, gone with it: RayDP's JVM joins the Ray it runs on as a driver of its own, and two runs
    on two workers hung in that Ray's GCS calls in later tests (tests/README.md)."""
    shutdown_ray()
    yield
    shutdown_ray()


def test_spark_starts_on_ray_with_a_jobs_resources_builds_the_training_frames_and_gives_everything_back(
        own_ray: None, training_api: Api, clinical_config: str, clinical_tasks: list) -> None:
    from annoray.platform.labeling.config import ModelKind
    from annoray.platform.labeling.datasets import SplitMethod
    from annoray.platform.labeling.projects import project_config
    from annoray.platform.labeling.training_data import SelectionQuery, build_training_data
    from annoray.platform.store.db import session_factory
    from annoray.platform.store.tables import Project
    from annoray.trainers.spark import ExecutorPlan, conll, spark_on_ray

    owner = training_api.admin
    pid = owner.post("/api/projects", json={"name": "clinical", "labeling_config": clinical_config}).json()["id"]
    assert owner.post(f"/api/projects/{pid}/tasks/import", json=clinical_tasks[:300]).status_code == 201
    sessions = session_factory(training_api.engine)
    with sessions() as session:
        project = session.get(Project, pid)
        config = project_config(project)
    data = build_training_data(sessions, pid, config, language="en", kinds=[ModelKind.NER, ModelKind.CLASSIFICATION],
                               query=SelectionQuery((), False), split=SplitMethod.RANDOM, validation_split=0.2, seed=0,
                               min_examples=1, page_size=500)
    ner, classification = data.datasets[ModelKind.NER], data.datasets[ModelKind.CLASSIFICATION]

    def free() -> dict[str, float]:
        return {k: ray_available().get(k, 0.0) for k in ("CPU", "memory")}

    before = free()
    plan = ExecutorPlan.of(cpus=4, memory_gb=12)  # sparknlp.ner.v1's spec: the driver (the Train worker) keeps half
    assert (plan.driver_cpus, plan.driver_memory_gb, plan.executors, plan.cores, plan.memory_gb) == (2, 6, 1, 2, 6)
    with spark_on_ray("annoray-test", plan, node_ip=ray.util.get_node_ip_address()) as spark:
        from annoray.trainers.spark import classification_frame, ner_frame

        frame = ner_frame(spark, ner.train, "en")
        rows = frame.collect()
        assert frame.columns == ["text", "tokens", "tags"] and 0 < len(rows) <= len(ner.train)
        assert all(len(r["tokens"]) == len(r["tags"]) for r in rows)
        tagged = {tag for r in rows for tag in r["tags"]}
        assert {"O", "B-Condition", "I-Condition"} <= tagged, tagged
        assert frame.filter("array_contains(tags, 'B-Condition')").count() > 0  # Spark itself computes over it
        texts = classification_frame(spark, classification.train)
        assert texts.count() == len(classification.train) and texts.columns == ["text", "labels"]
        assert {r["labels"][0] for r in texts.collect()} <= {"Recent", "Historical", "Not particular"}
        held = {k: before[k] - v for k, v in free().items()}  # the executor has run Spark's tasks: it is up
        assert held["CPU"] >= 2 and held["memory"] >= 6 * 2**30, f"the executor holds the job's share on Ray: {held}"
    text = conll(ner.train, "en")
    assert text.startswith("-DOCSTART- -X- -X- O") and " -X- -X- B-Condition" in text

    deadline = time.monotonic() + 60
    def back() -> bool:  # what an earlier test still held may come back meanwhile: at least as free as before
        now = free()
        return all(now[k] >= before[k] for k in before)

    while not back() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert back(), f"Spark's actors gave everything back: {free()} free, {before} before"


@needs_jar
def test_spark_nlp_ner_and_classification_train_through_http_and_score_like_the_spacy_engines(tmp_path: Path, ray_session) -> None:
    from ..conftest import german_project, live_api, scheduler_settings

    settings = scheduler_settings(tmp_path / "home")
    settings = settings.model_copy(update={"sparknlp": settings.sparknlp.model_copy(update={
        "jar": Path(JAR), "graphs": Path(os.environ["ANNORAY_SPARKNLP__GRAPHS"])})})
    with live_api(settings) as api:
        owner = api.admin
        assert owner.post("/api/models", json={"name": "glove", "kind": "sparknlp_embeddings",
                                               "uri": os.environ["ANNORAY_TEST_SPARKNLP_EMBEDDINGS"], "language": "de"}).status_code == 201
        engines = {e["name"]: e for e in owner.get("/api/engines").json()}
        assert engines["sparknlp.ner.v1"]["available"], engines["sparknlp.ner.v1"]
        pid = german_project(owner)
        job = owner.post(f"/api/projects/{pid}/trainings", json={
            "engine": "sparknlp", "embeddings": "glove", "params": {"epochs": 5, "batch_size": 4}}).json()["jobs"][0]
        (done,), seen = wait_for_trainings(owner, [job["id"]], timeout=500)
        assert done["status"] == "succeeded", done
        assert done["engine"] == "sparknlp.ner.v1" and [s["progress"]["epoch"] for s in seen[0]][-1] == 5
        assert set(done["metrics"]) >= {"micro", "macro", "per_label"}
        model = owner.get(f"/api/models/{done['model']}").json()
        assert model["engine"] == "sparknlp.ner.v1" and (Path(model["uri"]) / "metadata").is_dir(), "a Spark ML PipelineModel"
