"""Request and response bodies of the HTTP API, one module per part of it; every name is here too."""

from annoray.api.schemas.common import *  # noqa: F403
from annoray.api.schemas.access import *  # noqa: F403
from annoray.api.schemas.projects import *  # noqa: F403
from annoray.api.schemas.trainings import *  # noqa: F403
from annoray.api.schemas.serving import *  # noqa: F403
