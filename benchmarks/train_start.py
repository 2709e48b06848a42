"""What a Ray Train run costs around its training loop, for a small NER model, and the CPU it takes.

The baseline is Ray Train as it comes, as annoray ran it before: its variables set in the runner's process alone (so
the run's controller and worker get a runtime_env of their own and cannot take idle worker processes), and every actor
Ray Train starts per run (a Ray Datasets manager, a placement group cleaner, a preemption watcher, beside the
controller, the worker and the synchronization actor). Then annoray's way (`ray_train.train_env` for the whole job,
`ray_train.run_training` without those three actors), and that with a shorter poll interval.

Each variant starts a fresh local Ray (the job's variables are fixed when Ray starts), warms it with one run, then
times ``--runs`` runs started from a detached actor as the scheduler's runner starts them. Prints, per variant, the
median seconds from the start to the first epoch's report, from the last epoch's report to the run's end, and in all,
and the machine's CPU seconds per run, each as a ratio against the baseline.

    python benchmarks/train_start.py [--runs 4] [--epochs 6]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import ray

from annoray.platform.labeling.examples import NerExample
from annoray.platform.settings import Settings
from annoray.trainers.ray_train import TrainingRun, run_training, train_env

DRUGS = ["aspirin", "ibuprofen", "heparin", "insulin", "morphine", "warfarin", "codeine", "penicillin"]


@ray.remote(num_cpus=0)
class Clock:
    """Receives the run's epoch reports (Ray Train's controller calls it) and keeps when each arrived."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    def epoch(self, run: str, report: dict[str, Any]) -> None:
        self.seen.append(time.time())

    def worker_failed(self, *args: Any) -> None:
        pass

    def times(self) -> list[float]:
        return self.seen


@ray.remote(num_cpus=0)
class Starter:
    """Starts runs as `TrainingRunner` does: from an actor whose process has Ray Train's variables set."""

    def __init__(self, env: dict[str, str], stock: bool) -> None:
        os.environ.update(env)
        if stock:  # the callbacks run_training leaves out are matched by class: match none, keep Ray Train's own
            import ray.train.v2._internal.callbacks as callbacks
            import ray.train.v2._internal.callbacks.placement_group_callback as cleaner
            import ray.train.v2.api.data_parallel_trainer  # noqa: F401  (it takes the real ones first)

            callbacks.DatasetsCallback = cleaner.PlacementGroupCleanerCallback = type("Nothing", (), {})

    def run(self, run: TrainingRun, clock: Any) -> tuple[float, float]:
        began = time.time()
        with tempfile.TemporaryDirectory() as d:
            run_training(run, Path(d) / "model", progress=clock)
        return began, time.time()


def examples(count: int) -> list[NerExample]:
    out = []
    for i in range(count):
        drug = DRUGS[i % len(DRUGS)]
        text = f"Patient {i} was given {drug} after the operation."
        start = text.index(drug)
        out.append(NerExample(i, i, text, [(start, start + len(drug), "Drug")]))
    return out


def machine_cpu_s() -> float:
    """CPU seconds the whole machine has spent (every process, Ray's included), from /proc/stat."""
    busy = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return (sum(busy) - busy[3] - busy[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait


def measure(name: str, settings: Settings, stock: bool, runs: int, epochs: int, storage: Path) -> dict[str, float]:
    env = train_env(settings)
    if stock:
        env = {k: v for k, v in env.items() if k != "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER"}
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False,
             runtime_env=None if stock else {"env_vars": env})
    try:
        starter = Starter.remote(env, stock)
        data = examples(40)
        first, last, total, cpu = [], [], [], []
        for i in range(runs + 1):  # the first warms Ray up and is not counted
            clock = Clock.remote()
            run = TrainingRun(name=f"{name}-{i}", engine="spacy.ner.v1", engine_config={"language": "en", "labels": ["Drug"]},
                              params={"epochs": epochs, "batch_size": 8}, train=data[:32], dev=data[32:],
                              storage_path=str(storage))
            time.sleep(3)  # what the last run left (actors exiting) is not counted in this one
            before = machine_cpu_s()
            began, ended = ray.get(starter.run.remote(run, clock))
            seen = ray.get(clock.times.remote())
            time.sleep(3)
            if i:
                first.append(seen[0] - began)
                last.append(ended - seen[-1])
                total.append(ended - began)
                cpu.append(machine_cpu_s() - before)
        return {"to first epoch": statistics.median(first), "after last epoch": statistics.median(last),
                "in all": statistics.median(total), "CPU": statistics.median(cpu)}
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    storage = Path(tempfile.mkdtemp(prefix="annoray-train-start-"))
    default = Settings(home=storage)
    poll = default.training.model_copy(update={"poll_interval_s": 0.5})
    old = default.model_copy(update={"training": poll})
    fast = default.training.model_copy(update={"poll_interval_s": 0.2})
    variants = [("Ray Train as it comes, poll 0.5 s", old, True), ("annoray's way, poll 0.5 s", old, False),
                ("annoray's way, poll 0.2 s", default.model_copy(update={"training": fast}), False)]
    results = [(name, measure(f"v{i}", settings, stock, args.runs, args.epochs, storage))
               for i, (name, settings, stock) in enumerate(variants)]
    base = results[0][1]
    print(f"a small NER model, {args.epochs} epochs, median of {args.runs} runs after one to warm up; seconds (x the first)")
    for name, figures in results:
        print(f"- {name}: " + ", ".join(f"{what} {s:.2f} s ({s / base[what]:.2f}x)" for what, s in figures.items()))


if __name__ == "__main__":
    main()
