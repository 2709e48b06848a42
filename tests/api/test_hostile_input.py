"""Hostile input is refused with a coded error and nothing changed, whatever route it is sent to."""

import json

import httpx
import pytest

from annoray.api.cli.render import table
from annoray.api.deps import MAX_ID
from annoray.platform.labeling.tasks import MAX_TASK_TEXT

from ..conftest import Api, csrf_of, refused, signed_in

pytestmark = pytest.mark.both_databases  # what each database can store (NUL, ids past a column's range)


@pytest.fixture
def project(api: Api, clinical_config: str, clinical_tasks: list) -> tuple[int, httpx.Client, list[int]]:
    owner = api.user("olivia")
    pid = owner.post("/api/projects", json={"name": "clinic", "labeling_config": clinical_config}).json()["id"]
    ids = owner.post(f"/api/projects/{pid}/tasks/import", json=clinical_tasks[:3]).json()["task_ids"]
    return pid, owner, ids


def raw(client: httpx.Client, method: str, path: str, body: bytes) -> httpx.Response:
    return client.request(method, path, content=body, headers={"content-type": "application/json"})


@pytest.mark.parametrize("path", [
    f"/api/projects/{10**23}", f"/api/projects/{MAX_ID + 1}", "/api/preannotations/-13499298339573986669443680305152",
    f"/api/servers/{10**20}", f"/api/trainings/{10**20}", "/api/projects/{pid}/tasks/" + str(10**20), f"/ui/projects/{10**20}",
    "/api/projects/{pid}/tasks?page=99999999999999999999", "/ui/projects/{pid}/preannotate?job=" + str(10**20),
])
def test_ids_beyond_64_bits_are_invalid_not_a_crash(api: Api, project, path: str) -> None:
    pid, owner, _ = project
    client = signed_in(api, owner) if path.startswith("/ui/") else owner
    body = refused(api, lambda: client.get(path.replace("{pid}", str(pid))), 422)
    assert "less than or equal" in body["detail"] or "greater than or equal" in body["detail"]


def test_nul_surrogates_and_bad_utf8_are_refused_everywhere(api: Api, project) -> None:
    pid, owner, ids = project
    nul = raw(owner, "POST", "/api/projects", b'{"name": "a\\u0000b", "labeling_config": "<View/>"}')
    assert nul.status_code == 422 and nul.json()["detail"].startswith("[E513]") and "NUL" in nul.json()["detail"]
    body = refused(api, lambda: raw(owner, "POST", "/api/projects", b'{"name": "a\\u0000b", "labeling_config": "<View/>"}'), 422)
    assert "body.name" in body["detail"]
    # An unpaired surrogate in a key and in a value; the refusal itself is still valid JSON (ASCII).
    body = refused(api, lambda: raw(owner, "POST", f"/api/projects/{pid}/completions/1/review",
                                    b'{"status": "accepted", "\\ud800x": "\\udfff"}'), 422)
    assert body["detail"].startswith("[E513]") and "surrogate" in body["detail"]
    body = refused(api, lambda: raw(owner, "POST", "/api/projects", b'{"name": "caf\xe9", "labeling_config": "<View/>"}'), 422)
    assert body["detail"].startswith("[E512]")
    body = refused(api, lambda: owner.get(f"/api/projects/{pid}/tasks", params={"tags": "a\x00b"}), 422)
    assert body["detail"].startswith("[E513]") and "tags" in body["detail"]
    refused(api, lambda: owner.get(f"/api/projects/{pid}/tasks?tags=%ff%fe"), 422)
    refused(api, lambda: owner.post(f"/api/projects/{pid}/tasks/{ids[0]}/completions",
                                    json={"result": [{"from_name": "label\x00", "to_name": "text", "type": "labels",
                                                      "value": {"start": 0, "end": 1, "labels": ["x"]}}]}), 422)
    # The same through the dashboard's forms (url-encoded): refused before the page's route.
    refused(api, lambda: httpx.post(f"{api.url}/ui/sign-in", data={"token": "ar_\x00"}), 422)


def test_deep_nesting_and_huge_texts_are_refused(api: Api, project) -> None:
    pid, owner, _ = project
    for depth in (100, 100_000):
        body = refused(api, lambda: raw(owner, "POST", f"/api/projects/{pid}/tasks/import",
                                        b'[{"data": {"text": ' + b"[" * depth + b"]" * depth + b"}}]"), 422)
        assert body["detail"].startswith("[E514]")
    huge = "word " * (10 * 2**20 // 5)
    body = refused(api, lambda: owner.post(f"/api/projects/{pid}/tasks/import", json=[{"data": {"text": huge}}]), 422)
    (error,) = body["errors"]
    assert error["message"].startswith("[E220]") and f"{MAX_TASK_TEXT:,}".replace(",", "") in error["message"]
    assert error["field"] == "[0].data.text"
    # A file uploaded through the dashboard skips the body guard (multipart): the import checks every string itself.
    web = signed_in(api, owner)
    csrf = csrf_of(web.get(f"/ui/projects/{pid}").text)
    for content, error in ((json.dumps([{"data": {"text": "fine"}}, {"data": {"text": "x\x00"}}]), "[E513]"),
                           ("[" * 100_000 + "]" * 100_000, "the file is not JSON")):
        before = api.snapshot()
        page = web.post(f"/ui/projects/{pid}/import", data={"csrf": csrf}, files={"file": ("tasks.json", content.encode())})
        assert page.status_code == 422 and error in page.text and api.snapshot() == before


def test_file_and_foreign_uris_are_not_pages_and_models_are_never_downloaded(api: Api, project) -> None:
    owner = api.user("vera")
    config = '<View><Image name="image" value="$image"/><RectangleLabels name="l" toName="image"><Label value="A"/></RectangleLabels></View>'
    pid = owner.post("/api/projects", json={"name": "forms", "labeling_config": config}).json()["id"]
    for uri in ("file:///api/files/1/pages/1", "/api/files/1/pages/../../../etc/passwd", "ftp://x/api/files/1/pages/1",
                "/etc/passwd", "../../admin.token"):
        body = refused(api, lambda: owner.post(f"/api/projects/{pid}/tasks/import", json=[{"data": {"image": uri}}]), 422)
        assert body["errors"][0]["message"].startswith("[E219]")
    for uri in ("http://example.com/model.tar.gz", "https://example.com/m"):
        body = refused(api, lambda: api.admin.post("/api/models/import", json={"name": "m", "uri": uri}), 422)
        assert "[E510]" in json.dumps(body)
    refused(api, lambda: api.admin.post("/api/models/import", json={"name": "../../etc", "uri": "/tmp"}), 422)


def test_rules_run_in_linear_time_and_dictionaries_have_a_limit(api: Api) -> None:
    created = api.admin.post("/api/rules", json={"name": "evil", "label": "A", "kind": "regex", "pattern": "(a+)+$"})
    assert created.status_code == 201, created.text  # RE2 runs it in linear time (tests/serve_apps: it finishes)
    body = refused(api, lambda: api.admin.post("/api/rules", json={"name": "back", "label": "A", "kind": "regex",
                                                                     "pattern": r"(a)\1"}), 422)
    assert body["errors"][0]["message"].startswith("[E811]") and "backreferences" in body["errors"][0]["message"]
    body = refused(api, lambda: api.admin.post("/api/rules", json={"name": "big", "label": "A", "kind": "dictionary",
                                                                     "terms": [f"t{i}" for i in range(1_000_000)]}), 422)
    assert body["errors"][0]["message"].startswith("[E818]") and "1000000 terms" in body["errors"][0]["message"]


def test_markup_in_names_and_labels_is_shown_as_text(api: Api) -> None:
    from rich.console import Console

    owner = api.user("mark")
    label = "[bold red]<b>X</b>[/]"
    escaped = label.replace("<", "&lt;").replace(">", "&gt;")
    config = f'<View><Text name="text" value="$text"/><Labels name="l" toName="text"><Label value="{escaped}"/></Labels></View>'
    created = owner.post("/api/projects", json={"name": "<script>alert(1)</script>", "labeling_config": config})
    assert created.status_code == 201, created.text
    web = signed_in(api, owner)
    for path in (f"/ui/projects/{created.json()['id']}", "/ui/"):
        page = web.get(path)
        assert page.status_code == 200 and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert "<script>alert(1)</script>" not in page.text and "<b>X</b>" not in page.text
    console = Console(width=200, record=True)
    console.print(table(("project", "label"), [(created.json()["name"], label)]))
    shown = console.export_text()
    assert "<script>alert(1)</script>" in shown and label in shown
