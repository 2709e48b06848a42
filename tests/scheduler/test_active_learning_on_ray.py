"""Active learning through HTTP on a real Ray: a training made due while the scheduler was down is queued once it is back.

The loop (completions retrain, the new model is deployed and served) is the quickstart's (`tests/test_readme.py`) and
Label Studio's (`tests/label_studio`); one follow-up for the completions that arrive while a project trains is
`test_active_learning.py`'s."""

import pytest

from ..conftest import DRUGS, Api, wait_for, wait_for_trainings

import ray  # noqa: E402  (a dependency of annoray: never skipped)
pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(900)]

CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Labels name="label" toName="text"><Label value="Drug"/></Labels>
</View>"""
TEMPLATES = ["The patient takes {} daily.", "She was given {} after surgery.", "Continue {} as before.",
             "He stopped {} last week.", "Start {} tomorrow morning.", "We increased {} to twice a day.",
             "The nurse brought {} at noon.", "Her mother also uses {} at home."]


def drug_tasks() -> list[tuple[str, dict]]:
    """(text, the completion's result) for 64 sentences, each naming one drug."""
    out = []
    for template in TEMPLATES:
        for drug in DRUGS:
            text = template.format(drug)
            start = text.index(drug)
            out.append((text, {"from_name": "label", "to_name": "text", "type": "labels",
                               "value": {"start": start, "end": start + len(drug), "text": drug, "labels": ["Drug"]}}))
    return out


def active_learning_jobs(api: Api, pid: int) -> list[dict]:
    return sorted((j for j in api.admin.get(f"/api/projects/{pid}/trainings").json() if j["source"] == "active_learning"),
                  key=lambda j: j["id"])


def test_a_due_training_survives_a_scheduler_that_was_down_and_is_queued_once_it_is_back(training_api: Api) -> None:
    from annoray.scheduler.start import start_scheduler, stop_scheduler

    api = training_api
    rows = drug_tasks()[:20]
    pid = api.admin.post("/api/projects", json={"name": "restart", "labeling_config": CONFIG}).json()["id"]
    seeded = [{"data": {"text": t}, "annotations": [{"result": [r]}]} for t, r in rows[:10]]
    api.admin.post(f"/api/projects/{pid}/tasks/import", json=seeded)
    tids = api.admin.post(f"/api/projects/{pid}/tasks/import", json=[{"data": {"text": t}} for t, _ in rows[10:]]).json()["task_ids"]
    api.admin.put(f"/api/projects/{pid}/active-learning", json={"enabled": True, "every": 3, "params": {"epochs": 2}})
    stop_scheduler(api.settings)
    for tid, (_, result) in zip(tids[:4], rows[10:14], strict=True):
        api.admin.post(f"/api/projects/{pid}/tasks/{tid}/completions", json={"result": [result], "status": "submitted"})
    down = api.admin.get(f"/api/projects/{pid}/active-learning").json()
    assert (down["pending"], down["counter"], active_learning_jobs(api, pid)) == (True, 1, []), down
    start_scheduler(api.settings)
    back = wait_for(api, f"/api/projects/{pid}/active-learning", lambda s: s["last"].get("jobs"), timeout=120)
    assert back["pending"] is False and back["counter"] == 1
    (job,) = active_learning_jobs(api, pid)
    assert job["id"] == back["last"]["jobs"][0] and job["deploy"] is False and job["params"]["epochs"] == 2
    (ended,), _ = wait_for_trainings(api.admin, [job["id"]])
    assert ended["status"] == "succeeded" and ended["model"] == "ner_restart_annotation_active_learning"
