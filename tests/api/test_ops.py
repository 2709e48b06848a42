"""What ops runs the API with: probes, metrics, the audit trail, security headers, allowed hosts and CORS, logs."""

import json
import logging
import time

import httpx
import pytest

from annoray.api.app import create_app
from annoray.api.cli.platform_commands import exposure_warning
from annoray.api.ops import JsonFormatter
from annoray.api.server import BackgroundServer
from annoray.platform.store.db import migrate

from ..conftest import Api, count_rows, csrf_of, signed_in


def test_probes_say_what_is_missing(api: Api, settings, tmp_path) -> None:
    assert httpx.get(f"{api.url}/api/health/live").json() == {"status": "ok"}
    ready = httpx.get(f"{api.url}/api/health/ready")
    assert ready.status_code == 503 and ready.json()["checks"]["database"] == "ok"
    assert ready.json()["checks"]["migrations"] == "ok" and ready.json()["checks"]["scheduler"].startswith("[E610]")
    if api.engine.dialect.name == "sqlite":  # an old schema: the probe names the migration it needs
        from annoray.platform.store.db import create_db_engine, head_revision

        old = create_db_engine(f"sqlite:///{tmp_path / 'old.db'}")
        migrate(old, "0011")
        with BackgroundServer(create_app(settings, engine=old)) as url:
            checks = httpx.get(f"{url}/api/health/ready").json()["checks"]
        assert checks["migrations"].startswith(f"the schema is at 0011, this annoray needs {head_revision()}")


def test_what_a_probe_and_a_conflict_tell_the_caller_is_general_and_the_log_has_the_detail(settings, engine, caplog) -> None:
    from annoray.platform.store.db import create_db_engine
    from sqlalchemy.exc import IntegrityError

    nowhere = create_db_engine("postgresql+psycopg://annoray:secret-pw@127.0.0.1:9/annoray_db")
    app = create_app(settings, engine=nowhere)

    @app.post("/raced")
    def raced() -> None:
        raise IntegrityError("INSERT INTO users (username) VALUES (?)", ("olivia",), Exception("UNIQUE constraint failed: users.username"))

    with caplog.at_level(logging.WARNING), BackgroundServer(app) as url:
        ready = httpx.get(f"{url}/api/health/ready")
        conflict = httpx.post(f"{url}/raced")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "unreachable: the API cannot reach its database (the log says why)"
    assert conflict.status_code == 409 and conflict.json()["detail"].startswith("[E515]")
    for said in (ready.text, conflict.text):
        assert not any(word in said for word in ("psycopg", "127.0.0.1:9", "annoray_db", "users.username", "olivia"))
    assert "127.0.0.1" in caplog.text and "users.username" in caplog.text, "the detail is in the log"
    nowhere.dispose()


def test_a_trusted_proxys_https_marks_the_session_cookie_secure_and_no_one_elses(settings, engine) -> None:
    token = settings.admin_token_path.read_text().strip()
    for proxies, secure in ((["127.0.0.1"], True), ([], False)):
        behind = settings.model_copy(update={"api": settings.api.model_copy(update={"trusted_proxies": proxies})})
        with BackgroundServer(create_app(behind, engine=engine)) as url, httpx.Client(base_url=url) as web:
            forwarded = {"x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.9"}
            form = web.get("/ui/sign-in", headers=forwarded)
            login = form.headers["set-cookie"].split(";")[0]  # sent back by hand: a Secure cookie never crosses plain HTTP
            signed = web.post("/ui/sign-in", data={"token": token, "csrf": csrf_of(form.text)}, headers=forwarded | {"cookie": login})
            cookie = next(v for k, v in signed.headers.multi_items() if k == "set-cookie" and v.startswith("annoray_session="))
            assert ("; secure" in cookie.lower()) is secure, (proxies, cookie)


def test_metrics_count_requests_by_route_template(api: Api) -> None:
    owner = api.user("olivia")
    pid = owner.post("/api/projects", json={"name": "p", "labeling_config": "<View/>"}).json()
    owner.get("/api/projects/12345")
    text = httpx.get(f"{api.url}/metrics").text
    assert 'annoray_http_requests_total{method="GET",route="/api/projects/{pid}",status="404"} 1.0' in text, pid
    assert 'annoray_http_request_duration_seconds_count{method="POST",route="/api/users"}' in text
    assert "annoray_http_errors_total" in text


def test_every_change_is_audited_and_admins_read_it(api: Api, clinical_config: str) -> None:
    owner = api.user("olivia")
    token = owner.post("/api/tokens", json={"name": "ci"}).json()
    with api.client(token["token"]) as ci:
        assert ci.post("/api/projects", json={"name": "p", "labeling_config": "<View/>"}).status_code == 422
        created = ci.post("/api/projects", json={"name": "p", "labeling_config": clinical_config})
    web = signed_in(api, owner)
    web.post("/ui/projects", data={"csrf": csrf_of(web.get("/ui/").text), "name": "q", "labeling_config": clinical_config})
    owner.get("/api/projects")  # reads are not audited
    deadline = time.monotonic() + 10
    while (events := api.admin.get("/api/audit", params={"username": "olivia"}).json())["total"] < 4:
        assert time.monotonic() < deadline, events
        time.sleep(0.1)
    by_path = [(e["method"], e["route"], e["status"], e["outcome"], e["token_id"], e["detail"]) for e in events["items"]]
    assert by_path[-1][:4] == ("POST", "/api/tokens", 201, "ok")
    assert ("POST", "/api/projects", 422, "refused", token["id"], "[E121]") in by_path, by_path
    assert ("POST", "/api/projects", 201, "ok", token["id"], None) in by_path and created.status_code == 201
    assert any(e["route"] == "/ui/projects" and e["username"] == "olivia" and e["outcome"] == "ok" for e in events["items"])
    assert all(e["address"] == "127.0.0.1" and e["method"] != "GET" for e in events["items"])
    refused = api.admin.get("/api/audit", params={"outcome": "refused", "path": "/api/projects"}).json()
    assert refused["total"] == 1 and refused["items"][0]["detail"] == "[E121]"
    assert owner.get("/api/audit").status_code == 403


def test_security_headers_hosts_and_cors_come_from_settings(settings, engine) -> None:
    strict = settings.model_copy(update={"api": settings.api.model_copy(update={
        "allowed_hosts": ["annoray.example.org", "127.0.0.1"], "cors_origins": ["https://labels.example.org"]})})
    with BackgroundServer(create_app(strict, engine=engine)) as url:
        answer = httpx.get(f"{url}/api/health")
        assert answer.headers["x-content-type-options"] == "nosniff" and answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
        page = httpx.get(f"{url}/ui/sign-in")
        assert "script-src 'self'" in page.headers["content-security-policy"] and "unsafe-eval" not in page.text
        assert "content-security-policy" not in httpx.get(f"{url}/docs").headers
        assert httpx.get(f"{url}/api/health", headers={"host": "evil.example.com"}).status_code == 400
        assert httpx.get(f"{url}/api/health", headers={"host": "annoray.example.org"}).status_code == 200
        preflight = {"origin": "https://labels.example.org", "access-control-request-method": "POST",
                     "access-control-request-headers": "authorization"}
        allowed = httpx.options(f"{url}/api/projects", headers=preflight)
        assert allowed.headers["access-control-allow-origin"] == "https://labels.example.org"
        foreign = httpx.options(f"{url}/api/projects", headers=preflight | {"origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in foreign.headers


@pytest.mark.parametrize("host,warns", [("127.0.0.1", False), ("localhost", False), ("::1", False), ("0.0.0.0", True),
                                        ("10.1.2.3", True), ("annoray.internal", True)])
def test_listening_beyond_loopback_warns(host: str, warns: bool) -> None:
    assert (exposure_warning(host, ["*"]) is not None) == warns


def test_json_log_lines() -> None:
    record = logging.LogRecord("annoray.api", logging.WARNING, __file__, 1, "queued %s", ("x",), None)
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "WARNING" and line["message"] == "queued x" and line["logger"] == "annoray.api"


def test_the_grafana_dashboard_reads_metrics_annoray_exports(api: Api) -> None:
    import re
    from pathlib import Path

    import annoray.scheduler.scheduler as scheduler

    root = Path(__file__).resolve().parents[2]
    exprs = [t["expr"] for p in json.loads((root / "deploy/grafana/annoray.json").read_text())["panels"] for t in p["targets"]]
    names = set(re.findall(r"\b(?:ray_)?annoray_[a-z_]+", " ".join(exprs)))
    api.admin.get("/api/health")
    exported = httpx.get(f"{api.url}/metrics").text
    gauges = Path(scheduler.__file__).read_text()
    for name in names:
        if name.startswith("ray_"):  # Ray prefixes the metrics an actor exports with ray_
            assert f'"{name.removeprefix("ray_")}"' in gauges, name
        else:
            assert re.sub(r"_(total|bucket)$", "", name) in exported, name


@pytest.mark.both_databases  # concurrency is the store's
def test_more_writers_than_threads_are_all_answered(settings, engine, clinical_config: str) -> None:
    """Forty completions sent at once to an API of two threads: on SQLite, writers once took every thread waiting
    for the write lock while its holder waited for a thread, and were answered 500 "database is locked"."""
    import asyncio

    settings = settings.model_copy(update={"api": settings.api.model_copy(update={"threads": 2})})
    token = settings.admin_token_path.read_text().strip()
    with BackgroundServer(create_app(settings, engine=engine)) as url:
        admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        pid = admin.post("/api/projects", json={"name": "p", "labeling_config": clinical_config}).json()["id"]
        admin.post(f"/api/projects/{pid}/tasks/import", json=[{"data": {"text": "Fieber seit Montag."}}]).raise_for_status()
        (task,) = admin.get(f"/api/projects/{pid}/tasks").json()["items"]

        async def send_all() -> list[int]:
            async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
                answers = await asyncio.gather(*(client.post(f"/api/projects/{pid}/tasks/{task['id']}/completions",
                                                             json={"result": [], "status": "submitted"}) for _ in range(40)))
            return [a.status_code for a in answers]

        statuses = asyncio.run(send_all())
        assert statuses == [201] * 40, statuses
        assert count_rows(engine, "completions") == 40
