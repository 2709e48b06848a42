"""The authorization matrix: every route of the app × every kind of caller → refused (401/403) or let through.

The routes come from the app's own route list, so a route added without a row here fails the test. "Let through"
means the request passed authentication and authorization: whatever it answers next (200, 404 for an id, 409 for a
state) is not a 401 or a 403, nor a 5xx (a bug, whoever sends it). The README's table "Who may do what" summarises this one.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import time_machine
from fastapi import FastAPI
from starlette.routing import Route
from sqlalchemy.orm import Session

from annoray.api.app import create_app
from annoray.platform.lifecycle import JobStatus
from annoray.platform.store.tables import PreannotationServer, WorkJob

from ..conftest import Api, license_document

CALLERS = ("none", "bad", "expired", "revoked", "stranger", "annotator", "reviewer", "manager", "owner", "admin")
UNAUTHENTICATED = {"none", "bad", "expired", "revoked"}

EVERYONE = set(CALLERS)
USER = set(CALLERS) - UNAUTHENTICATED
ADMIN = {"admin"}
MEMBER = {"annotator", "reviewer", "manager", "owner"}  # an admin who is not a member is refused a project's data
REVIEWERS = {"reviewer", "manager", "owner"}
OWNER_MANAGER = {"manager", "owner"}
OWNER = {"owner"}
AUTHOR = {"annotator"}  # the completion under test is the annotator's
MANAGER_SOMEWHERE = {"manager", "owner", "admin"}
CLUSTER = {"owner", "admin"}
TOKEN_OWNER = {"owner", "admin"}  # the token under test is the owner's
SERVER_MANAGER = {"manager", "owner", "admin"}

MATRIX: dict[tuple[str, str], set[str]] = {
    ("GET", "/"): EVERYONE,  # to the dashboard's sign-in, or where to go (JSON)
    ("GET", "/api/health"): EVERYONE,
    ("GET", "/api/health/live"): EVERYONE,
    ("GET", "/api/health/ready"): EVERYONE,
    ("GET", "/metrics"): EVERYONE,  # route templates and counts only; keep it on the private network (README)
    ("GET", "/api/audit"): ADMIN,
    ("GET", "/docs"): EVERYONE,
    ("GET", "/redoc"): EVERYONE,
    ("GET", "/openapi.json"): EVERYONE,
    ("POST", "/api/users"): ADMIN,
    ("GET", "/api/users/me"): USER,
    ("GET", "/api/users"): ADMIN,
    ("PATCH", "/api/users/{username}"): ADMIN,
    ("POST", "/api/users/me/token"): USER,
    ("POST", "/api/tokens"): USER,
    ("GET", "/api/tokens"): USER,
    ("DELETE", "/api/tokens/{tid}"): TOKEN_OWNER,
    ("GET", "/api/projects"): USER,
    ("POST", "/api/projects"): USER,
    ("GET", "/api/projects/{pid}"): MEMBER,
    ("PUT", "/api/projects/{pid}/labeling-config"): OWNER_MANAGER,
    ("PUT", "/api/projects/{pid}/active-learning"): OWNER_MANAGER,
    ("GET", "/api/projects/{pid}/active-learning"): MEMBER,
    ("POST", "/api/projects/{pid}/members"): OWNER,
    ("GET", "/api/projects/{pid}/members"): MEMBER,
    ("GET", "/api/projects/{pid}/training-data"): OWNER_MANAGER,
    ("GET", "/api/projects/{pid}/export"): OWNER_MANAGER,
    ("POST", "/api/projects/{pid}/tasks/import"): OWNER_MANAGER,
    ("GET", "/api/projects/{pid}/tasks"): MEMBER,
    ("GET", "/api/projects/{pid}/tasks/{tid}"): MEMBER,
    ("POST", "/api/projects/{pid}/tasks/{tid}/completions"): MEMBER,
    ("PATCH", "/api/projects/{pid}/completions/{cid}"): AUTHOR,
    ("POST", "/api/projects/{pid}/completions/{cid}/review"): REVIEWERS,
    ("GET", "/api/projects/{pid}/tasks/{tid}/predictions"): MEMBER,
    ("POST", "/api/projects/{pid}/tasks/{tid}/completions/from-prediction/{prid}"): MEMBER,
    ("POST", "/api/projects/{pid}/files"): OWNER_MANAGER,
    ("GET", "/api/projects/{pid}/files"): MEMBER,
    ("GET", "/api/files/{fid}"): MEMBER,
    ("GET", "/api/files/{fid}/pages/{n}"): MEMBER,
    ("GET", "/api/files/{fid}/pages/{n}/ocr"): MEMBER,
    ("PUT", "/api/files/{fid}/pages/{n}/ocr"): OWNER_MANAGER,
    ("POST", "/api/projects/{pid}/trainings"): OWNER_MANAGER,
    ("GET", "/api/projects/{pid}/trainings"): MEMBER,
    ("GET", "/api/trainings/{jid}"): MEMBER,
    ("POST", "/api/trainings/{jid}/cancel"): OWNER_MANAGER,
    ("GET", "/api/trainings/{jid}/log"): MEMBER,
    ("POST", "/api/projects/{pid}/training-configs"): OWNER,
    ("GET", "/api/projects/{pid}/training-configs"): MEMBER,
    ("GET", "/api/projects/{pid}/training-configs/{cid}"): MEMBER,
    ("DELETE", "/api/projects/{pid}/training-configs/{cid}"): OWNER,
    ("GET", "/api/engines"): USER,
    ("GET", "/api/models"): USER,
    ("POST", "/api/models"): ADMIN,
    ("GET", "/api/models/{name}"): USER,
    ("PATCH", "/api/models/{name}"): ADMIN,
    ("POST", "/api/models/import"): ADMIN,
    ("GET", "/api/servers"): USER,
    ("POST", "/api/servers"): OWNER_MANAGER,  # of the project named in the body; a shared one (no project): ADMIN
    ("GET", "/api/servers/{sid}"): USER,
    ("DELETE", "/api/servers/{sid}"): SERVER_MANAGER,
    ("POST", "/api/projects/{pid}/preannotations"): OWNER_MANAGER,
    ("GET", "/api/preannotations/{jid}"): MEMBER,
    ("GET", "/api/work/{wid}"): TOKEN_OWNER,  # the work under test is the owner's
    ("GET", "/api/rules"): USER,
    ("POST", "/api/rules"): MANAGER_SOMEWHERE,
    ("GET", "/api/licenses"): ADMIN,
    ("POST", "/api/licenses"): ADMIN,
    ("DELETE", "/api/licenses/{license_id}"): ADMIN,
    ("POST", "/api/teams"): ADMIN,
    ("GET", "/api/teams"): USER,
    ("PATCH", "/api/teams/{name}"): ADMIN,
    ("DELETE", "/api/teams/{name}"): ADMIN,
    ("PATCH", "/api/projects/{pid}"): ADMIN,  # its team and its trainings' default priority
    ("GET", "/api/cluster"): CLUSTER,
    ("GET", "/api/queue"): CLUSTER,
    # Label Studio's calls: any user may link a new Label Studio project (it makes them its owner); a linked one is its
    # owners' and managers'. GET /ls/predictions is let through to its check of the project named in its query (the
    # matrix sends none: 422); tests/label_studio/test_protocol.py checks that one.
    ("GET", "/ls/health"): USER,
    ("POST", "/ls/setup"): USER,
    ("POST", "/ls/import"): OWNER_MANAGER,
    ("POST", "/ls/predict"): OWNER_MANAGER,
    ("POST", "/ls/webhook"): OWNER_MANAGER,
    ("POST", "/ls/train"): OWNER_MANAGER,
    ("GET", "/ls/predictions"): USER,
}
LS_PROJECT = {"id": 5, "created_at": "2023-11-14T22:13:20Z"}  # the Label Studio project the world links
LS_UID = "5.1700000000"


def routes_of(routes: list, prefix: str = "") -> Iterator[tuple[str, Route]]:
    """(full path, route) of every route, through included routers (FastAPI includes them lazily)."""
    for route in routes:
        if hasattr(route, "original_router"):
            yield from routes_of(route.original_router.routes, prefix + route.include_context.prefix)
        elif isinstance(route, Route):
            yield prefix + route.path, route


def served_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app serves outside the dashboard (tested in test_dashboard) and its static files."""
    return {(method, path) for path, route in routes_of(app.routes) if not path.startswith("/ui")
            for method in route.methods - {"HEAD"}}


@pytest.fixture
def world(api: Api, clinical_config: str, clinical_tasks: list, tmp_path) -> dict:
    """A project where each caller has its role, one of each thing a path can name, and a client per caller."""
    from .test_files import image_bytes
    from .test_training_configs import spacy_ner_config

    owner = api.user("olivia")
    users = {"owner": owner, "admin": api.admin}
    pid = owner.post("/api/projects", json={"name": "clinic", "labeling_config": clinical_config}).json()["id"]
    for role in ("annotator", "reviewer", "manager"):
        users[role] = api.user(role)
        assert owner.post(f"/api/projects/{pid}/members", json={"username": role, "role": role}).status_code == 201
    users["stranger"] = api.user("stranger")
    api.user("newcomer")  # whom the members route adds
    task = dict(clinical_tasks[0], predictions=[{"result": clinical_tasks[0]["annotations"][0]["result"], "model_version": "m"}])
    tids = owner.post(f"/api/projects/{pid}/tasks/import", json=[task, *clinical_tasks[1:60]]).json()["task_ids"]
    completion = users["annotator"].post(f"/api/projects/{pid}/tasks/{tids[1]}/completions",
                                         json={"result": clinical_tasks[1]["annotations"][0]["result"]}).json()
    prid = owner.get(f"/api/projects/{pid}/tasks/{tids[0]}/predictions").json()[0]["id"]
    config = owner.post(f"/api/projects/{pid}/training-configs", json={"name": "ner", "config": spacy_ner_config()}).json()
    job = owner.post(f"/api/projects/{pid}/trainings", json={"kinds": ["ner"]}).json()["jobs"][0]["id"]
    files = owner.post(f"/api/projects/{pid}/files", files=[("file", ("a.png", image_bytes(60, 40), "image/png"))]).json()
    fid = files["items"][0]["id"]
    with Session(api.engine) as session:
        server = PreannotationServer(name="matrix", project_id=pid, models=[], requested_by=None)
        session.add(server)
        work = WorkJob(kind="upload", project_id=pid, requested_by=owner.get("/api/users/me").json()["id"],
                       status=JobStatus.SUCCEEDED, result={})
        session.add(work)
        session.commit()
        sid, wid = server.id, work.id
    pre = owner.post(f"/api/projects/{pid}/preannotations", json={"server_id": sid, "task_ids": tids[:1]})
    assert pre.status_code == 202, pre.text
    license_id = api.admin.post("/api/licenses", json=license_document(["healthcare:*"])).json()["id"]
    token = owner.post("/api/tokens", json={"name": "matrix"}).json()["id"]
    assert owner.post("/ls/setup", json={"project": LS_UID, "schema": clinical_config}).status_code == 200  # links pid

    expired = owner.post("/api/tokens", json={"name": "short", "expires_in_days": 1 / 24}).json()["token"]  # an hour
    revoked = owner.post("/api/tokens", json={"name": "gone"}).json()
    assert owner.delete(f"/api/tokens/{revoked['id']}").status_code == 204
    clients = {"none": httpx.Client(base_url=api.url, timeout=60), "bad": api.client("ar_not-a-token"),
               "expired": api.client(expired), "revoked": api.client(revoked["token"]), **users}
    ids = {"pid": pid, "tid": tids[0], "cid": completion["id"], "prid": prid, "fid": fid, "n": 1, "jid": job, "sid": sid,
           "license_id": license_id, "name": "nope", "username": "nobody", "wid": wid}
    bodies = {
        "/api/projects/{pid}/labeling-config": {"labeling_config": clinical_config},
        "/api/projects/{pid}/active-learning": {"enabled": False},
        "/api/projects/{pid}/members": {"username": "newcomer", "role": "annotator"},
        "/api/projects/{pid}/tasks/import": clinical_tasks[60:61],
        "/api/projects/{pid}/trainings": {"kinds": ["assertion"]},
        "/api/projects/{pid}/tasks/{tid}/completions": {"result": []},
        "/api/projects/{pid}/completions/{cid}": {"result": []},
        "/api/projects/{pid}/completions/{cid}/review": {"status": "accepted"},
        "/api/files/{fid}/pages/{n}/ocr": {"words": []},
        "/api/projects/{pid}/training-configs": {"name": "again", "config": spacy_ner_config()},
        "/api/projects/{pid}/preannotations": {"server_id": sid, "task_ids": tids[:1]},
        "/api/servers": {"project_id": pid, "name": "another"},
        "/api/models/{name}": {"shared": True},
        "/api/users/{username}": {"active": True},
        "/api/teams": {"name": "matrix", "quota": {"cpus": 1}},
        "/api/teams/{name}": {"quota": {"cpus": 2}},
        "/api/projects/{pid}": {"priority": 1},
        "/api/rules": {"name": "dose", "label": "Dose", "kind": "regex", "pattern": "mg"},
        "/api/projects": {"name": "p"},  # refused as incomplete after the caller is let through: nobody becomes an owner
        "/api/tokens": {"name": "more", "scope": "read"},
        "/api/users": {"username": "fresh"},
        "/ls/setup": {"project": "6.1700000000", "schema": ""},  # a new link with no config: refused after the caller (422)
        "/ls/import": {"project": LS_UID, "schema": clinical_config, "instance": "http://ls", "tasks": []},
        "/ls/predict": {"project": LS_UID, "tasks": [{"id": 1, "data": {"text": "aspirin"}}]},
        "/ls/webhook": {"action": "ANNOTATIONS_DELETED", "project": LS_PROJECT, "annotations": [{"id": 1}]},
        "/ls/train": {"project": LS_UID},
    }
    return {"clients": clients, "ids": ids, "bodies": bodies, "config_id": config["id"]}


def test_every_route_has_a_row(api: Api) -> None:
    served = served_routes(create_app(api.settings, engine=api.engine))
    assert served - set(MATRIX) == set(), "a route with no row in the authorization matrix"
    assert set(MATRIX) - served == set(), "a row for a route the app does not serve"


def no_scheduler(response: httpx.Response) -> bool:
    """The one 5xx this world (no Ray) answers by design: 503 saying, coded, that no scheduler runs."""
    return response.status_code == 503 and "[E610]" in response.text


def test_every_caller_gets_what_the_matrix_says(api: Api, world: dict) -> None:
    ids, clients = world["ids"], world["clients"]
    mismatches = []
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=2), tick=True):  # the "expired" token has expired
        for (method, template), allowed in MATRIX.items():
            path = template.format(**{**ids, "cid": world["config_id"]} if "training-configs" in template else ids)
            body = world["bodies"].get(template)
            # Refused callers first: a destructive route let through would otherwise remove what the others address.
            for who in sorted(CALLERS, key=lambda c: c in allowed):
                if template == "/api/projects/{pid}/files" and method == "POST":
                    from .test_files import image_bytes

                    response = clients[who].post(path, files=[("file", ("b.png", image_bytes(30, 20), "image/png"))])
                else:
                    response = clients[who].request(method, path, json=body if method in ("POST", "PUT", "PATCH") else None)
                if template == "/api/users/me/token" and response.status_code == 200:  # the old token stopped: use the new
                    clients[who].headers["Authorization"] = f"Bearer {response.json()['token']}"
                expected = "through" if who in allowed else (401 if who in UNAUTHENTICATED else 403)
                got = "through" if response.status_code not in (401, 403) else response.status_code
                if response.status_code >= 500 and not no_scheduler(response):  # a 5xx is a bug, whoever sends the request
                    got = response.status_code
                if got != expected:
                    mismatches.append(f"{method} {template} as {who}: expected {expected}, got {response.status_code} "
                                      f"{response.text[:160]}")
    assert not mismatches, "\n".join(mismatches)


def test_every_dashboard_page_needs_a_session_and_a_membership(api: Api, world: dict) -> None:
    """The dashboard's routes: a visitor who is not signed in is sent to sign in (a page) or refused (an action), and
    a signed-in user who is not a member of the project a page is about is refused it."""
    from ..conftest import csrf_of, signed_in

    ids = world["ids"]
    open_routes = {"/ui/sign-in", "/ui/sign-in/{code}", "/ui/sign-out"}
    pages = [(m, path) for path, route in routes_of(create_app(api.settings, engine=api.engine).routes)
             if path.startswith("/ui") and path not in open_routes for m in route.methods - {"HEAD"}]
    assert len(pages) > 20
    anonymous, stranger = httpx.Client(base_url=api.url), signed_in(api, world["clients"]["stranger"])
    csrf, mismatches = csrf_of(stranger.get("/ui/").text), []
    for method, template in pages:
        path = template.format(**ids)
        response = anonymous.request(method, path)
        if not (response.status_code in (303, 401, 403) and (response.status_code != 303 or
                                                              response.headers["location"] == "/ui/sign-in")):
            mismatches.append(f"{method} {template} anonymous: {response.status_code}")
        if "{" in template and not template.startswith(("/ui/models/", "/ui/servers/")):
            form = {"data": {"csrf": csrf, "server_id": str(ids["sid"])}, "files": {"file": ("a.json", b"[]")}}
            response = stranger.request(method, path, **(form if method == "POST" else {}))
            if response.status_code != 403:
                mismatches.append(f"{method} {template} as a non-member: {response.status_code}")
    assert not mismatches, "\n".join(mismatches)
