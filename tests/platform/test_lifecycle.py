"""The lifecycle's moves, enforced by the store's one conditional status update: walk the whole table."""

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from annoray.platform.lifecycle import ENDED, JOB_MOVES, SERVER_MOVES, JobStatus, ServerStatus
from annoray.platform.models.training_jobs import cancel_job, record_epoch
from annoray.platform.store.repositories import PreannotationJobRepository, ServerRepository, TrainingJobRepository, TrainingLogRepository
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


def test_an_epoch_is_logged_once_whoever_reports_it_progress_never_goes_back_and_a_cancelled_job_takes_none(engine) -> None:
    """The controller's report and the run's result carry the same epochs (the result's with tuples, as Ray unpickles
    them); reports come out of order across scheduler restarts."""
    sessions = sessionmaker(engine)
    with sessions.begin() as session:
        user = User(username="olivia", token_hash="x" * 64)
        session.add(user)
        session.flush()
        project = Project(name="clinic", labeling_config="<View/>", created_by=user.id)
        session.add(project)
        session.flush()
        job = TrainingJob(project_id=project.id, kind="ner", engine="spacy.ner.v1", status=JobStatus.RUNNING)
        session.add(job)
        session.flush()
        job_id = job.id

    def report(epoch: int) -> dict:
        return {"epoch": epoch, "epochs": 3, "loss": 1.0 / epoch, "metrics": {"labels": ("C",)}}

    for epoch in (1, 3, 2):
        record_epoch(sessions, job_id, report(epoch), f"epoch {epoch}/3")
    for epoch in (1, 2, 3):  # the result's copy, after the run ended
        record_epoch(sessions, job_id, report(epoch), f"epoch {epoch}/3")
    with sessions() as session:
        logged = [line.data["epoch"] for line in TrainingLogRepository(session).lines(job_id, event="epoch")]
        assert logged == [1, 3, 2] and session.get(TrainingJob, job_id).progress["epoch"] == 3

    assert cancel_job(sessions, job_id, "olivia")
    record_epoch(sessions, job_id, report(4) | {"epochs": 4}, "epoch 4/4")
    with sessions() as session:
        assert len(TrainingLogRepository(session).lines(job_id, event="epoch")) == 3
