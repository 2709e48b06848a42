"""Every refused input answers its documented status with a useful body, and changes nothing."""

import httpx
import pytest

from ..conftest import Api, refused

XXE = """<?xml version="1.0"?>
<!DOCTYPE View [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<View><Text name="text" value="$text"/><Labels name="l" toName="text"><Label value="&xxe;"/></Labels></View>"""


@pytest.fixture
def project(api: Api, clinical_config: str, clinical_tasks: list):
    owner = api.user("olivia")
    pid = owner.post("/api/projects", json={"name": "clinic", "labeling_config": clinical_config}).json()["id"]
    api.user("ann")
    api.user("rita")
    owner.post(f"/api/projects/{pid}/members", json={"username": "ann", "role": "annotator"})
    owner.post(f"/api/projects/{pid}/members", json={"username": "rita", "role": "reviewer"})
    ids = owner.post(f"/api/projects/{pid}/tasks/import", json=clinical_tasks[:5]).json()["task_ids"]
    return pid, owner, ids


def test_no_token_and_bad_token_are_401(api: Api, project) -> None:
    pid, _, _ = project
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        with httpx.Client(base_url=api.url, headers=headers) as anon:
            body = refused(api, lambda: anon.post("/api/projects", json={"name": "x", "labeling_config": "<View/>"}), 401)
            assert body["detail"].startswith("[E401]")
            refused(api, lambda: anon.get(f"/api/projects/{pid}"), 401)
    assert httpx.get(f"{api.url}/api/health").json()["status"] == "ok"


def test_malformed_xml_names_the_line_and_creates_nothing(api: Api) -> None:
    owner = api.user("o")
    body = refused(api, lambda: owner.post("/api/projects", json={"name": "x", "labeling_config": "<View>\n<Text name='t'>\n</View>"}), 422)
    (error,) = body["errors"]
    assert error["message"].startswith("[E101]") and error["line"] == 3 and error["field"] == "labeling_config"


def test_xxe_payload_is_refused_and_nothing_is_read(api: Api, project) -> None:
    pid, owner, _ = project
    body = refused(api, lambda: owner.put(f"/api/projects/{pid}/labeling-config", json={"labeling_config": XXE}), 422)
    assert body["errors"][0]["message"].startswith("[E103]")
    assert "root:" not in str(body)


def test_every_config_error_is_listed_with_line_and_tag(api: Api, project) -> None:
    pid, owner, _ = project
    xml = """<View>
<Text name="text" value="$text"/>
<Labels name="text" toName="missing"><Label value="A"/></Labels>
<Choices name="c" toName="text"></Choices>
</View>"""
    body = refused(api, lambda: owner.put(f"/api/projects/{pid}/labeling-config", json={"labeling_config": xml}), 422)
    assert {(e["line"], e["tag"], e["message"][:6]) for e in body["errors"]} == {
        (3, "Labels", "[E107]"), (3, "Labels", "[E108]"), (4, "Choices", "[E109]")}


def test_oversized_body_is_413(settings, engine) -> None:
    from annoray.api.app import create_app
    from annoray.api.server import BackgroundServer

    small = settings.model_copy(update={"api": settings.api.model_copy(update={"max_body_bytes": 2000})})
    token = settings.admin_token_path.read_text().strip()
    with BackgroundServer(create_app(small, engine=engine)) as url:
        api = Api(url, httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}), engine)
        big = {"username": "x" * 5000}
        body = refused(api, lambda: api.admin.post("/api/users", json=big), 413)
        assert body["detail"].startswith("[E505]") and "2000" in body["detail"]

        def chunked():
            yield b'{"username": "'
            for _ in range(10):
                yield b"y" * 500
            yield b'"}'
        refused(api, lambda: api.admin.post("/api/users", content=chunked(), headers={"content-type": "application/json"}), 413)


@pytest.mark.parametrize("who,method,path,payload", [
    ("ann", "post", "/api/projects/{pid}/tasks/import", [{"data": {"text": "x"}}]),
    ("ann", "put", "/api/projects/{pid}/labeling-config", {"labeling_config": "<View/>"}),
    ("ann", "post", "/api/projects/{pid}/members", {"username": "rita", "role": "owner"}),
    ("rita", "post", "/api/projects/{pid}/members", {"username": "ann", "role": "manager"}),
    ("ann", "get", "/api/projects/{pid}/export", None),
    ("ann", "post", "/api/projects/{pid}/completions/{cid}/review", {"status": "accepted"}),
    ("stranger", "get", "/api/projects/{pid}", None),
    ("stranger", "post", "/api/projects/{pid}/tasks/{tid}/completions", {"result": []}),
    ("ann", "post", "/api/users", {"username": "z"}),
])
def test_wrong_role_is_403(api: Api, project, who: str, method: str, path: str, payload) -> None:
    pid, owner, ids = project
    cid = owner.post(f"/api/projects/{pid}/tasks/{ids[0]}/completions", json={"result": []}).json()["id"]
    client = api.user(who) if who == "stranger" else api.clients[who]
    url = path.format(pid=pid, cid=cid, tid=ids[0])
    kwargs = {"json": payload} if payload is not None else {}
    body = refused(api, lambda: getattr(client, method)(url, **kwargs), 403)
    assert body["detail"][:6] in ("[E402]", "[E403]", "[E405]")


@pytest.mark.parametrize("path", [
    "/api/projects/999", "/api/projects/{pid}/tasks/99999", "/api/projects/{pid}/tasks/99999/predictions",
])
def test_unknown_ids_are_404(api: Api, project, path: str) -> None:
    pid, owner, _ = project
    body = refused(api, lambda: owner.get(path.format(pid=pid)), 404)
    assert body["detail"].startswith("[E404]")


def test_unknown_completion_review_is_404(api: Api, project) -> None:
    pid, owner, _ = project
    refused(api, lambda: owner.post(f"/api/projects/{pid}/completions/4242/review", json={"status": "accepted"}), 404)


def test_import_is_all_or_nothing_and_names_each_bad_item(api: Api, project) -> None:
    pid, owner, _ = project
    good = {"data": {"text": "fine"}}
    bad_span = {"data": {"text": "short"}, "annotations": [{"result": [
        {"from_name": "label", "to_name": "text", "type": "labels", "value": {"start": 2, "end": 40, "labels": ["Condition"]}}]}]}
    bad_label = {"data": {"text": "short"}, "annotations": [{"result": [
        {"from_name": "label", "to_name": "text", "type": "labels", "value": {"start": 0, "end": 5, "labels": ["Drug"]}}]}]}
    no_text = {"data": {"body": "x"}}
    body = refused(api, lambda: owner.post(f"/api/projects/{pid}/tasks/import", json=[good, bad_span, good, bad_label, no_text]), 422)
    assert {(e["index"], e["message"][:6]) for e in body["errors"]} == {(1, "[E204]"), (3, "[E203]"), (4, "[E206]")}
    assert "3 of 5 tasks are invalid" in body["detail"]
    refused(api, lambda: owner.post(f"/api/projects/{pid}/tasks/import", json=[]), 422)
    refused(api, lambda: owner.post(f"/api/projects/{pid}/tasks/import", content=b"[{", headers={"content-type": "application/json"}), 422)


@pytest.mark.parametrize("payload,field", [
    ({"name": "", "labeling_config": "<View/>"}, "body.name"),
    ({"name": "x"}, "body.labeling_config"),
])
def test_invalid_fields_are_named(api: Api, payload: dict, field: str) -> None:
    owner = api.user("o")
    body = refused(api, lambda: owner.post("/api/projects", json=payload), 422)
    assert field in [e["field"] for e in body["errors"]]


def test_unsupported_language_and_completion_with_foreign_label(api: Api, project, clinical_config: str) -> None:
    pid, owner, ids = project
    body = refused(api, lambda: owner.post("/api/projects", json={"name": "x", "labeling_config": clinical_config, "language": "fr"}), 422)
    assert body["errors"][0]["field"] == "language"
    result = [{"from_name": "temporality", "to_name": "text", "type": "choices", "value": {"choices": ["Tomorrow"]}}]
    body = refused(api, lambda: owner.post(f"/api/projects/{pid}/tasks/{ids[0]}/completions", json={"result": result}), 422)
    assert body["errors"][0]["message"].startswith("[E203]")
    refused(api, lambda: owner.get(f"/api/projects/{pid}/export", params={"format": "xml"}), 422)


def test_duplicate_user_is_409(api: Api) -> None:
    api.user("dup")
    refused(api, lambda: api.admin.post("/api/users", json={"username": "dup"}), 409)
