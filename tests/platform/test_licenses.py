"""License documents: Ed25519 signatures against the trusted issuers, expiry, malformed documents; floating seats."""

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from annoray.platform.access.licenses import SCOPES, SeatPool, Seats, check_license, grants, needed_scopes, public_key_text, sign_license
from annoray.platform.errors import InvalidInput

from ..conftest import ISSUER, SECRET, issuer_key, license_document

NOW = datetime.now(UTC)
TRUSTED = {ISSUER: public_key_text(issuer_key())}


def refusal(document, issuers=TRUSTED) -> list[str]:
    with pytest.raises(InvalidInput) as caught:
        check_license(document, issuers, NOW)
    messages = [e.message for e in caught.value.errors]
    assert all(SECRET not in m for m in messages), "a refusal quoted the license's secret"
    return messages


def test_a_signed_license_gives_its_terms_in_utc() -> None:
    document = license_document(["ocr:training", "healthcare:*"], seats=3, key="LIC-1")
    document["license"]["expires_at"] = "2031-06-30T23:00:00+02:00"
    document = sign_license(document["license"], issuer_key())
    terms = check_license(document, TRUSTED, NOW)
    assert (terms.key, terms.issuer, terms.scopes, terms.seats) == ("LIC-1", ISSUER, ("ocr:training", "healthcare:*"), 3)
    assert terms.expires_at == datetime(2031, 6, 30, 21, 0, tzinfo=UTC)


def test_the_issuer_key_may_be_pem() -> None:
    pem = issuer_key().public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    assert check_license(license_document(["legal:*"]), {ISSUER: pem}, NOW).scopes == ("legal:*",)


def test_an_altered_license_is_refused_as_forged() -> None:
    document = license_document(["ocr:training"], seats=1)
    document["license"]["seats"] = 100
    assert refusal(document) == [f"[E703] the signature does not match issuer '{ISSUER}''s key: "
                                 "the license was altered or not signed by that issuer"]


def test_a_license_signed_by_another_key_is_refused_as_forged() -> None:
    document = sign_license(license_document(["ocr:training"])["license"], Ed25519PrivateKey.generate())
    assert refusal(document)[0].startswith("[E703]")
    document["signature"] = base64.b64encode(b"short").decode()
    assert refusal(document)[0].startswith("[E703]")


def test_an_expired_license_is_refused_with_the_date() -> None:
    document = license_document(["finance:training"], days=-1)
    when = datetime.fromisoformat(document["license"]["expires_at"]).isoformat()
    assert refusal(document) == [f"[E704] the license expired on {when}"]


def test_an_untrusted_issuer_is_refused_naming_the_trusted_ones() -> None:
    document = license_document(["ocr:training"])
    assert refusal(document, {"someone-else": TRUSTED[ISSUER]}) == [
        f"[E702] issuer '{ISSUER}' is not trusted here; trusted issuers (settings licenses.issuers): someone-else"]


def test_a_malformed_license_gets_every_reason_and_no_secret_back() -> None:
    assert refusal({"secret": SECRET}) == [
        "[E701] the license document is malformed: send a JSON object with 'license' (the signed fields) and "
        "'signature' (base64 Ed25519)"]
    fields = {"id": "", "issuer": ISSUER, "scopes": ["ocr:everything", SECRET], "seats": 0, "expires_at": "next year",
              "secret": SECRET}
    messages = refusal({"license": fields, "signature": 7})
    assert messages[0] == "[E701] the license document is malformed: 'license.id' must be a non-empty string of at most 200 characters"
    assert [m for m in messages if "'license.scopes[" in m] == [
        f"[E701] the license document is malformed: 'license.scopes[{i}]' is not one of: {', '.join(SCOPES)}" for i in (0, 1)]
    assert any("'license.seats' must be a whole number of at least 1" in m for m in messages)
    assert any("'license.expires_at' must be an ISO 8601 date and time with a time zone" in m for m in messages)
    assert any("'signature' must be the base64 text" in m for m in messages)
    missing = refusal({"license": {"issuer": ISSUER}, "signature": ""})
    assert [m.split(": ", 1)[1] for m in missing] == [f"'license.{f}' is missing" for f in ("id", "scopes", "seats", "expires_at")]


def test_a_naive_expiry_is_malformed() -> None:
    document = license_document(["ocr:training"])
    document["license"]["expires_at"] = (NOW + timedelta(days=3)).replace(tzinfo=None).isoformat()
    assert "with a time zone" in refusal(sign_license(document["license"], issuer_key()))[0]


def test_an_unusable_issuer_key_in_settings_is_named() -> None:
    assert refusal(license_document(["ocr:training"]), {ISSUER: "bm90IGEga2V5"})[0].startswith(
        f"[E708] the public key of issuer '{ISSUER}' in settings is not an Ed25519 key")


def test_scopes_a_job_needs_and_wildcards() -> None:
    assert needed_scopes("training", visual=True, model_type="open_source") == ("ocr:training",)
    assert needed_scopes("inference", visual=True, model_type="healthcare") == ("ocr:inference", "healthcare:inference")
    assert needed_scopes("training", visual=False, model_type="open_source") == ()
    assert grants(["healthcare:*"], "healthcare:inference") and not grants(["healthcare:*"], "legal:training")
    assert not grants(["ocr:inference"], "ocr:training")


def test_seats_float_across_licenses_and_run_out() -> None:
    pool = SeatPool([Seats(1, ("ocr:training",), 1), Seats(2, ("ocr:*", "healthcare:training"), 1)])
    assert pool.seats("ocr:training") == 2 and pool.granted("healthcare:training") and not pool.granted("legal:training")
    assert pool.take(["ocr:training"]) == [("ocr:training", 1)]
    assert pool.short(["ocr:training", "healthcare:training"]) == "healthcare:training", "one seat cannot serve two scopes"
    assert pool.short(["ocr:training"]) is None and pool.seats("ocr:training") == 1, "short() takes nothing"
    assert pool.take(["ocr:training"]) == [("ocr:training", 2)]
    assert pool.short(["ocr:training"]) == "ocr:training" and pool.granted("ocr:training")
