"""A server belongs to its project: a project's members deploy their own models, imported ones and those an admin
shares, and pre-annotate with their project's servers or a shared one (only an admin makes one)."""

from sqlalchemy.orm import Session

from annoray.platform.store.tables import CatalogModel

from ..conftest import NER_CONFIG, Api, refused


def catalog(api: Api, name: str, project_id: int | None, source: str = "manual") -> None:
    with Session(api.engine) as session:
        session.add(CatalogModel(name=name, kind="ner", labels=["Drug"], language="en", engine="spacy.ner.v1", source=source,
                                 project_id=project_id, uri=f"/store/{name}", metrics={}))
        session.commit()


def test_members_use_only_their_projects_servers_and_models(api: Api) -> None:
    olivia, bob = api.user("olivia"), api.user("bob")
    config = {"labeling_config": NER_CONFIG.format(label="Drug")}
    a = olivia.post("/api/projects", json={"name": "a", **config}).json()["id"]
    b = bob.post("/api/projects", json={"name": "b", **config}).json()["id"]
    catalog(api, "a_ner", a)
    catalog(api, "outside_ner", None, source="imported")

    body = refused(api, lambda: bob.post("/api/servers", json={"project_id": b, "models": ["a_ner"]}), 403)
    assert body["detail"].startswith("[E821] model 'a_ner' is not this project's")
    body = refused(api, lambda: bob.post("/api/servers", json={"models": ["outside_ner"]}), 403)
    assert body["detail"].startswith("[E822]"), "a server with no project is shared: an admin's"

    a_server = olivia.post("/api/servers", json={"project_id": a, "models": ["a_ner"]})
    assert a_server.status_code == 202, a_server.text
    a_server = a_server.json()["id"]
    body = refused(api, lambda: bob.post(f"/api/projects/{b}/preannotations", json={"server_id": a_server}), 403)
    assert body["detail"].startswith(f"[E823] server {a_server} belongs to project {a}")
    assert [s["id"] for s in bob.get("/api/servers").json()] == [], "another project's server is not listed"

    assert bob.post("/api/servers", json={"project_id": b, "models": ["outside_ner"]}).status_code == 202, "imported by an admin"
    assert bob.patch("/api/models/a_ner", json={"shared": True}).status_code == 403
    shared = api.admin.patch("/api/models/a_ner", json={"shared": True})
    assert shared.status_code == 200 and shared.json()["shared"] is True
    assert bob.post("/api/servers", json={"project_id": b, "models": ["a_ner"], "name": "b-a"}).status_code == 202

    common = api.admin.post("/api/servers", json={"models": ["outside_ner"], "name": "common"})
    assert common.status_code == 202 and common.json()["project_id"] is None
    assert bob.post(f"/api/projects/{b}/preannotations", json={"server_id": common.json()["id"]}).status_code == 202
    assert {s["name"] for s in bob.get("/api/servers").json()} >= {"b-a", "common"}

    # proposing relations for marked entities needs <Relations> in the project's config and a relation model on the server
    common_id = common.json()["id"]
    body = refused(api, lambda: bob.post(f"/api/projects/{b}/preannotations", json={"server_id": common_id, "entities_from": "completion"}), 422)
    assert body["errors"][0]["message"].startswith(f"[E824] project {b}'s labeling config has no <Relations>"), body
    related = NER_CONFIG.format(label="Drug").replace("</View>", '<Relations><Relation value="effect"/></Relations></View>')
    c = bob.post("/api/projects", json={"name": "c", "labeling_config": related}).json()["id"]
    body = refused(api, lambda: bob.post(f"/api/projects/{c}/preannotations", json={"server_id": common_id, "entities_from": "completion"}), 422)
    assert body["errors"][0]["message"].startswith(f"[E825] server {common_id} holds no relation model (outside_ner)"), body
