"""The HTTP control plane (FastAPI) and the CLI, a client of it."""

from annoray.api.app import create_app

__all__ = ["create_app"]
