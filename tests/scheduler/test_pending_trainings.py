"""The scheduler's queue, kept between passes: after every refresh it is the whole read's queue, in the same order."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from annoray.platform.lifecycle import PENDING, JobStatus
from annoray.platform.store.repositories import TrainingJobRepository
from annoray.platform.store.tables import Project, TrainingJob, User
from annoray.scheduler.training_runs import PendingTrainings

pytestmark = pytest.mark.both_databases  # the kept queue against the database's own order


def whole_queue(session: Session) -> list[int]:
    jobs = session.scalars(select(TrainingJob).where(TrainingJob.status.in_(PENDING))).all()
    return [j.id for j in sorted(jobs, key=lambda j: (j.created_at, j.id))]


def test_the_kept_queue_is_the_whole_read_after_every_change(engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Jobs join (some created before others already queued, as a late commit), leave through the scheduler or
    without it, start and come back: each refresh leaves the kept queue equal to a whole read, and it reports jobs
    as joined only when they all went to the young end and nothing else changed."""
    monkeypatch.setattr(PendingTrainings, "CHECK_SECONDS", 0.0)  # ids checked on every refresh
    whole_reads, to_schedule = [], TrainingJobRepository.to_schedule

    def counted(self, *statuses, after=0, ids=None):
        whole_reads.extend([1] if not after and ids is None else [])
        return to_schedule(self, *statuses, after=after, ids=ids)

    monkeypatch.setattr(TrainingJobRepository, "to_schedule", counted)
    rng = random.Random(7)
    kept = PendingTrainings()
    with Session(engine) as session:
        user = User(username="olivia", token_hash="x" * 64)
        session.add(user)
        session.flush()
        project = Project(name="clinic", labeling_config="<View/>", created_by=user.id)
        session.add(project)
        session.commit()
        now, running, incremental, stopped_and_queued_again = datetime.now(UTC), set(), 0, 0
        for step in range(300):
            before = [w.holder_id for w in kept.order]
            pending = whole_queue(session)
            move = rng.random()
            if move < 0.5 or not pending:  # joins, now or (a late commit) earlier than some already queued
                now += timedelta(seconds=1)
                late = rng.random() < 0.15
                for _ in range(rng.randint(1, 3)):
                    session.add(TrainingJob(project_id=project.id, kind="ner", engine="spacy.ner.v1", status=JobStatus.QUEUED,
                                            resources={"cpus": 1}, created_at=now - timedelta(seconds=30 if late else 0)))
            elif move < 0.65:  # cancelled through the scheduler
                job_id = rng.choice(pending)
                session.execute(update(TrainingJob).where(TrainingJob.id == job_id).values(status=JobStatus.CANCELLED))
                kept.remove(job_id)
            elif move < 0.75:  # gone without it (a cancel while it was down)
                session.execute(update(TrainingJob).where(TrainingJob.id == rng.choice(pending)).values(status=JobStatus.CANCELLED))
            elif move < 0.9:  # started
                job_id = rng.choice(pending)
                session.execute(update(TrainingJob).where(TrainingJob.id == job_id).values(status=JobStatus.RUNNING))
                kept.remove(job_id)
                running.add(job_id)
            elif running:  # stopped running and queued again, among the old ones
                job_id = running.pop()
                stopped_and_queued_again += 1
                session.execute(update(TrainingJob).where(TrainingJob.id == job_id).values(status=JobStatus.QUEUED))
            session.commit()
            joined = kept.refresh(session, running)
            assert [w.holder_id for w in kept.order] == whole_queue(session), f"step {step}"
            assert [key[1] for key in kept.keys] == [w.holder_id for w in kept.order]
            if joined is not None:
                incremental += bool(joined)
                assert before + joined == [w.holder_id for w in kept.order], f"step {step}"
        assert incremental > 20  # the incremental path was taken, not only whole reads
        assert len(whole_reads) == 1, "read whole only at the start: a training that stopped is read alone"
        assert stopped_and_queued_again > 5
