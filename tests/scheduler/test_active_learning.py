"""Active learning as the scheduler's pass acts on it, without Ray: a trigger that arrives while a project trains waits
as one follow-up, queued once the project is idle, however many completions came meanwhile."""

from sqlalchemy import update

from annoray.platform.store.db import session_factory
from annoray.platform.store.tables import JobStatus, TrainingJob
from annoray.scheduler.active_learning import queue_due_trainings
from annoray.scheduler.ledger import SchedulerState

from ..conftest import Api
from .test_active_learning_on_ray import CONFIG, active_learning_jobs, drug_tasks


def test_triggers_while_a_project_trains_make_one_follow_up_queued_once_it_is_idle(api: Api) -> None:
    rows = drug_tasks()
    pid = api.admin.post("/api/projects", json={"name": "pharmacy", "labeling_config": CONFIG}).json()["id"]
    seeded = [{"data": {"text": t}, "annotations": [{"result": [r]}]} for t, r in rows[:12]]
    assert api.admin.post(f"/api/projects/{pid}/tasks/import", json=seeded).status_code == 201
    tids = api.admin.post(f"/api/projects/{pid}/tasks/import", json=[{"data": {"text": t}} for t, _ in rows[12:]]).json()["task_ids"]
    results = dict(zip(tids, [r for _, r in rows[12:]], strict=True))
    (manual,) = api.admin.post(f"/api/projects/{pid}/trainings", json={"params": {"epochs": 4}}).json()["jobs"]
    settings = {"enabled": True, "every": 10, "deploy": True, "gate": False, "params": {"epochs": 15, "batch_size": 4}}
    assert api.admin.put(f"/api/projects/{pid}/active-learning", json=settings).status_code == 200
    state = SchedulerState(api.settings, session_factory(api.engine, write=True), session_factory(api.engine))

    def submit(ids: list[int]) -> dict:
        for tid in ids:
            r = api.admin.post(f"/api/projects/{pid}/tasks/{tid}/completions", json={"result": [results[tid]], "status": "submitted"})
            assert r.status_code == 201, r.text
        queue_due_trainings(state, lambda resources: None)  # the scheduler's pass
        return api.admin.get(f"/api/projects/{pid}/active-learning").json()

    nine = submit(tids[:9])
    assert (nine["counter"], nine["pending"], active_learning_jobs(api, pid)) == (9, False, []), "nine are not ten: nothing is due"
    due = submit(tids[9:35])  # ten make one due, and 25 more arrive while the manual training is under way
    assert (due["pending"], due["counter"], active_learning_jobs(api, pid)) == (True, 5, []), "one follow-up, no pile"

    with state.sessions.begin() as session:  # the manual training ends
        session.execute(update(TrainingJob).where(TrainingJob.id == manual["id"]).values(status=JobStatus.SUCCEEDED))
    follow_up = submit([])
    (job,) = active_learning_jobs(api, pid)
    assert (follow_up["pending"], follow_up["last"]["jobs"], follow_up["counter"]) == (False, [job["id"]], 5)
    assert (job["deploy"], job["params"]["epochs"], job["params"]["batch_size"], job["status"]) == (True, 15, 4, "queued")
    again = submit(tids[35:45])  # due again while the follow-up is queued: it waits for that one to end
    assert (again["pending"], again["last"]["jobs"], len(active_learning_jobs(api, pid))) == (True, [job["id"]], 1)
