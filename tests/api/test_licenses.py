"""Licenses through HTTP: admins install signed licenses; forged, expired or malformed ones are refused; secrets stay in."""

import logging

import pytest

from ..conftest import SECRET, Api, german_project, license_document, refused

pytestmark = pytest.mark.both_databases  # seats are leased in transactions


def test_an_admin_installs_lists_and_deletes_a_license_and_its_secret_never_comes_back(api: Api, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    document = license_document(["ocr:training", "healthcare:*"], seats=3, key="LIC-clinic")
    created = api.admin.post("/api/licenses", json=document)
    assert created.status_code == 201, created.text
    body = created.json()
    assert {k: body[k] for k in ("key", "scopes", "seats", "leased", "leases", "expired")} == {
        "key": "LIC-clinic", "scopes": ["ocr:training", "healthcare:*"], "seats": 3, "leased": 0, "leases": [], "expired": False}
    listed = api.admin.get("/api/licenses")
    assert [lic["key"] for lic in listed.json()] == ["LIC-clinic"]
    for text in (created.text, listed.text):
        assert SECRET not in text and document["signature"] not in text and "Clinic GmbH" not in text
    assert api.admin.delete(f"/api/licenses/{body['id']}").status_code == 204
    assert api.admin.get("/api/licenses").json() == []
    assert SECRET not in caplog.text and document["signature"] not in caplog.text


@pytest.mark.parametrize("spoil,code", [
    (lambda d: d["license"].update(seats=50), "E703"),
    (lambda d: d["license"].update(scopes=["ocr:*"]), "E703"),
    (lambda d: d.update(signature=d["signature"][::-1]), "E703"),
    (lambda d: d["license"].update(issuer="acme"), "E702"),
    (lambda d: d["license"].pop("expires_at"), "E701"),
])
def test_a_forged_or_malformed_license_is_refused_with_the_reason_and_no_secret(api: Api, caplog, spoil, code: str) -> None:
    caplog.set_level(logging.DEBUG)
    document = license_document(["ocr:training"], seats=1)
    spoil(document)
    body = refused(api, lambda: api.admin.post("/api/licenses", json=document), 422)
    assert body["errors"][0]["message"].startswith(f"[{code}]")
    assert SECRET not in str(body) and SECRET not in caplog.text


def test_an_expired_license_is_refused(api: Api) -> None:
    body = refused(api, lambda: api.admin.post("/api/licenses", json=license_document(["ocr:training"], days=-2)), 422)
    assert body["errors"][0]["message"].startswith("[E704] the license expired on ")


def test_a_body_that_is_not_a_license_is_refused_without_being_echoed(api: Api) -> None:
    body = refused(api, lambda: api.admin.post("/api/licenses", json=[SECRET]), 422)
    assert SECRET not in str(body)
    body = refused(api, lambda: api.admin.post("/api/licenses", json={"license": {"secret": SECRET}, "signature": SECRET}), 422)
    assert "'license.id' is missing" in body["errors"][0]["message"] and SECRET not in str(body)


def test_the_same_license_twice_is_a_conflict(api: Api) -> None:
    document = license_document(["legal:*"], key="LIC-legal")
    first = api.admin.post("/api/licenses", json=document).json()
    body = refused(api, lambda: api.admin.post("/api/licenses", json=document), 409)
    assert body["detail"] == f"[E705] license 'LIC-legal' is already installed (license {first['id']}); delete it first to replace it"


def test_only_admins_manage_licenses(api: Api) -> None:
    user = api.user("uma")
    installed = api.admin.post("/api/licenses", json=license_document(["ocr:inference"])).json()
    refused(api, lambda: user.post("/api/licenses", json=license_document(["ocr:training"])), 403)
    refused(api, lambda: user.get("/api/licenses"), 403)
    refused(api, lambda: user.delete(f"/api/licenses/{installed['id']}"), 403)
    refused(api, lambda: api.admin.delete("/api/licenses/999"), 404)


def test_a_training_needing_a_scope_no_license_grants_is_refused_before_anything_is_queued(api: Api) -> None:
    pid = german_project(api.admin, "Kardiologie", model_type="healthcare")
    body = refused(api, lambda: api.admin.post(f"/api/projects/{pid}/trainings", json={}), 409)
    assert body["detail"] == ("[E707] needs a seat of license scope 'healthcare:training' and no unexpired license grants it; "
                              "an admin installs a license that grants it")
    api.admin.post("/api/licenses", json=license_document(["healthcare:inference"]))
    refused(api, lambda: api.admin.post(f"/api/projects/{pid}/trainings", json={}), 409)
    api.admin.post("/api/licenses", json=license_document(["healthcare:*"]))
    queued = api.admin.post(f"/api/projects/{pid}/trainings", json={})
    assert queued.status_code == 202, queued.text
    assert queued.json()["jobs"][0]["status"] == "queued"
