"""A training job as a real Ray Train run: progress per epoch reaches an actor, the model comes back."""

from pathlib import Path

import pytest

from annoray.platform.datasets import NerExample

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, namespace="annoray-tests")
    yield
    ray.shutdown()


@ray.remote
class Collector:
    def __init__(self) -> None:
        self.reports: list[tuple[str, dict]] = []

    def epoch(self, name: str, report: dict) -> None:
        self.reports.append((name, report))

    def all(self) -> list[tuple[str, dict]]:
        return self.reports


def test_ner_training_runs_on_ray_train_and_reports_each_epoch(ray_cluster, tmp_path: Path) -> None:
    from annoray.trainers.ray_train import TrainingRun, run_training

    data = []
    for i, entity in enumerate(["fever", "cough", "nausea", "rash"]):
        text = f"The patient reports {entity} today."
        start = text.index(entity)
        data.append(NerExample(i, i, text, [(start, start + len(entity), "C")]))
    collector = Collector.remote()
    run = TrainingRun(name="job-1", engine="spacy.ner.v1", engine_config={"labels": ["C"]},
                      params={"epochs": 4, "batch_size": 2}, train=data, dev=data, storage_path=str(tmp_path / "runs"))
    run_training(run, tmp_path / "model", progress=collector)
    reports = ray.get(collector.all.remote())
    assert [(name, r["epoch"]) for name, r in reports] == [("job-1", e) for e in range(1, 5)]
    assert "micro" in reports[-1][1]["metrics"]
    assert (tmp_path / "model" / "ner").is_dir() and (tmp_path / "model" / "meta.json").exists()
