"""The lifecycle's moves, enforced by the store's one conditional status update: walk the whole table."""

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from annoray.platform.lifecycle import ENDED, JOB_MOVES, SERVER_MOVES, JobStatus, ServerStatus
from annoray.platform.store.repositories import PreannotationJobRepository, ServerRepository, TrainingJobRepository
from annoray.platform.store.tables import PreannotationJob, PreannotationServer, Project, TrainingJob, User


@pytest.fixture
def session(engine) -> Iterator[Session]:
    with Session(engine) as session:
        user = User(username="olivia", token_hash="x" * 64)
        session.add(user)
        session.flush()
        session.add(Project(name="clinic", labeling_config="<View/>", created_by=user.id))
        session.flush()
        yield session


def job_rows(session: Session):
    project_id = session.query(Project.id).scalar()
    return [
        (TrainingJobRepository, lambda status: TrainingJob(project_id=project_id, kind="ner", engine="spacy.ner.v1", status=status)),
        (PreannotationJobRepository, lambda status: PreannotationJob(project_id=project_id, status=status)),
    ]


@pytest.mark.parametrize("current", list(JobStatus), ids=lambda s: s.value)
def test_a_job_moves_only_where_the_lifecycle_allows(session: Session, current: JobStatus) -> None:
    """From ``current`` to every status, for trainings and pre-annotation jobs alike (one row per attempt)."""
    for repository, row in job_rows(session):
        for to in JobStatus:
            job = row(current)
            session.add(job)
            session.flush()
            moved = repository(session).transition(job.id, list(JobStatus), to)
            session.expire_all()
            assert moved == (to in JOB_MOVES[current]), f"{repository.__name__}: {current.value} -> {to.value}"
            assert session.get(type(job), job.id).status is (to if moved else current)


@pytest.mark.parametrize("current", list(ServerStatus), ids=lambda s: s.value)
def test_a_server_moves_only_where_the_lifecycle_allows(session: Session, current: ServerStatus) -> None:
    for to in ServerStatus:
        server = PreannotationServer(name=f"s-{current.value}-{to.value}", status=current)
        session.add(server)
        session.flush()
        moved = ServerRepository(session).transition(server.id, list(ServerStatus), to)
        session.expire_all()
        assert moved == (to in SERVER_MOVES[current]), f"{current.value} -> {to.value}"
        assert session.get(PreannotationServer, server.id).status is (to if moved else current)


def test_nothing_leaves_an_ended_job_and_a_move_outside_the_given_statuses_is_refused(session: Session) -> None:
    assert all(not JOB_MOVES[status] for status in ENDED)
    (repository, row), _ = job_rows(session)
    job = row(JobStatus.RUNNING)
    session.add(job)
    session.flush()
    assert not repository(session).transition(job.id, [JobStatus.QUEUED, JobStatus.WAITING], JobStatus.FAILED)
    assert repository(session).transition(job.id, [JobStatus.RUNNING], JobStatus.FAILED)
