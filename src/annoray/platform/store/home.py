"""First start of an installation: the home folder, the schema, and the admin token."""

from __future__ import annotations

import os

from sqlalchemy import Engine, select

from annoray.platform.settings import Settings
from annoray.platform.store.db import create_db_engine, migrate, schema_lock, session_factory
from annoray.platform.store.repositories import UserRepository
from annoray.platform.store.tables import User
from annoray.platform.store.tokens import new_token

ADMIN_USERNAME = "admin"


def init_home(settings: Settings, engine: Engine | None = None) -> Engine:
    """Create the home folder (0700) and schema (a SQLite file: 0600, it holds licence secrets); on first start create
    the admin and write its token (0600). A home made before keeps its data and gets the same modes."""
    settings.home.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.home, 0o700)
    engine = engine or create_db_engine(settings.resolved_database_url, settings.api.db_connections)
    with schema_lock(engine):
        migrate(engine)
        if engine.dialect.name == "sqlite" and engine.url.database and engine.url.database != ":memory:":
            os.chmod(engine.url.database, 0o600)
        with session_factory(engine, write=True).begin() as session:
            if session.scalar(select(User.id).where(User.is_admin.is_(True)).limit(1)) is None:
                token = new_token()
                UserRepository(session).add(ADMIN_USERNAME, token, is_admin=True)
                path = settings.admin_token_path
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(token + "\n")
                os.chmod(path, 0o600)
    return engine
