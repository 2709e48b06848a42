"""Who may do what: users, tokens, dashboard sessions, the audit log, licences and their seats, and teams with their
share of the cluster."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from annoray.platform.store.tables.base import _enum, Base, JsonType, utcnow

class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_service: Mapped[bool] = mapped_column(Boolean, default=False)  # a pipeline's account: API tokens, no dashboard
    active: Mapped[bool] = mapped_column(Boolean, default=True)  # disabled by an admin: no token, no session works
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TokenScope(str, enum.Enum):
    """What a token lets its holder do, within the holder's own rights: read (GET only), write (anything the user's
    roles allow but an admin's actions), admin (everything the user may do)."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


class ApiToken(Base):
    """A named API token of a user, for automation: stored as its hash, shown once, with a scope and an expiry."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[TokenScope] = mapped_column(_enum(TokenScope))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AuditEvent(Base):
    """A state-changing request: who, when, from where, what, and the outcome."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True)
    username: Mapped[str | None] = mapped_column(String(150), nullable=True)
    token_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the named token used; none: the user's own
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(2000))
    route: Mapped[str | None] = mapped_column(String(300), nullable=True)  # the route's template: /api/projects/{pid}
    status: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))  # ok | refused | error
    detail: Mapped[str | None] = mapped_column(String(300), nullable=True)


class WebSession(Base):
    """A person signed in to the dashboard: the cookie carries the key, the store only its hash."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))  # what every form that changes something carries
    one_time: Mapped[bool] = mapped_column(default=False)  # a sign-in link: used once to open a session, never a session
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class License(Base):
    """An uploaded license: its checked terms, and in ``document`` the signed original, secrets included.

    ``license_key`` is the document's public ``id``; the document itself never leaves the store.
    """

    __tablename__ = "licenses"

    id: Mapped[int] = mapped_column(primary_key=True)
    license_key: Mapped[str] = mapped_column(String(200), unique=True)
    issuer: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    seats: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    document: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LicenseLease(Base):
    """One seat of a license held by a training job or a server."""

    __tablename__ = "license_leases"
    __table_args__ = (
        Index("ix_license_leases_active", "license_id", "released_at"),
        Index("ix_license_leases_holder", "holder_kind", "holder_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    license_id: Mapped[int] = mapped_column(ForeignKey("licenses.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(64))
    holder_kind: Mapped[str] = mapped_column(String(32))
    holder_id: Mapped[int] = mapped_column(Integer)
    leased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Team(Base):
    """A team sharing the cluster: its nominal quota (``cpus``, ``memory_gb``, ``gpus``), how much beyond it it may
    borrow (None: as much as the other teams leave unused), and how many seats of each licence scope it may hold.
    Projects of no team belong to the default team, which has no row: no quota, it only borrows."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    quota: Mapped[dict[str, Any]] = mapped_column(default=dict)
    borrowing_limit: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)
    seats: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
