"""The faults of benchmarks/chaos.py, smaller, with assertions on what they count (never on times): nothing lost,
nothing duplicated, no licence seat leaked."""

import importlib.util
import sys
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("chaos", Path(__file__).resolve().parents[1] / "benchmarks" / "chaos.py")
chaos = sys.modules["chaos"] = importlib.util.module_from_spec(spec)  # dataclasses look their module up
spec.loader.exec_module(chaos)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def assert_nothing_lost(outcome) -> None:
    assert (outcome.lost, outcome.duplicated, outcome.seats_leaked) == (0, 0, 0), outcome


def test_the_api_killed_during_an_import_and_during_training_requests(tmp_path: Path) -> None:
    outcome = chaos.api_killed_during_import(tmp_path, tasks=5000)
    assert_nothing_lost(outcome)
    assert outcome.note.startswith("all or nothing")
    assert_nothing_lost(chaos.api_killed_during_training_request(tmp_path, rounds=4))


@pytest.mark.ray
def test_the_scheduler_killed_while_a_server_deploys_and_a_job_runs_and_a_store_that_cannot_be_written(
        ray_session, tmp_path: Path) -> None:
    deploy, preannotation = chaos.scheduler_killed_during_deploy_and_preannotation(tmp_path, tasks=150, baseline=False)
    assert_nothing_lost(deploy)
    assert_nothing_lost(preannotation)
    store = chaos.model_store_unwritable(tmp_path, baseline=False)
    assert_nothing_lost(store)
    assert "[E628]" in store.note
