"""Pre-annotation servers on a real Ray Serve, placed by the scheduler: deploy, pre-annotate, refuse, survive a kill."""

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from annoray.platform.store.repositories import TaskRepository

from ..conftest import (
    NAMES, Api, clinic, clinical_sentences, license_document, live_api, refused, register_models, scheduler_settings,
    shutdown_ray, tiny_models, wait_for,
)

import ray  # noqa: E402  (a dependency of annoray's own: never skipped)

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(900)]

@pytest.fixture
def serving(ray_session, tmp_path: Path):
    with live_api(scheduler_settings(tmp_path / "home")) as api:
        register_models(api)
        yield api


def test_deploy_preannotate_read_chunks_and_complete_from_a_prediction(serving: Api) -> None:
    api = serving
    pid = clinic(api, "cardio", rules=' rules="dose"')
    other = clinic(api, "plain")
    assert api.admin.post("/api/rules", json={"name": "dose", "label": "Dose", "kind": "regex", "pattern": r"\bdaily\b"}).status_code == 201
    created = api.admin.post("/api/servers", json={"project_id": pid, "name": "cardio-server"})
    assert created.status_code == 202, created.text
    server = wait_for(api, f"/api/servers/{created.json()['id']}", lambda s: s["status"] == "running")
    assert [(m["name"], m["labels"]) for m in server["models"]] == [
        (NAMES["ner"], ["Drug"]), (NAMES["assertion"], ["present", "absent"]), (NAMES["classification"], ["cardiology", "neurology"])]
    assert server["rules"] == ["dose"] and server["resources"]["cpus"] == 1
    view = api.admin.get("/api/cluster").json()
    assert [s["name"] for s in view["servers"]] == ["cardio-server"] and view["servers"][0]["node_id"]

    job = api.admin.post(f"/api/projects/{pid}/preannotations", json={"server_id": server["id"]}).json()
    tasks = len(clinical_sentences())
    assert job["total"] == tasks - 2, "tasks with a completion are left out by default"
    done = wait_for(api, f"/api/preannotations/{job['id']}", lambda j: j["status"] in ("succeeded", "failed"))
    assert (done["status"], done["done"], done["failed"], done["progress"]) == ("succeeded", tasks - 2, 0, 1.0)

    task_ids = [t["id"] for t in api.admin.get(f"/api/projects/{pid}/tasks", params={"page_size": 100}).json()["items"]]
    ranked = api.admin.get(f"/api/projects/{pid}/tasks", params={"page_size": 100, "order": "uncertainty"}).json()["items"]
    scores = [t["uncertainty"] for t in ranked]
    known = [u for u in scores if u is not None]
    assert len(known) >= tasks - 4 and known == sorted(known, reverse=True) and scores[:len(known)] == known, scores
    assert {t["id"] for t in ranked[-2:]} >= set(task_ids[:2]) or None in scores, "never pre-annotated tasks come last"
    third = task_ids[2]  # "The patient takes folic acid daily for the heart problem."
    (prediction,) = api.admin.get(f"/api/projects/{pid}/tasks/{third}/predictions").json()
    regions = {(r["from_name"], r["value"].get("text"), tuple(r["value"].get("labels") or r["value"].get("choices"))) for r in prediction["result"]}
    assert ("label", "folic acid", ("Drug",)) in regions, "the two tokens of one entity are one region"
    assert ("status", "folic acid", ("present",)) in regions and ("label", "daily", ("Dose",)) in regions
    assert any(r["type"] == "choices" for r in prediction["result"]) and 0 < prediction["score"] <= 1
    assert prediction["model_version"] == f"cardio-server:{NAMES['ner']}+{NAMES['assertion']}+{NAMES['classification']}"
    completion = api.admin.post(f"/api/projects/{pid}/tasks/{third}/completions/from-prediction/{prediction['id']}")
    assert completion.status_code == 201, completion.text

    again = api.admin.post(f"/api/projects/{other}/preannotations", json={"server_id": server["id"]}).json()
    wait_for(api, f"/api/preannotations/{again['id']}", lambda j: j["status"] == "succeeded")
    plain = api.admin.get(f"/api/projects/{other}/tasks", params={"page_size": 100}).json()["items"][2]["id"]
    (prediction,) = api.admin.get(f"/api/projects/{other}/tasks/{plain}/predictions").json()
    assert not any(r["value"].get("labels") == ["Dose"] for r in prediction["result"]), "a project without rules gets no rule predictions"

    rerun = api.admin.post(f"/api/projects/{pid}/preannotations", json={"server_id": server["id"], "task_ids": [third]}).json()
    wait_for(api, f"/api/preannotations/{rerun['id']}", lambda j: j["status"] == "succeeded")
    assert len(api.admin.get(f"/api/projects/{pid}/tasks/{third}/predictions").json()) == 2, "a re-run adds a new prediction set"

    huge = "aspirin " * 130_000  # past spaCy's max_length: refused at import (E220) since; a task stored before is still there
    poison = api.admin.post(f"/api/projects/{pid}/tasks/import", json=[{"data": {"text": huge}}]).json()
    assert poison["errors"][0]["message"].startswith("[E220]"), poison
    with Session(api.engine) as session:
        TaskRepository(session).add_many(pid, [{"data": {"text": huge}, "tags": []}])
        session.commit()
    poisoned = [t["id"] for t in api.admin.get(f"/api/projects/{pid}/tasks", params={"page_size": 100}).json()["items"]][-3:]
    failing = api.admin.post(f"/api/projects/{pid}/preannotations", json={"server_id": server["id"], "task_ids": poisoned}).json()
    ended = wait_for(api, f"/api/preannotations/{failing['id']}", lambda j: j["status"] in ("succeeded", "failed"))
    assert (ended["status"], ended["done"], ended["failed"]) == ("succeeded", 2, 1), "one bad task fails alone, not its batch"
    assert ended["failures"][0]["task_id"] == poisoned[-1] and "E088" in ended["failures"][0]["error"], (poison, ended)

    assert api.admin.delete(f"/api/servers/{server['id']}").status_code == 204
    assert api.admin.get("/api/servers").json() == [] and ray.get(
        ray.get_actor(api.settings.scheduler.name, namespace=api.settings.scheduler.namespace).servers_view.remote()) == {}


def test_six_models_unknown_models_and_servers_that_never_fit_are_refused(serving: Api) -> None:
    api = serving
    six = [NAMES["ner"]] * 0 + [f"m{i}" for i in range(6)]
    body = refused(api, lambda: api.admin.post("/api/servers", json={"models": six}), 422)
    assert body["errors"][0]["message"].startswith("[E802] a server holds at most 5 models; this one names 6")
    body = refused(api, lambda: api.admin.post("/api/servers", json={"models": [NAMES["ner"], "nope"]}), 422)
    assert body["errors"][0]["message"].startswith("[E803] model 'nope' is not a trained model in the catalog")
    body = refused(api, lambda: api.admin.post("/api/servers", json={"models": [NAMES["ner"]], "replicas": 20}), 409)
    assert body["detail"].startswith("[E805] this server can never run on this cluster: needs 20 replicas of 1 CPU / 2 GB; "
                                     "the cluster can ever hold 16 (16 on node ")
    pid = clinic(api, "onko", model_type="healthcare")
    body = refused(api, lambda: api.admin.post("/api/servers", json={"project_id": pid}), 409)
    assert body["detail"].startswith("[E707] needs a seat of license scope 'healthcare:inference'")
    assert ray.get(ray.get_actor(api.settings.scheduler.name, namespace=api.settings.scheduler.namespace).servers_view.remote()) == {}


def test_a_server_waits_for_a_seat_and_deploys_when_one_returns(serving: Api) -> None:
    api = serving
    api.admin.post("/api/licenses", json=license_document(["healthcare:inference"], seats=1))
    pid = clinic(api, "onko", model_type="healthcare")
    first = api.admin.post("/api/servers", json={"project_id": pid, "name": "a"}).json()
    second = api.admin.post("/api/servers", json={"project_id": pid, "name": "b"}).json()
    wait_for(api, f"/api/servers/{first['id']}", lambda s: s["status"] == "running")
    waiting = wait_for(api, f"/api/servers/{second['id']}", lambda s: s["reason"] and "seat" in s["reason"])
    assert waiting["status"] == "queued" and "healthcare:inference" in waiting["reason"]
    assert [lease["holder_id"] for lease in api.admin.get(f"/api/servers/{first['id']}").json()["leases"]] == [first["id"]]
    api.admin.delete(f"/api/servers/{first['id']}")
    wait_for(api, f"/api/servers/{second['id']}", lambda s: s["status"] == "running")
    api.admin.delete(f"/api/servers/{second['id']}")
    assert api.admin.get("/api/licenses").json()[0]["leased"] == 0


def test_a_replica_killed_mid_job_loses_no_task_and_duplicates_none(serving: Api) -> None:
    api = serving
    pid = clinic(api, "big", annotated=0, copies=100)
    server = api.admin.post("/api/servers", json={"project_id": pid}).json()
    wait_for(api, f"/api/servers/{server['id']}", lambda s: s["status"] == "running")
    job = api.admin.post(f"/api/projects/{pid}/preannotations", json={"server_id": server["id"]}).json()
    wait_for(api, f"/api/preannotations/{job['id']}", lambda j: j["done"] > 0, timeout=120)
    replicas = [a for a in ray.util.list_named_actors(all_namespaces=True)
                if a["name"].startswith("SERVE_REPLICA::") and f"annoray-server-{server['id']}" in a["name"]]
    assert replicas, "no replica to kill"
    assert api.admin.get(f"/api/preannotations/{job['id']}").json()["status"] == "running", "the job ended before the kill"
    for replica in replicas:
        ray.kill(ray.get_actor(replica["name"], namespace=replica["namespace"]), no_restart=True)
    done = wait_for(api, f"/api/preannotations/{job['id']}", lambda j: j["status"] in ("succeeded", "failed"), timeout=300)
    assert (done["status"], done["done"], done["failed"]) == ("succeeded", job["total"], 0), done
    with api.engine.connect() as conn:
        counts = conn.execute(text("SELECT task_id, count(*) FROM predictions WHERE preannotation_job_id = :j GROUP BY task_id"),
                              {"j": job["id"]}).all()
    assert len(counts) == job["total"] and {c for _, c in counts} == {1}
    api.admin.delete(f"/api/servers/{server['id']}")


def test_a_burst_scales_a_server_out_a_job_keeps_every_replica_busy_and_idleness_scales_it_back(serving: Api) -> None:
    """Serve's autoscaling, from the server request: one replica, at most two; a pre-annotation job is the burst."""
    api = serving
    pid = clinic(api, "burst", annotated=0, copies=400)
    created = api.admin.post("/api/servers", json={"project_id": pid, "replicas": 1, "max_replicas": 2, "target_ongoing_requests": 1,
                                                   "upscale_delay_s": 0, "downscale_delay_s": 1})
    assert created.status_code == 202, created.text
    assert created.json()["autoscaling"] == {"target_ongoing_requests": 1, "upscale_delay_s": 0, "downscale_delay_s": 1}
    server = wait_for(api, f"/api/servers/{created.json()['id']}", lambda s: s["status"] == "running")
    assert server["spread"] == [[server["node_id"], 2]], "room for the autoscaling maximum is held where it runs"

    def running_replicas() -> int:
        return next(s for s in api.admin.get("/api/cluster").json()["servers"] if s["id"] == server["id"])["replicas_running"]

    assert running_replicas() == 1
    job = api.admin.post(f"/api/projects/{pid}/preannotations", json={"server_id": server["id"]}).json()
    wait_for(api, "/api/cluster", lambda _: running_replicas() == 2, timeout=120)
    assert api.admin.get(f"/api/preannotations/{job['id']}").json()["status"] == "running", "scaled out after the burst"
    done = wait_for(api, f"/api/preannotations/{job['id']}", lambda j: j["status"] in ("succeeded", "failed"), timeout=600)
    assert (done["status"], done["done"]) == ("succeeded", job["total"]), done
    used = done["replicas_used"]
    assert len(used) == 2 and sum(used.values()) == job["total"] and min(used.values()) > 0, used
    wait_for(api, "/api/cluster", lambda _: running_replicas() == 1, timeout=120)
    api.admin.delete(f"/api/servers/{server['id']}")


def test_a_servers_replicas_spread_over_two_nodes_that_hold_one_each_and_a_job_uses_both(_ray_shutdown, tmp_path: Path) -> None:
    """On a Ray of its own: a head with no CPUs and two worker nodes of one CPU each (a replica needs one). The next
    test that needs the session's Ray starts it again."""
    from ray.cluster_utils import Cluster

    gib = 2**30
    shutdown_ray()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "memory": 2 * gib})
    workers = {cluster.add_node(num_cpus=1, memory=4 * gib).node_id for _ in range(2)}
    ray.init(address=cluster.address, namespace="annoray-tests", log_to_driver=False)
    cluster.wait_for_nodes()
    try:
        with live_api(scheduler_settings(tmp_path / "home")) as api:
            register_models(api)
            pid = clinic(api, "spread", annotated=0, copies=20)
            created = api.admin.post("/api/servers", json={"project_id": pid, "replicas": 2})
            assert created.status_code == 202, created.text
            server = wait_for(api, f"/api/servers/{created.json()['id']}", lambda s: s["status"] == "running", timeout=300)
            assert sorted(server["spread"]) == sorted([node, 1] for node in workers), server["spread"]
            names = [a for a in ray.util.list_named_actors(all_namespaces=True)
                     if a["name"].startswith("SERVE_REPLICA::") and f"annoray-server-{server['id']}" in a["name"]]
            where = {ray.get(ray.get_actor(a["name"], namespace=a["namespace"]).__ray_call__.remote(
                lambda _: ray.get_runtime_context().get_node_id())) for a in names}
            assert where == workers, "Ray put the replicas elsewhere than the scheduler held room for them"
            job = api.admin.post(f"/api/projects/{pid}/preannotations", json={"server_id": server["id"]}).json()
            done = wait_for(api, f"/api/preannotations/{job['id']}", lambda j: j["status"] in ("succeeded", "failed"), timeout=300)
            assert done["status"] == "succeeded" and len(done["replicas_used"]) == 2, done
            api.admin.delete(f"/api/servers/{server['id']}")
    finally:
        shutdown_ray()
        cluster.shutdown()


def test_a_config_naming_another_model_redeploys_the_server_without_dropping_a_request(serving: Api) -> None:
    import threading

    from ray import serve
    from sqlalchemy.orm import Session

    from annoray.platform.store.tables import CatalogModel
    from annoray.serve_apps.server import app_name

    api = serving
    pid = clinic(api, "rolling")
    server = api.admin.post("/api/servers", json={"project_id": pid}).json()
    wait_for(api, f"/api/servers/{server['id']}", lambda s: s["status"] == "running")
    with Session(api.engine) as session:  # the same classifier under a second name, as a later training would add it
        old = session.query(CatalogModel).filter_by(name=NAMES["classification"]).one()
        session.add(CatalogModel(name="classification_clinic_v2", kind=old.kind, labels=old.labels, language="en",
                                 engine=old.engine, source="manual", uri=old.uri.replace(old.name, "classification_clinic_v2")))
        session.commit()
    from annoray.trainers.store import ModelStore

    ModelStore(api.settings.resolved_model_store).put(tiny_models()["classification"],
                                                        "classification_clinic_v2")

    handle = serve.get_app_handle(app_name(server["id"]))
    answers, errors, stop = [], [], threading.Event()

    def ask() -> None:
        while not stop.is_set():
            try:
                answers.append(handle.remote(["The patient takes aspirin daily."]).result(timeout_s=120))
            except Exception as exc:  # a dropped request
                errors.append(repr(exc))

    caller = threading.Thread(target=ask)
    caller.start()
    try:
        wait_for(api, f"/api/servers/{server['id']}", lambda s: len(answers) > 3)
        config = api.admin.get(f"/api/projects/{pid}").json()["labeling_config"].replace(NAMES["classification"], "classification_clinic_v2")
        assert api.admin.put(f"/api/projects/{pid}/labeling-config", json={"labeling_config": config}).status_code == 200
        before = len(answers)
        redeployed = wait_for(api, f"/api/servers/{server['id']}",
                              lambda s: "classification_clinic_v2" in s["deployed_models"] and not s["reason"])
        wait_for(api, f"/api/servers/{server['id']}", lambda s: len(answers) > before + 3)
    finally:
        stop.set()
        caller.join(150)
    assert errors == [], errors
    assert redeployed["status"] == "running" and [m["name"] for m in redeployed["models"]][-1] == "classification_clinic_v2"
    assert any(r.get("model") == "classification_clinic_v2" or "classification_clinic_v2" in str(r) for r in answers[-1]), answers[-1]
    api.admin.delete(f"/api/servers/{server['id']}")


def test_an_imported_spacy_pipeline_is_deployed_and_served_predicting_what_it_predicts_alone(serving: Api, tmp_path: Path) -> None:
    import spacy

    from ..api.test_model_import import outside_pipeline

    api = serving
    path = outside_pipeline(tmp_path / "outside")
    assert api.admin.post("/api/models/import", json={"name": "disease_outside", "uri": str(path)}).status_code == 201
    config = ('<View><Text name="text" value="$text"/><Labels name="label" toName="text">'
              '<Label value="Disease" model="disease_outside"/></Labels></View>')
    pid = api.admin.post("/api/projects", json={"name": "outside", "labeling_config": config}).json()["id"]
    texts = ["The patient has asthma since monday.", "No sign of migraine today.", "History of gout in the family.",
             "She was treated for pneumonia last year and asthma before.", "Nothing to report."]
    task_ids = api.admin.post(f"/api/projects/{pid}/tasks/import", json=[{"data": {"text": t}} for t in texts]).json()["task_ids"]
    server = api.admin.post("/api/servers", json={"project_id": pid, "name": "outside"}).json()
    server = wait_for(api, f"/api/servers/{server['id']}", lambda s: s["status"] in ("running", "failed"), timeout=240)
    assert server["status"] == "running" and [m["name"] for m in server["models"]] == ["disease_outside"], server
    job = api.admin.post(f"/api/projects/{pid}/preannotations", json={"server_id": server["id"]}).json()
    job = wait_for(api, f"/api/preannotations/{job['id']}", lambda j: j["status"] in ("succeeded", "failed"))
    assert (job["status"], job["done"]) == ("succeeded", len(texts)), job

    alone = spacy.load(path)
    for task_id, text in zip(task_ids, texts, strict=True):
        (prediction,) = api.admin.get(f"/api/projects/{pid}/tasks/{task_id}/predictions").json()
        served = [(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in prediction["result"]]
        assert served == [(e.start_char, e.end_char, e.label_) for e in alone(text).ents], text
    assert any(prediction["result"] for task_id in task_ids
               for prediction in api.admin.get(f"/api/projects/{pid}/tasks/{task_id}/predictions").json()), "it found something"
