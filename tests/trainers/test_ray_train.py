"""A training job as a real Ray Train run: progress per epoch reaches an actor, a killed worker resumes, the model comes back."""

import os
import signal
from pathlib import Path

import pytest

from annoray.platform.labeling.datasets import NerExample

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(600)]


@ray.remote
class Collector:
    """Receives progress as the scheduler would; kills the training worker once, after ``kill_after`` epochs."""

    def __init__(self, kill_after: int = 0) -> None:
        self.reports: list[tuple[str, dict]] = []
        self.failures: list[str] = []
        self.kill_after = kill_after
        self.killed: list[int] = []

    def epoch(self, name: str, report: dict) -> None:
        self.reports.append((name, report))
        if self.kill_after and report["epoch"] == self.kill_after and not self.killed:
            os.kill(report["worker"]["pid"], signal.SIGKILL)
            self.killed.append(report["worker"]["pid"])

    def worker_failed(self, name: str, error: str) -> None:
        self.failures.append(error)

    def all(self) -> dict:
        return {"reports": self.reports, "failures": self.failures, "killed": self.killed}


def ner_data() -> list[NerExample]:
    data = []
    for i, entity in enumerate(["fever", "cough", "nausea", "rash"]):
        text = f"The patient reports {entity} today."
        start = text.index(entity)
        data.append(NerExample(i, i, text, [(start, start + len(entity), "C")]))
    return data


def run(tmp_path: Path, epochs: int, max_failures: int = 2):
    from annoray.trainers.ray_train import TrainingRun

    return TrainingRun(name=f"job-{tmp_path.name}", engine="spacy.ner.v1", engine_config={"labels": ["C"]},
                       params={"epochs": epochs, "batch_size": 2}, train=ner_data(), dev=ner_data(),
                       storage_path=str(tmp_path / "runs"), max_failures=max_failures)


def test_ner_training_runs_on_ray_train_and_reports_each_epoch(ray_session, tmp_path: Path) -> None:
    from annoray.trainers.ray_train import run_training

    collector = Collector.remote()
    metrics = run_training(run(tmp_path, 4), tmp_path / "model", progress=collector).metrics
    reports = ray.get(collector.all.remote())["reports"]
    assert [r["epoch"] for _, r in reports] == [1, 2, 3, 4]
    assert {name for name, _ in reports} == {f"job-{tmp_path.name}"}
    reference = metrics.pop("reference")
    assert metrics == reports[-1][1]["metrics"] and "micro" in metrics, "the final metrics are the last epoch's"
    assert reference["name"].endswith("entity strings of the training split, matched exactly") and "f1" in reference["micro"]
    assert (tmp_path / "model" / "ner").is_dir() and (tmp_path / "model" / "meta.json").exists()


def test_a_killed_worker_is_restarted_and_resumes_from_its_last_checkpoint(ray_session, tmp_path: Path) -> None:
    from annoray.trainers.ray_train import run_training

    collector = Collector.remote(kill_after=2)
    run_training(run(tmp_path, 8), tmp_path / "model", progress=collector)
    seen = ray.get(collector.all.remote())
    epochs = [r["epoch"] for _, r in seen["reports"]]
    assert len(seen["killed"]) == 1 and len(seen["failures"]) == 1
    assert {r["worker"]["pid"] for _, r in seen["reports"]} - set(seen["killed"]), "no second worker reported"
    assert epochs.count(1) == 1, f"the restarted worker began again from scratch: {epochs}"
    assert set(epochs) == set(range(1, 9)) and epochs[-1] == 8
    assert (tmp_path / "model" / "ner").is_dir()


def test_a_worker_killed_beyond_the_retry_budget_fails_the_run_with_a_reason(ray_session, tmp_path: Path) -> None:
    from annoray.scheduler.runner import explain_failure
    from annoray.trainers.ray_train import run_training

    collector = Collector.remote(kill_after=1)
    with pytest.raises(Exception) as raised:
        run_training(run(tmp_path, 30, max_failures=0), tmp_path / "model", progress=collector)
    reason = explain_failure(raised.value, kind="ner", budget=0)
    assert reason.startswith("[E607]") and "retry budget of 0" in reason
    assert not (tmp_path / "model").exists()
