"""The scheduler: launching Ray Train runs for training jobs, recording their progress, cancelling
them, and recovering after restarts. May import `platform`, `trainers` and `serve_apps`.

The API sees this face of it and nothing else (``tests/test_layering.py``): the client of the scheduler actor, how to
start and stop it, and the request-side services that check a request against the cluster and queue its job."""

from annoray.scheduler.client import SchedulerClient
from annoray.scheduler.documents import Upload, page_image, split_uploads, store_documents
from annoray.scheduler.imports import import_model
from annoray.scheduler.servers import (
    ServerRequest, deploy_for_label_studio, deploy_server, server_models, start_preannotation,
)
from annoray.scheduler.start import start_scheduler, stop_scheduler
from annoray.scheduler.trainings import TrainingRequest, add_training_config, engines_here, queue_trainings

__all__ = [
    "SchedulerClient", "ServerRequest", "TrainingRequest", "Upload", "add_training_config", "deploy_for_label_studio",
    "deploy_server", "engines_here", "import_model", "page_image", "queue_trainings", "server_models",
    "split_uploads", "start_preannotation", "start_scheduler", "stop_scheduler", "store_documents",
]
