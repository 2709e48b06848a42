"""A training job as a real Ray Train run: progress per epoch reaches an actor, a killed worker resumes, the model comes back."""

import os
import signal
from pathlib import Path

import pytest

from annoray.platform.labeling.datasets import NerExample, VisualNerExample

import ray  # noqa: E402  (a dependency of annoray: never skipped)
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

    def worker_failed(self, name: str, error: str, node_id: str | None = None) -> None:
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


def visual_ner_data() -> list[VisualNerExample]:
    """Four small forms: the word right of 'Total:' is the total, wherever the line is."""
    data = []
    for i, (amount, y) in enumerate([("12.00", 40), ("7.50", 80), ("310.99", 120), ("1.25", 160)]):
        words = [["ACME", 10, 10, 60, 22, 0, 0], ["Total:", 10, y, 60, y + 12, 1, 1], [amount, 70, y, 120, y + 12, 1, 1]]
        data.append(VisualNerExample(i, i, words, ["O", "O", "B-Total"], 200, 200))
    return data


def run(tmp_path: Path, epochs: int, max_failures: int = 2, visual: bool = False, cpus: float = 1.0):
    from annoray.trainers.ray_train import TrainingRun

    data = visual_ner_data() if visual else ner_data()
    return TrainingRun(name=f"job-{tmp_path.name}", engine="spacy.visual_ner.v1" if visual else "spacy.ner.v1",
                       engine_config={"labels": ["Total" if visual else "C"]}, params={"epochs": epochs, "batch_size": 2},
                       train=data, dev=data, storage_path=str(tmp_path / "runs"), max_failures=max_failures,
                       resources={"CPU": cpus})


@pytest.fixture(autouse=True)
def quick_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    """As the scheduler's runner does: Ray Train's controller polls its workers every 0.5 s, not every 2 s."""
    monkeypatch.setenv("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.5")


def test_a_killed_visual_ner_worker_is_restarted_resumes_from_its_last_checkpoint_and_reports_each_epoch(
        ray_session, tmp_path: Path) -> None:
    from annoray.trainers.ray_train import run_training

    collector = Collector.remote(kill_after=2)
    before = set(ray._private.state.actors())
    result = run_training(run(tmp_path, 8, visual=True, cpus=3), tmp_path / "model", progress=collector)
    started = {actor["ActorClassName"] for actor_id, actor in ray._private.state.actors().items() if actor_id not in before}
    assert {"TrainController", "RayTrainWorker"} <= started, started
    assert not started & {"DatasetManager", "PlacementGroupCleaner", "PreemptionWatcher"}, "actors annoray has no use for"
    metrics = result.metrics
    seen = ray.get(collector.all.remote())
    epochs = [r["epoch"] for _, r in seen["reports"]]
    assert {name for name, _ in seen["reports"]} == {f"job-{tmp_path.name}"}
    final = {k: v for k, v in metrics.items() if k != "reference"}  # the guess with no model is scored once, at the end
    assert final == seen["reports"][-1][1]["metrics"] and "micro" in final, "the final metrics are the last epoch's"
    assert metrics["reference"]["name"].endswith("as runs of words matched exactly")
    assert metrics["confusion_matrix"]["labels"] == ["Total", "O"]
    assert (tmp_path / "model" / "meta.json").exists()
    assert len(seen["killed"]) == 1 and len(seen["failures"]) == 1
    assert {r["worker"]["pid"] for _, r in seen["reports"]} - set(seen["killed"]), "no second worker reported"
    assert epochs.count(1) == 1, f"the restarted worker began again from scratch: {epochs}"
    threads = seen["reports"][0][1]["worker"]["threads"]  # 3 CPUs allocated: as many threads, or the cores there are
    assert threads["allocated"] == 3 and threads["openblas"] == min(3, threads["cores"]), threads
    assert set(epochs) == set(range(1, 9)) and epochs[-1] == 8
    # the result holds every report once, across the restart: what a scheduler down at the time missed is not lost
    assert [r["epoch"] for r in result.epochs] == list(range(1, 9)) and all(r in [s for _, s in seen["reports"]] for r in result.epochs)
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
