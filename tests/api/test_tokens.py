"""Named API tokens for automation: scopes that narrow, expiry, last use, revocation; service accounts."""

import threading
from datetime import UTC, datetime, timedelta

import httpx
import time_machine
from sqlalchemy import event, text

from ..conftest import Api, csrf_of, refused, signed_in


def make_token(client: httpx.Client, **body) -> dict:
    created = client.post("/api/tokens", json={"name": "ci", **body})
    assert created.status_code == 201, created.text
    return created.json()


def test_a_service_account_runs_a_pipeline_with_scoped_tokens(api: Api, clinical_config: str, clinical_tasks: list) -> None:
    made = api.admin.post("/api/users", json={"username": "pipeline", "service": True})
    assert made.status_code == 201 and made.json()["is_service"] is True
    owner = api.user("olivia")
    pid = owner.post("/api/projects", json={"name": "clinic", "labeling_config": clinical_config}).json()["id"]
    assert owner.post(f"/api/projects/{pid}/members", json={"username": "pipeline", "role": "manager"}).status_code == 201

    writer = make_token(api.admin, username="pipeline", scope="write", expires_in_days=30)
    reader = make_token(api.admin, username="pipeline", scope="read", name="nightly export")
    assert writer["username"] == "pipeline" and writer["token"].startswith("ar_") and writer["expires_at"]
    with api.client(writer["token"]) as pipeline, api.client(reader["token"]) as exporter:
        assert pipeline.post(f"/api/projects/{pid}/tasks/import", json=clinical_tasks[:3]).status_code == 201
        assert exporter.get(f"/api/projects/{pid}/tasks").json()["total"] == 3
        body = refused(api, lambda: exporter.post(f"/api/projects/{pid}/tasks/import", json=clinical_tasks[:1]), 403)
        assert body["detail"].startswith("[E411]")
        listed = {t["name"]: t for t in pipeline.get("/api/tokens").json()}  # a read's use too, noted out of band
        assert set(listed) == {"ci", "nightly export"} and "token" not in listed["ci"]
        assert listed["ci"]["last_used_at"] and listed["nightly export"]["last_used_at"]

        # Revoked: refused from the next request on, and still listed as revoked.
        assert pipeline.delete(f"/api/tokens/{reader['id']}").status_code == 204
        body = refused(api, lambda: exporter.get(f"/api/projects/{pid}/tasks"), 401)
        assert body["detail"].startswith("[E410]") and "revoked" in body["detail"]
        assert pipeline.get("/api/tokens").json()[0]["revoked_at"]

    # A service account never signs in to the dashboard, with any token.
    web = httpx.Client(base_url=api.url)
    csrf = csrf_of(web.get("/ui/sign-in").text)
    page = web.post("/ui/sign-in", data={"token": made.json()["token"], "csrf": csrf})
    assert page.status_code == 403 and "[E413]" in page.text and "annoray_session" not in page.cookies
    # Only hashes are stored.
    with api.engine.connect() as db:
        stored = db.execute(text("SELECT token_hash FROM api_tokens")).scalars().all()
    assert len(stored) == 2 and writer["token"] not in stored and all(len(h) == 64 for h in stored)


def test_scopes_narrow_and_never_widen(api: Api) -> None:
    olivia = api.user("olivia")
    body = refused(api, lambda: olivia.post("/api/tokens", json={"name": "x", "scope": "admin"}), 422)
    assert body["errors"][0]["message"].startswith("[E412]") and "not an admin" in body["errors"][0]["message"]
    admin_write = make_token(api.admin, scope="write")
    with api.client(admin_write["token"]) as narrowed:
        # An admin's write token acts as an ordinary user: no admin action, no wider token, no token for others.
        assert narrowed.get("/api/users/me").json()["is_admin"] is False
        assert refused(api, lambda: narrowed.post("/api/users", json={"username": "eve"}), 403)["detail"].startswith("[E403]")
        body = refused(api, lambda: narrowed.post("/api/tokens", json={"name": "up", "scope": "admin"}), 422)
        assert "with a 'write' token" in body["detail"]
        refused(api, lambda: narrowed.post("/api/tokens", json={"name": "x", "username": "olivia"}), 403)
        refused(api, lambda: narrowed.get("/api/tokens", params={"all": "true"}), 403)
    assert api.admin.get("/api/users/me").json()["is_admin"] is True, "the narrowing never reached the stored user"
    # Another user's token is not yours to revoke; an admin may, and sees every token.
    mine, bob = make_token(olivia, scope="read"), api.user("bob")
    assert refused(api, lambda: bob.delete(f"/api/tokens/{mine['id']}"), 403)["detail"].startswith("[E414]")
    assert {t["username"] for t in api.admin.get("/api/tokens", params={"all": "true"}).json()} == {"admin", "olivia"}
    assert api.admin.delete(f"/api/tokens/{mine['id']}").status_code == 204
    assert api.admin.delete(f"/api/tokens/{mine['id']}").status_code == 204, "revoking twice changes nothing"


def test_a_token_never_makes_one_that_outlives_it(api: Api) -> None:
    short = make_token(api.user("olivia"), scope="write", expires_in_days=1)
    with api.client(short["token"]) as client:
        for body in ({"expires_in_days": None}, {"expires_in_days": 2}, {}):  # {}: the default, 90 days
            refused_body = refused(api, lambda: client.post("/api/tokens", json={"name": "forever", **body}), 422)
            assert refused_body["detail"].startswith("[E412]") and "outlive" in refused_body["detail"]
            assert refused_body["errors"][0]["field"] == "expires_in_days"
        assert make_token(client, expires_in_days=0.5)["expires_at"] < short["expires_at"]


def test_an_expired_token_is_refused_with_the_reason(api: Api) -> None:
    short = make_token(api.user("olivia"), expires_in_days=1)
    with api.client(short["token"]) as late, time_machine.travel(datetime.now(UTC) + timedelta(days=1, seconds=1), tick=True):
        body = refused(api, lambda: late.get("/api/users/me"), 401)
    assert body["detail"].startswith("[E410]") and "valid until" in body["detail"]
    body = refused(api, lambda: api.admin.post("/api/tokens", json={"name": "x", "expires_in_days": 0}), 422)
    assert body["errors"][0]["field"] == "body.expires_in_days"


def test_a_disabled_user_is_locked_out_at_once_and_comes_back_with_no_token(api: Api) -> None:
    olivia = api.user("olivia")
    named = make_token(olivia, scope="read")
    web = signed_in(api, olivia)
    assert web.get("/ui/").status_code == 200
    assert refused(api, lambda: olivia.patch("/api/users/olivia", json={"active": False}), 403)["detail"].startswith("[E403]")
    body = refused(api, lambda: api.admin.patch("/api/users/admin", json={"active": False}), 403)
    assert body["detail"].startswith("[E416]")

    disabled = api.admin.patch("/api/users/olivia", json={"active": False})
    assert disabled.status_code == 200 and disabled.json()["active"] is False
    assert olivia.get("/api/users/me").status_code == 401, "the user's own token"
    with api.client(named["token"]) as automation:
        assert automation.get("/api/users/me").status_code == 401, "a named token"
    assert web.get("/ui/").headers["location"] == "/ui/sign-in", "the dashboard session"
    assert {u["username"]: u["active"] for u in api.admin.get("/api/users").json()} == {"admin": True, "olivia": False}

    assert api.admin.patch("/api/users/olivia", json={"active": True}).json()["active"] is True
    assert olivia.get("/api/users/me").status_code == 401, "enabled again with no token"
    fresh = make_token(api.admin, username="olivia", name="back")
    with api.client(fresh["token"]) as back:
        assert back.get("/api/users/me").json()["username"] == "olivia"
    assert refused(api, lambda: api.admin.patch("/api/users/nobody", json={"active": False}), 404)


def test_a_user_rotates_their_own_token_and_the_old_one_stops(api: Api) -> None:
    olivia = api.user("olivia")
    named = make_token(olivia, scope="write")
    with api.client(named["token"]) as automation:
        body = refused(api, lambda: automation.post("/api/users/me/token"), 403)
    assert body["detail"].startswith("[E417]"), "a named token never widens itself into the user's own"
    rotated = olivia.post("/api/users/me/token")
    assert rotated.status_code == 200 and rotated.json()["token"].startswith("ar_")
    assert olivia.get("/api/users/me").status_code == 401
    with api.client(rotated.json()["token"]) as renewed:
        assert renewed.get("/api/users/me").json()["username"] == "olivia"


def test_a_read_never_writes_and_a_tokens_last_use_is_written_out_of_band(api: Api, clinical_config: str) -> None:
    """No statement a GET sends changes a row (the token's use is only noted), and the note reaches the database in
    a transaction of its own."""
    from annoray.api.ops import TokenUses
    from annoray.platform.store.db import session_factory

    pid = api.admin.post("/api/projects", json={"name": "clinic", "labeling_config": clinical_config}).json()["id"]
    reader = make_token(api.admin, scope="read")
    writes: list[str] = []

    def seen(_conn, _cursor, statement: str, *_args) -> None:
        if threading.current_thread().name == "annoray-token-uses" or "INSERT INTO audit_events" in statement:
            return  # the token thread's own; the trail of the POST above, written after its answer
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            writes.append(statement)

    event.listen(api.engine, "before_cursor_execute", seen)
    try:
        with api.client(reader["token"]) as client:
            for path in ("/api/projects", f"/api/projects/{pid}", f"/api/projects/{pid}/tasks", "/api/models", "/api/tokens",
                         "/api/engines", "/api/health"):
                assert client.get(path).status_code == 200, path
            (listed,) = client.get("/api/tokens").json()
    finally:
        event.remove(api.engine, "before_cursor_execute", seen)
    assert writes == [], writes
    assert listed["last_used_at"], "the listing shows the use noted and not yet written"

    uses = TokenUses(session_factory(api.engine, write=True))
    used = datetime.now(UTC)
    uses.note(reader["id"], used)
    with api.engine.begin() as db:
        db.execute(text("UPDATE api_tokens SET last_used_at = NULL WHERE id = :id"), {"id": reader["id"]})
    uses.flush()
    with api.engine.connect() as db:
        stored = db.execute(text("SELECT last_used_at FROM api_tokens WHERE id = :id"), {"id": reader["id"]}).scalar_one()
    assert stored is not None and uses.last(reader["id"], None) is None, "written once, and no longer pending"
