"""The store on SQLite and PostgreSQL alike: schema from migrations, paging, immutability."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from annoray.platform.store.db import migrate, session_factory
from annoray.platform.store.repositories import PredictionRepository, TaskRepository
from annoray.platform.store.tables import Base, Prediction, Project, User

pytestmark = pytest.mark.both_databases  # the store itself


def test_migrations_build_exactly_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_migrating_a_migrated_store_again_changes_nothing(engine: Engine) -> None:
    from sqlalchemy import inspect, text

    def schema() -> tuple[str, dict[str, list[str]]]:
        inspector = inspect(engine)
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        return version, {t: sorted(c["name"] for c in inspector.get_columns(t)) for t in inspector.get_table_names()}

    before = schema()
    with session_factory(engine).begin() as s:
        s.add(User(id=7, username="kept", token_hash="k" * 64))
    migrate(engine)
    assert schema() == before and "training_jobs" in before[1]
    with session_factory(engine).begin() as s:
        assert s.get(User, 7).username == "kept"


@pytest.fixture
def project(engine: Engine) -> int:
    with session_factory(engine).begin() as s:
        s.add(User(id=100, username="u", token_hash="x" * 64))
        s.flush()
        p = Project(name="p", labeling_config="<View/>", created_by=100)
        s.add(p)
        s.flush()
        return p.id


def test_tasks_insert_in_order_and_page_by_keyset_and_tag(engine: Engine, project: int) -> None:
    sessions = session_factory(engine)
    rows = [{"data": {"text": f"t{i}"}, "tags": ["train"] if i % 3 == 0 else ["test"]} for i in range(25)]
    with sessions.begin() as s:
        ids = TaskRepository(s).add_many(project, rows)
    assert ids == sorted(ids) and len(ids) == 25
    with sessions() as s:
        repo = TaskRepository(s)
        assert [t.data["text"] for t in repo.after(project, tags=None, after_id=ids[9], limit=3)] == ["t10", "t11", "t12"]
        assert repo.count(project, tags=["train"]) == 9
        assert repo.count(project, tags=["train", "test"]) == 25
        assert [t.id for t in repo.page(project, tags=["train"], offset=3, limit=2)] == [ids[9], ids[12]]


def test_predictions_cannot_be_changed(engine: Engine, project: int) -> None:
    sessions = session_factory(engine)
    with sessions.begin() as s:
        (tid,) = TaskRepository(s).add_many(project, [{"data": {"text": "a"}, "tags": []}])
        PredictionRepository(s).add_many([{"project_id": project, "task_id": tid, "result": [], "model_version": "m"}])
    with pytest.raises(ValueError, match="immutable"), sessions.begin() as s:
        prediction = s.query(Prediction).one()
        prediction.score = 0.5
        s.flush()
    with sessions() as s:
        assert s.query(Prediction).one().score is None


def test_migration_0006_renames_columns_and_moves_the_node_out_of_resources_keeping_every_value(database_url: str) -> None:
    import json

    from sqlalchemy import text

    from annoray.platform.store.db import create_db_engine

    engine = create_db_engine(database_url)
    migrate(engine, "0005")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (id, username, token_hash, is_admin, created_at) "
                          "VALUES (1, 'u', :h, false, CURRENT_TIMESTAMP)"), {"h": "x" * 64})
        conn.execute(text("INSERT INTO projects (id, name, labeling_config, config_version, language, model_type, created_by, "
                          "created_at, al_enabled, al_every, al_deploy, al_counter, al_pending, al_params, al_last, deploy_gate, "
                          "deploy_metric) VALUES (1, 'p', '<View/>', 1, 'en', 'open_source', 1, CURRENT_TIMESTAMP, true, 7, "
                          "true, 3, true, '{}', '{}', true, 'micro.f1')"))
        conn.execute(text("INSERT INTO training_jobs (id, project_id, kind, engine, source, status, params, data_summary, warnings, "
                          "progress, metrics, resources, scopes, model_name, selection, deploy, deployment, attempts, created_at) "
                          "VALUES (1, 1, 'ner', 'spacy.ner.v1', 'manual', 'succeeded', '{}', '{}', '[]', '{}', '{}', :r, '[]', "
                          "'ner_p', '{}', false, '{}', 0, CURRENT_TIMESTAMP)"),
                     {"r": '{"cpus": 1, "memory_gb": 2, "gpus": 0, "node_id": "n1"}'})
    migrate(engine)
    with engine.connect() as conn:
        project = conn.execute(text("SELECT active_learning_enabled, active_learning_every, active_learning_counter "
                                    "FROM projects")).one()
        job = conn.execute(text("SELECT model, node_id, resources FROM training_jobs")).one()
    assert tuple(project) == (True, 7, 3)
    resources = job[2] if isinstance(job[2], dict) else json.loads(job[2])  # JSONB comes back parsed, SQLite's JSON text
    assert (job[0], job[1], resources) == ("ner_p", "n1", {"cpus": 1, "memory_gb": 2, "gpus": 0})
    engine.dispose()


def test_a_project_locked_for_update_comes_with_its_team(engine: Engine, project: int) -> None:
    """A deploy locks its project (``FOR UPDATE``); the team read with every project must not make that an outer join,
    which PostgreSQL refuses to lock."""
    from annoray.platform.store.tables import Team

    with session_factory(engine).begin() as s:
        team = Team(name="radiology")
        s.add(team)
        s.flush()
        s.get(Project, project).team_id = team.id
    with session_factory(engine).begin() as s:
        locked = s.get(Project, project, with_for_update=True)
    assert locked.team.name == "radiology"


def test_a_read_only_session_reads_and_refuses_every_write(engine: Engine, project: int) -> None:
    """A request's session (``read_only``) reads; a change flushed through it, or an UPDATE sent through it, raises and
    leaves the store as it was: a route that wrote through it would fail its tests, not hold a write lock."""
    from sqlalchemy import update

    from annoray.platform.store.db import WriteThroughRead

    with session_factory(engine, read_only=True)() as session:
        found = session.get(Project, project)
        assert found is not None
        found.name = "renamed"
        with pytest.raises(WriteThroughRead):
            session.flush()
        session.expire_all()
        with pytest.raises(WriteThroughRead):
            session.execute(update(Project).where(Project.id == project).values(name="renamed"))
    with session_factory(engine)() as session:
        assert session.get(Project, project).name != "renamed"


def test_sqlite_writers_take_turns_and_every_ending_gives_the_turn_back(tmp_path) -> None:
    """This process's SQLite write transactions queue on a lock held only while one runs; a commit, a rollback, an
    error and a session closed mid-transaction each give the turn back (a leaked turn would stall every writer)."""
    from sqlalchemy import text

    from annoray.platform.store.db import WRITERS, create_db_engine

    engine = create_db_engine(f"sqlite:///{tmp_path / 'turns.db'}")
    writes, turn = session_factory(engine, write=True), WRITERS[engine].lock
    with writes.begin() as session:
        session.execute(text("CREATE TABLE t (x INTEGER)"))
        assert turn.locked(), "held while the transaction runs"
    assert not turn.locked()
    with pytest.raises(ZeroDivisionError), writes.begin() as session:
        session.execute(text("INSERT INTO t VALUES (1)"))
        1 / 0
    assert not turn.locked()
    session = writes()
    session.execute(text("INSERT INTO t VALUES (2)"))
    session.close()  # never committed
    assert not turn.locked()
    with session_factory(engine)() as reading:
        reading.execute(text("SELECT count(*) FROM t"))
        assert not turn.locked(), "a read takes no turn"
    engine.dispose()
