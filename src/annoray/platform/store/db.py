"""Engine factory for SQLite and PostgreSQL, sessions, and schema migrations."""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE_OPTION = "annoray_write"


def create_db_engine(url: str, connections: int = 30) -> Engine:
    """One engine per URL, tuned by dialect: SQLite in WAL mode with a busy timeout, PostgreSQL pooled; either opens
    at most ``connections`` connections (a caller that runs N threads, each holding up to two, passes 2N or more)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            pool_size=min(connections, 10), max_overflow=max(0, connections - 10),
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite defers BEGIN until the first write, so reads before it see no snapshot;
        # with the driver in autocommit, SQLAlchemy's "begin" emits BEGIN itself (SQLAlchemy's recipe).
        # A write session begins IMMEDIATE: in WAL mode a read transaction cannot be upgraded to a
        # write once another connection has committed, and that failure skips the busy timeout.
        writers = WRITERS[engine] = WriterQueue()
        event.listen(engine, "begin", writers.begin)
        event.listen(engine, "commit", writers.end)
        event.listen(engine, "rollback", writers.end)
        event.listen(engine.pool, "checkin", lambda _dbapi, record: writers.give_back(record.info))
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = str(parsed.set(drivername="postgresql+psycopg"))
    return create_engine(url, pool_pre_ping=True, pool_size=min(connections, 10), max_overflow=max(0, connections - 10))


class WriterQueue:
    """SQLite has one writer. This process's write transactions wait their turn on a lock, each held only while its
    short transaction runs, instead of polling the database file: SQLite's busy handler sleeps up to 100 ms between
    tries, so under many writers some waited seconds behind later ones. Other processes (the scheduler, OCR tasks)
    still meet the busy timeout. A turn not had within the busy timeout is taken anyway (SQLite then decides), and a
    connection back in the pool gives its turn back however its transaction ended."""

    KEY = "annoray_writer"

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def begin(self, conn: Connection) -> None:
        if not conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN")
            return
        if self.lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            conn.info[self.KEY] = True
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            self.end(conn)
            raise

    def end(self, conn: Connection) -> None:
        self.give_back(conn.info)

    def give_back(self, info: dict) -> None:
        if info.pop(self.KEY, False):
            self.lock.release()


WRITERS: weakref.WeakKeyDictionary[Engine, WriterQueue] = weakref.WeakKeyDictionary()
"""Each SQLite engine's queue of writers."""


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    dbapi_conn.isolation_level = None  # autocommit at the driver; SQLAlchemy's "begin" hook opens transactions
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def session_factory(engine: Engine, *, write: bool = False, read_only: bool = False) -> sessionmaker[Session]:
    """Sessions; ``write`` ones take SQLite's write lock when they begin, so reading then writing never fails;
    ``read_only`` ones refuse to write (a request's: its writes are short transactions of their own)."""
    return sessionmaker(engine.execution_options(**{WRITE_OPTION: True}) if write else engine, expire_on_commit=False,
                        class_=ReadOnlySession if read_only else Session)


class WriteThroughRead(RuntimeError):
    """A write sent through a read-only session: a bug of the code that sent it."""


class ReadOnlySession(Session):
    """A session that reads and never writes: a flush with changes, or an INSERT, UPDATE or DELETE, raises.

    Every request reads through one; what it changes is a short transaction of a service function (``writes.begin()``),
    so no request holds a write lock while it authenticates, checks or waits."""

    def flush(self, objects: object = None) -> None:
        if self.new or self.dirty or self.deleted:
            raise WriteThroughRead(f"a read-only session was asked to write {[*self.new, *self.dirty, *self.deleted][:3]}")
        super().flush(objects)  # type: ignore[arg-type]


@event.listens_for(ReadOnlySession, "do_orm_execute")
def _refuse_writes(state) -> None:  # type: ignore[no-untyped-def]
    if state.is_insert or state.is_update or state.is_delete:
        raise WriteThroughRead(f"a read-only session was asked to run {state.statement}")


def _alembic_config(url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


SCHEMA_LOCK = 0x616E6E6F  # "anno": the PostgreSQL advisory lock every process takes to migrate and bootstrap


@contextmanager
def schema_lock(engine: Engine) -> Iterator[None]:
    """Held while the schema is migrated and the first admin made, so API processes starting together on one
    PostgreSQL run the migrations once (the others wait, then find the schema at head). SQLite serves one process."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK})
            conn.commit()


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to the newest migration, or to ``revision`` (idempotent)."""
    from alembic import command

    cfg = _alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


@functools.cache
def head_revision() -> str:
    """The newest migration this annoray knows (read once from the migration scripts)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config("sqlite://")).get_current_head() or ""


def schema_revision(engine: Engine) -> tuple[str | None, str]:
    """The schema's migration and the newest one this annoray knows."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision(), head_revision()
