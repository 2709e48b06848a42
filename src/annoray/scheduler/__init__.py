"""The scheduler: launching Ray Train runs for training jobs, recording their progress, cancelling
them, and recovering after restarts. May import `platform`, `trainers` and `serve_apps`."""

from annoray.scheduler.client import SchedulerClient
from annoray.scheduler.trainings import TrainingRequest, request_trainings

__all__ = ["SchedulerClient", "TrainingRequest", "request_trainings"]
