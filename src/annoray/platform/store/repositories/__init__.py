"""Queries and writes of the store; repositories only flush, the caller owns the transaction."""

from annoray.platform.store.repositories.access import (
    ApiTokenRepository, AuditRepository, LicenseRepository, RuleRepository, TeamRepository, WebSessionRepository,
)
from annoray.platform.store.repositories.base import aware
from annoray.platform.store.repositories.documents import DocumentRepository
from annoray.platform.store.repositories.jobs import (
    SERVER, TRAINING, PreannotationJobRepository, ServerRepository, TrainingConfigRepository, TrainingJobRepository,
    TrainingLogRepository,
)
from annoray.platform.store.repositories.labeling import (
    CompletionRepository, ModelRepository, PredictionRepository, ProjectRepository, TaskRepository, UserRepository,
)

__all__ = [
    "SERVER", "TRAINING", "ApiTokenRepository", "AuditRepository", "CompletionRepository", "DocumentRepository", "LicenseRepository", "ModelRepository", "PredictionRepository",
    "PreannotationJobRepository", "ProjectRepository", "RuleRepository", "ServerRepository", "TaskRepository",
    "TeamRepository", "TrainingConfigRepository", "TrainingJobRepository", "TrainingLogRepository", "UserRepository", "WebSessionRepository",
    "aware",
]
