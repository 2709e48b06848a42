"""Teams through HTTP: admins make teams with quotas, borrowing limits and seats and put projects in them; every user
sees each team's usage and what of it is borrowed; bad or forbidden requests are refused and change nothing."""

from sqlalchemy.orm import Session

from annoray.platform.lifecycle import JobStatus
from annoray.platform.store.tables import TrainingJob

from ..conftest import Api, german_project, refused

TEAM = {"name": "clinical", "quota": {"cpus": 16, "memory_gb": 64, "gpus": 0}, "borrowing_limit": {"cpus": 8, "memory_gb": 32},
        "seats": {"healthcare:training": 2}}


def test_an_admin_makes_a_team_puts_a_project_in_it_and_every_user_sees_its_usage_and_borrowing(api: Api) -> None:
    created = api.admin.post("/api/teams", json=TEAM)
    assert created.status_code == 201, created.text
    assert created.json() == {"name": "clinical", "quota": {"cpus": 16, "memory_gb": 64, "gpus": 0},
                              "borrowing_limit": {"cpus": 8, "memory_gb": 32, "gpus": 0}, "seats": {"healthcare:training": 2},
                              "projects": [], "usage": {"cpus": 0, "memory_gb": 0, "gpus": 0},
                              "borrowed": {"cpus": 0, "memory_gb": 0, "gpus": 0}}
    pid = german_project(api.admin)
    other = german_project(api.admin, "Andere")
    moved = api.admin.patch(f"/api/projects/{pid}", json={"team": "clinical", "priority": 5})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["team"], moved.json()["priority"]) == ("clinical", 5)
    assert api.admin.get(f"/api/projects/{other}").json()["team"] == "default"

    with Session(api.engine) as session, session.begin():  # two trainings running, as the scheduler leaves them
        for project, cpus in ((pid, 20), (other, 4)):
            session.add(TrainingJob(project_id=project, kind="ner", engine="spacy.ner.v1", status=JobStatus.RUNNING,
                                    resources={"cpus": cpus, "memory_gb": cpus * 2, "gpus": 0}))
    seen = {t["name"]: t for t in api.user("vera").get("/api/teams").json()}
    assert list(seen) == ["clinical", "default"]
    assert (seen["clinical"]["projects"], seen["clinical"]["usage"]["cpus"], seen["clinical"]["borrowed"]["cpus"]) == ([pid], 20, 4)
    assert (seen["default"]["projects"], seen["default"]["usage"]["cpus"], seen["default"]["quota"]["cpus"]) == ([other], 4, 0)
    assert seen["default"]["borrowed"]["cpus"] == 4, "the default team has no quota: all it holds is borrowed"

    lifted = api.admin.patch("/api/teams/clinical", json={"borrowing_limit": None, "quota": {"cpus": 24, "memory_gb": 96}})
    assert lifted.status_code == 200, lifted.text
    assert (lifted.json()["borrowing_limit"], lifted.json()["borrowed"]["cpus"], lifted.json()["seats"]) == (
        None, 0, {"healthcare:training": 2}), "what the request leaves out stays"

    assert api.admin.delete("/api/teams/clinical").status_code == 204
    assert api.admin.get(f"/api/projects/{pid}").json()["team"] == "default", "its projects go back to the default team"
    assert [t["name"] for t in api.admin.get("/api/teams").json()] == ["default"]


def test_a_taken_or_reserved_name_an_unknown_team_a_bad_quota_and_a_non_admin_are_refused_changing_nothing(api: Api) -> None:
    assert api.admin.post("/api/teams", json=TEAM).status_code == 201
    pid = german_project(api.admin)
    assert refused(api, lambda: api.admin.post("/api/teams", json=TEAM), 409)["detail"].startswith("[E518]")
    assert refused(api, lambda: api.admin.post("/api/teams", json=TEAM | {"name": "default"}), 409)["detail"].startswith("[E519]")
    refused(api, lambda: api.admin.post("/api/teams", json=TEAM | {"name": "x", "quota": {"cpus": -1}}), 422)
    refused(api, lambda: api.admin.post("/api/teams", json=TEAM | {"name": "y", "seats": {"ocr:*": -2}}), 422)
    refused(api, lambda: api.admin.post("/api/teams", json=TEAM | {"name": "a b"}), 422)
    refused(api, lambda: api.admin.patch("/api/teams/nobody", json={"quota": {"cpus": 1}}), 404)
    refused(api, lambda: api.admin.patch(f"/api/projects/{pid}", json={"team": "nobody"}), 404)
    refused(api, lambda: api.admin.patch(f"/api/projects/{pid}", json={"owner": "x"}), 422)
    vera = api.user("vera")
    refused(api, lambda: vera.post("/api/teams", json=TEAM | {"name": "mine"}), 403)
    refused(api, lambda: vera.patch(f"/api/projects/{pid}", json={"team": "clinical"}), 403)
    refused(api, lambda: vera.delete("/api/teams/clinical"), 403)


def test_a_training_takes_its_projects_priority_unless_it_asks_and_an_owner_asks_no_higher_than_the_setting(api: Api, clinic) -> None:
    pid, owner = clinic
    assert api.admin.post("/api/teams", json=TEAM).status_code == 201
    assert api.admin.patch(f"/api/projects/{pid}", json={"team": "clinical", "priority": 7}).status_code == 200
    (job,) = owner.post(f"/api/projects/{pid}/trainings", json={"kinds": ["ner"]}).json()["jobs"]
    seen = owner.get(f"/api/trainings/{job['id']}").json()
    assert (seen["priority"], seen["team"], seen["preemptions"]) == (7, "clinical", 0)
    limit = api.settings.scheduler.max_priority
    body = refused(api, lambda: owner.post(f"/api/projects/{pid}/trainings", json={"kinds": ["assertion"], "priority": limit + 1}), 422)
    assert body["detail"] == "cannot train" and body["errors"][0]["message"].startswith(f"[E520] priority {limit + 1} is above {limit}")
    assert owner.post(f"/api/projects/{pid}/members", json={"username": "admin", "role": "manager"}).status_code == 201
    (urgent,) = api.admin.post(f"/api/projects/{pid}/trainings", json={"kinds": ["assertion"], "priority": limit + 1}).json()["jobs"]
    assert api.admin.get(f"/api/trainings/{urgent['id']}").json()["priority"] == limit + 1, "an admin may ask more"
    (mine,) = owner.post(f"/api/projects/{pid}/trainings", json={"kinds": ["classification"], "priority": -3}).json()["jobs"]
    assert [(j["id"], j["priority"]) for j in owner.get(f"/api/projects/{pid}/trainings").json()] == [
        (mine["id"], -3), (urgent["id"], limit + 1), (job["id"], 7)]
