"""License documents and their seats.

A license document is JSON: ``{"license": {...signed fields...}, "signature": "<base64 Ed25519>"}``.
The signed fields are ``id``, ``issuer``, ``scopes``, ``seats`` and ``expires_at`` (ISO 8601 with
a time zone); any other field (a licensee, a secret, cloud keys) is kept in the store with the
document and never leaves it. The signature covers the canonical JSON of ``license`` (sorted keys,
no spaces, UTF-8) and is checked against the issuer's public key from settings.

Seats float: a scope's seats are the seats of every unexpired license that grants it, leased by
the scheduler to a job or server when it starts and returned when it ends.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from annoray.platform.errors import Conflict, ErrorDetail, Errors, InvalidInput
from annoray.platform.store.repositories import LicenseRepository, aware
from annoray.platform.store.tables import License

DOMAINS = ("ocr", "healthcare", "finance", "legal")
USES = ("training", "inference")
SCOPES = tuple(f"{d}:{u}" for d in DOMAINS for u in (*USES, "*"))
LICENSED_MODEL_TYPES = ("healthcare", "finance", "legal")
SIGNED_FIELDS = ("id", "issuer", "scopes", "seats", "expires_at")


def grants(scopes: Iterable[str], scope: str) -> bool:
    """Whether a license with ``scopes`` grants ``scope`` (``healthcare:*`` grants both uses)."""
    scopes = set(scopes)
    return scope in scopes or f"{scope.split(':', 1)[0]}:*" in scopes


def needed_scopes(use: str, *, visual: bool, model_type: str) -> tuple[str, ...]:
    """The scopes a job or server needs: ``ocr:<use>`` for Visual NER, ``<model_type>:<use>`` for licensed types."""
    return (*((f"ocr:{use}",) if visual else ()),
            *((f"{model_type}:{use}",) if model_type in LICENSED_MODEL_TYPES else ()))


def canonical(fields: Mapping[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_license(fields: Mapping[str, Any], private_key: Any) -> dict[str, Any]:
    """The document an issuer hands out: ``fields`` signed with its Ed25519 private key."""
    return {"license": dict(fields), "signature": base64.b64encode(private_key.sign(canonical(fields))).decode()}


def public_key_text(private_key: Any) -> str:
    """The issuer's public key as settings take it: base64 of the 32 raw bytes."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return base64.b64encode(private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def load_public_key(text: str) -> Any:
    """An Ed25519 public key from settings: PEM, or base64 of the 32 raw bytes."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    if text.lstrip().startswith("-----BEGIN"):
        key = load_pem_public_key(text.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 key")
        return key
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))


@dataclass(frozen=True)
class LicenseTerms:
    """The signed, checked terms of an uploaded license."""

    key: str
    issuer: str
    scopes: tuple[str, ...]
    seats: int
    expires_at: datetime


def _malformed(why: str, field: str) -> ErrorDetail:
    return ErrorDetail(Errors.E701.format(why=why), field=field)


def _fields(document: Any) -> tuple[dict[str, Any], list[ErrorDetail]]:
    """The signed fields, and every reason they are malformed (values are never quoted: they may be secret)."""
    if not isinstance(document, dict) or not isinstance(document.get("license"), dict) or "signature" not in document:
        return {}, [_malformed("send a JSON object with 'license' (the signed fields) and 'signature' (base64 Ed25519)", "license")]
    fields, errors = document["license"], []
    for name in SIGNED_FIELDS:
        if name not in fields:
            errors.append(_malformed(f"'license.{name}' is missing", f"license.{name}"))
    for name in ("id", "issuer"):
        if name in fields and (not isinstance(fields[name], str) or not fields[name].strip() or len(fields[name]) > 200):
            errors.append(_malformed(f"'license.{name}' must be a non-empty string of at most 200 characters", f"license.{name}"))
    scopes = fields.get("scopes")
    if "scopes" in fields:
        if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
            errors.append(_malformed("'license.scopes' must be a non-empty list of scopes", "license.scopes"))
        else:
            for i, scope in enumerate(scopes):
                if scope not in SCOPES:
                    errors.append(_malformed(f"'license.scopes[{i}]' is not one of: {', '.join(SCOPES)}", f"license.scopes[{i}]"))
    seats = fields.get("seats")
    if "seats" in fields and (isinstance(seats, bool) or not isinstance(seats, int) or seats < 1):
        errors.append(_malformed("'license.seats' must be a whole number of at least 1", "license.seats"))
    if "expires_at" in fields and _expiry(fields["expires_at"]) is None:
        errors.append(_malformed("'license.expires_at' must be an ISO 8601 date and time with a time zone, "
                                 "e.g. 2027-12-31T23:59:59Z", "license.expires_at"))
    if not isinstance(document["signature"], str):
        errors.append(_malformed("'signature' must be the base64 text of the Ed25519 signature", "signature"))
    return fields, errors


def _expiry(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def check_license(document: Any, issuers: Mapping[str, str], now: datetime) -> LicenseTerms:
    """The terms of a license document whose signature and dates hold.

    Raises `InvalidInput` saying what is malformed, that the issuer is not trusted here, that the
    signature does not match (forged or altered), or that the license has expired.
    """
    fields, errors = _fields(document)
    if errors:
        raise InvalidInput("the license is malformed", errors)
    issuer = fields["issuer"]
    if issuer not in issuers:
        raise InvalidInput("the license's issuer is not trusted", [ErrorDetail(Errors.E702.format(
            issuer=issuer, trusted=", ".join(sorted(issuers)) or "none"), field="license.issuer")])
    from cryptography.exceptions import InvalidSignature

    try:
        key = load_public_key(issuers[issuer])
    except (ValueError, binascii.Error) as exc:
        raise InvalidInput("the issuer's key is unusable", [ErrorDetail(Errors.E708.format(issuer=issuer, why=exc), field="license.issuer")]) from None
    try:
        signature = base64.b64decode(document["signature"], validate=True)
        key.verify(signature, canonical(fields))
    except (InvalidSignature, binascii.Error, ValueError):
        raise InvalidInput("the license signature is not valid", [ErrorDetail(Errors.E703.format(issuer=issuer), field="signature")]) from None
    expires_at = _expiry(fields["expires_at"])
    assert expires_at is not None
    if expires_at <= now:
        raise InvalidInput("the license has expired", [ErrorDetail(Errors.E704.format(when=expires_at.isoformat()), field="license.expires_at")])
    return LicenseTerms(fields["id"], issuer, tuple(dict.fromkeys(fields["scopes"])), fields["seats"], expires_at.astimezone(UTC))


@dataclass
class Seats:
    """One unexpired license as the scheduler sees it: what it grants and how many seats are free."""

    license_id: int
    scopes: tuple[str, ...]
    free: int


class SeatPool:
    """Floating seats of the installed licenses, taken by the jobs a scheduling pass starts."""

    def __init__(self, licenses: Iterable[Seats]):
        self.licenses = list(licenses)

    def granted(self, scope: str) -> bool:
        """Some unexpired license grants ``scope`` (its seats may all be leased now)."""
        return any(grants(s.scopes, scope) for s in self.licenses)

    def short(self, scopes: Sequence[str]) -> str | None:
        """The first scope with no free seat now (None when every one has a seat)."""
        if not scopes:
            return None
        pool = SeatPool(Seats(s.license_id, s.scopes, s.free) for s in self.licenses)
        for scope in scopes:
            if not pool._take_one(scope):
                return scope
        return None

    def take(self, scopes: Sequence[str]) -> list[tuple[str, int]]:
        """Take one seat per scope; returns (scope, license id) pairs. Call only when `short` is None."""
        taken = [(scope, self._take_one(scope)) for scope in scopes]
        assert all(license_id for _, license_id in taken)
        return [(scope, license_id) for scope, license_id in taken if license_id]

    def seats(self, scope: str) -> int:
        return sum(s.free for s in self.licenses if grants(s.scopes, scope))

    def _take_one(self, scope: str) -> int | None:
        for license in self.licenses:
            if license.free > 0 and grants(license.scopes, scope):
                license.free -= 1
                return license.license_id
        return None


def install_license(session: Session, document: Any, issuers: Mapping[str, str], now: datetime) -> License:
    """Check a license document and store it; the same license id twice is a conflict."""
    terms = check_license(document, issuers, now)
    repo = LicenseRepository(session)
    existing = repo.by_key(terms.key)
    if existing is not None:
        raise Conflict(Errors.E705.format(key=terms.key, license_id=existing.id))
    return repo.add(License(license_key=terms.key, issuer=terms.issuer, scopes=list(terms.scopes), seats=terms.seats,
                            expires_at=terms.expires_at, document=document))


def uninstall_license(session: Session, license_id: int) -> None:
    """Delete a license none of whose seats is leased."""
    repo = LicenseRepository(session)
    license = repo.get(license_id)
    leases = repo.active(license_id)
    if leases:
        holders = ", ".join(f"{lease.holder_kind} {lease.holder_id}" for lease in leases)
        raise Conflict(Errors.E706.format(license_id=license_id, count=len(leases), holders=holders))
    repo.delete(license)


def license_views(session: Session, now: datetime) -> list[dict[str, Any]]:
    """Every installed license as users may see it: terms, seats total and leased, holders; never the document."""
    repo = LicenseRepository(session)
    holders: dict[int, list[dict[str, Any]]] = {}
    for lease in repo.active():
        holders.setdefault(lease.license_id, []).append(
            {"scope": lease.scope, "holder": lease.holder_kind, "holder_id": lease.holder_id, "leased_at": lease.leased_at})
    return [{
        "id": license.id, "key": license.license_key, "issuer": license.issuer, "scopes": license.scopes,
        "seats": license.seats, "leased": len(holders.get(license.id, [])), "leases": holders.get(license.id, []),
        "expires_at": license.expires_at, "expired": aware(license.expires_at) <= now, "created_at": license.created_at,
    } for license in repo.all()]


def seat_pool(session: Session, now: datetime) -> SeatPool:
    """The free seats of every unexpired license, as the scheduler leases them."""
    repo = LicenseRepository(session)
    leased = repo.leased()
    return SeatPool(Seats(license.id, tuple(license.scopes), max(license.seats - leased.get(license.id, 0), 0))
                    for license in repo.unexpired(now))


def missing_scope(session: Session, scopes: Iterable[str], now: datetime) -> str | None:
    """The first of ``scopes`` no unexpired license grants (its seats may be leased now)."""
    scopes = list(scopes)
    if not scopes:  # most jobs need no license: read nothing
        return None
    pool = seat_pool(session, now)
    return next((scope for scope in scopes if not pool.granted(scope)), None)
