"""The SQL store's tables (SQLAlchemy 2), one module per part of the domain; every name is here too. Alembic
migrations in ``../migrations/`` build them."""

from annoray.platform.store.tables.base import *  # noqa: F403
from annoray.platform.store.tables.access import *  # noqa: F403
from annoray.platform.store.tables.labeling import *  # noqa: F403
from annoray.platform.store.tables.models import *  # noqa: F403
