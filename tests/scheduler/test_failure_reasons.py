"""A failed training is explained in words a user can act on, from the error Ray Train raised."""

from ray import exceptions as ray_exceptions
from ray.train.v2.api import exceptions as train_exceptions  # what production explains: its move must fail here

from annoray.scheduler.runner import explain_failure
from annoray.trainers.ray_train import TrainingCrashed


def worker_group_error(worker_error: Exception) -> Exception:
    return train_exceptions.WorkerGroupError("rank 0 failed", {0: worker_error})


def test_running_out_of_memory_says_to_give_the_trainer_more_memory() -> None:
    oom = ray_exceptions.OutOfMemoryError("Task was killed due to the node running low on memory.")
    reason = explain_failure(worker_group_error(oom), kind="ner", budget=2)
    assert reason.startswith("[E608] the training worker ran out of memory")
    assert "give the ner trainer more memory" in reason and "batch_size" in reason


def test_a_crash_names_the_workers_own_error_not_the_wrappers() -> None:
    reason = explain_failure(worker_group_error(ValueError("could not convert string to float: 'zero'")), kind="ner", budget=2)
    assert reason == "[E609] training crashed: ValueError: could not convert string to float: 'zero'"


def test_a_training_that_raised_is_explained_by_its_own_error() -> None:
    reason = explain_failure(TrainingCrashed("ValueError: could not convert string to float: 'zero'"), kind="ner", budget=2)
    assert reason == "[E609] training crashed: ValueError: could not convert string to float: 'zero'"


def test_a_worker_killed_too_often_names_the_budget() -> None:
    died = ray_exceptions.ActorDiedError()
    reason = explain_failure(worker_group_error(died), kind="assertion", budget=1)
    assert reason.startswith("[E607] the training worker was killed 2 times, more than the retry budget of 1")


def test_a_worker_group_that_cannot_start_or_a_dead_controller_is_a_lost_run_not_a_crash() -> None:
    from ray.train.v2._internal.exceptions import WorkerGroupStartupTimeoutError

    from annoray.scheduler.runner import run_lost

    timeout = train_exceptions.ControllerError(WorkerGroupStartupTimeoutError(num_workers=1))
    assert run_lost(timeout, start_timeout_s=5) == ("could not start: Ray did not place its worker group within 5 s "
                                                    "(something outside the scheduler holds the resources it was given)")
    assert run_lost(ray_exceptions.ActorDiedError(), start_timeout_s=5).startswith("lost its Train controller (ActorDiedError")
    assert run_lost(worker_group_error(ValueError("bad")), start_timeout_s=5) is None


def test_a_worker_whose_health_check_failed_because_it_died_names_the_budget() -> None:
    from ray.train.v2._internal.exceptions import WorkerHealthCheckFailedError

    failed = WorkerHealthCheckFailedError("A worker health check failed.", ray_exceptions.ActorDiedError())
    assert explain_failure(worker_group_error(failed), kind="ner", budget=0).startswith("[E607] the training worker was killed 1 times")
