"""The faults of benchmarks/chaos.py, smaller, with assertions on what they count (never on times): nothing lost,
nothing duplicated, no licence seat leaked."""

import importlib.util
import shutil
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


@pytest.mark.ray
@pytest.mark.postgres
@pytest.mark.skipif(shutil.which("initdb") is None, reason="PostgreSQL binaries (initdb, pg_ctl) are not on PATH")
def test_postgresql_stopped_while_a_training_runs_and_a_preannotation_job_streams(ray_session, tmp_path: Path) -> None:
    outcome = chaos.postgres_stopped(tmp_path, tasks=300, down_s=5, baseline=False)
    assert_nothing_lost(outcome)
    assert outcome.note.startswith("job succeeded, training succeeded"), outcome


@pytest.mark.ray
def test_a_worker_node_removed_under_a_server_a_preannotation_job_and_a_training(_ray_shutdown, tmp_path: Path) -> None:
    """On a Ray of its own (two worker nodes): the next test that needs the session's Ray starts it again."""
    outcome = chaos.worker_node_removed(tmp_path, tasks=300, baseline=False)
    assert_nothing_lost(outcome)
    assert outcome.note == "job succeeded, training succeeded; resumed from its checkpoint", outcome
