"""The loop through HTTP on a real Ray: completions arrive, active learning retrains, the new model is deployed and served."""

import pytest

from ..conftest import DRUGS, Api, scheduler_settings, wait_for, wait_for_trainings

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


@pytest.fixture
def training_settings(tmp_path):
    """The loop's projects are small by design: the quality floor of deploys (tested on its own) is off here."""
    settings = scheduler_settings(tmp_path / "home")
    return settings.model_copy(update={"deploy": settings.deploy.model_copy(update={"min_held_out": 1, "floor": 0.0})})


def drug_model(api: Api, pid: int) -> str:
    config = api.admin.get(f"/api/projects/{pid}").json()["labeling_config"]
    return config.split('model="')[1].split('"')[0]


def test_completions_trigger_one_training_and_one_follow_up_whose_model_is_deployed_and_served(training_api: Api) -> None:
    api = training_api
    rows = drug_tasks()
    pid = api.admin.post("/api/projects", json={"name": "pharmacy", "labeling_config": CONFIG}).json()["id"]
    seeded = [{"data": {"text": t}, "annotations": [{"result": [r]}]} for t, r in rows[:12]]
    assert api.admin.post(f"/api/projects/{pid}/tasks/import", json=seeded).status_code == 201
    tids = api.admin.post(f"/api/projects/{pid}/tasks/import", json=[{"data": {"text": t}} for t, _ in rows[12:]]).json()["task_ids"]
    results = dict(zip(tids, [r for _, r in rows[12:]], strict=True))

    manual = api.admin.post(f"/api/projects/{pid}/trainings", json={"params": {"epochs": 4}, "deploy": True}).json()["jobs"]
    (done,), _ = wait_for_trainings(api.admin, [j["id"] for j in manual])
    assert done["status"] == "succeeded", done
    assert done["deployment"]["decision"] == "deployed" and drug_model(api, pid) == "ner_pharmacy_annotation_manual"
    server = api.admin.post("/api/servers", json={"project_id": pid, "name": "pharmacy-server"}).json()
    wait_for(api, f"/api/servers/{server['id']}", lambda s: s["status"] == "running", timeout=300)

    settings = {"enabled": True, "every": 10, "deploy": True, "gate": False, "params": {"epochs": 15, "batch_size": 4}}
    assert api.admin.put(f"/api/projects/{pid}/active-learning", json=settings).status_code == 200

    def submit(tid: int) -> None:
        r = api.admin.post(f"/api/projects/{pid}/tasks/{tid}/completions", json={"result": [results[tid]], "status": "submitted"})
        assert r.status_code == 201, r.text

    for tid in tids[:9]:
        submit(tid)
    nine = api.admin.get(f"/api/projects/{pid}/active-learning").json()
    assert (nine["counter"], nine["pending"]) == (9, False), "nine eligible completions are not ten: nothing is due"
    assert active_learning_jobs(api, pid) == []
    submit(tids[9])
    first = wait_for(api, f"/api/projects/{pid}/active-learning", lambda s: s["last"].get("jobs"), timeout=60)["last"]["jobs"]
    assert len(first) == 1 and [j["id"] for j in active_learning_jobs(api, pid)] == first

    for tid in tids[10:35]:
        submit(tid)
    running = api.admin.get(f"/api/trainings/{first[0]}").json()
    assert running["status"] in ("queued", "waiting", "running"), "the 25 completions were meant to arrive while it ran"
    assert api.admin.get(f"/api/projects/{pid}/active-learning").json()["pending"] is True

    wait_for(api, f"/api/projects/{pid}/active-learning", lambda s: not s["pending"] and s["last"]["jobs"] != first, timeout=300)
    jobs = active_learning_jobs(api, pid)
    ended, _ = wait_for_trainings(api.admin, [j["id"] for j in jobs])
    state = api.admin.get(f"/api/projects/{pid}/active-learning").json()
    assert (state["pending"], state["last"]["jobs"]) == (False, [jobs[1]["id"]]), "nothing more is due: no pile can follow"
    jobs = active_learning_jobs(api, pid)
    assert len(jobs) == 2, f"25 completions while it ran make exactly one follow-up: {[(j['id'], j['status']) for j in jobs]}"
    assert [j["status"] for j in ended] == ["succeeded", "succeeded"], ended
    assert api.admin.get(f"/api/projects/{pid}/active-learning").json()["counter"] == 5
    assert jobs[1]["data"]["tasks_selected"] == 12 + 35 and jobs[0]["data"]["tasks_selected"] >= 12 + 10

    follow_up = jobs[1]
    new = follow_up["model"]
    assert new == "ner_pharmacy_annotation_active_learning_v2" and drug_model(api, pid) == new
    deployment = follow_up["deployment"]
    assert (deployment["decision"], deployment["current"], deployment["servers"]) == ("deployed", jobs[0]["model"], [server["id"]])
    assert deployment["score"] is not None and deployment["current_score"] is not None, "the history shows both scores"
    assert "deploy: deployed" in api.admin.get(f"/api/trainings/{follow_up['id']}/log").text

    served = wait_for(api, f"/api/servers/{server['id']}", lambda s: s["deployed_models"] == [new] and s["status"] == "running" and not s["reason"],
                      timeout=300)
    assert [m["name"] for m in served["models"]] == [new]
    job = api.admin.post(f"/api/projects/{pid}/preannotations", json={"server_id": server["id"], "task_ids": [tids[-1]]}).json()
    wait_for(api, f"/api/preannotations/{job['id']}", lambda j: j["status"] == "succeeded", timeout=300)
    (prediction,) = api.admin.get(f"/api/projects/{pid}/tasks/{tids[-1]}/predictions").json()
    assert prediction["model_version"] == f"pharmacy-server:{new}", "the server serves the new model"


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
