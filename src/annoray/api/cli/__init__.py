"""The ``annoray`` command: ``up`` and ``quickstart`` run the platform, the rest are clients of its HTTP API.

One Typer app (`app`); each command module adds its commands to it with Typer's decorators.
"""

from annoray.api.cli import access_commands, client_commands, label_studio_commands, platform_commands, setup_commands  # noqa: F401  (their commands join the app)
from annoray.api.cli.app import app

__all__ = ["app"]
