"""Starting and stopping the scheduler: the one module that knows both the actor's class and how Ray runs it, so
that ``factory.py`` (every Ray option) never imports the scheduler it starts."""

from __future__ import annotations

from typing import Any

from annoray.platform.settings import Settings
from annoray.scheduler.factory import scheduler_actor, stop_scheduler
from annoray.scheduler.scheduler import Scheduler

__all__ = ["start_scheduler", "stop_scheduler"]


def start_scheduler(settings: Settings) -> Any:
    """The named, detached scheduler actor: reconnects to a running one or starts it; returns its handle."""
    return scheduler_actor(Scheduler, settings)
