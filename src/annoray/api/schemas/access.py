"""Bodies of users, tokens, licences and the audit log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from annoray.api.schemas.common import Timestamp
from annoray.platform.store.tables import TokenScope


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=150, pattern=r"^[A-Za-z0-9_.@-]+$")
    service: bool = Field(False, description="A service account, for pipelines: it uses API tokens and never signs in "
                          "to the dashboard.")


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    is_admin: bool = False
    is_service: bool = False
    active: bool = Field(True, description="False: disabled by an admin; none of the user's tokens or sessions works.")


class UserCreated(UserOut):
    token: str = Field(description="The user's API token; shown this once only.")


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    active: bool = Field(description="false: every token and dashboard session of the user stops at once; true: the user "
                         "comes back with no token (an admin makes one: POST /api/tokens with its username).")


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100, description="What the token is for, as its list shows it.")
    scope: TokenScope = Field(TokenScope.WRITE, description="read: GET only; write: what the user's roles allow but "
                              "an admin's actions; admin: everything the user may do (an admin's tokens only).")
    expires_in_days: float | None = Field(90, gt=0, le=3650, description="Days until it stops working; null: never.")
    username: str | None = Field(None, max_length=150, description="Whose token (admins only; default: yours), for "
                                 "example a service account's.")


class TokenOut(BaseModel):
    id: int
    name: str
    username: str
    scope: TokenScope
    created_at: Timestamp
    expires_at: Timestamp | None
    last_used_at: Timestamp | None
    revoked_at: Timestamp | None


class TokenCreated(TokenOut):
    token: str = Field(description="The token; shown this once only, stored only as its hash.")


class LicenseDocument(BaseModel):
    """A license as its issuer hands it out; every field besides the terms (secrets included) stays in the store."""

    license: dict[str, Any] = Field(description="The signed fields: id, issuer, scopes, seats, expires_at (ISO 8601 with a time zone), and any others.")
    signature: str = Field(description="Base64 Ed25519 signature of the canonical JSON of `license` (sorted keys, no spaces, UTF-8).")


class LeaseOut(BaseModel):
    scope: str
    holder: str = Field(description="What holds the seat: `training` or `server`.")
    holder_id: int
    leased_at: Timestamp


class LicenseOut(BaseModel):
    id: int
    key: str = Field(description="The license's public id from its document.")
    issuer: str
    scopes: list[str]
    seats: int
    leased: int
    leases: list[LeaseOut]
    expires_at: Timestamp
    expired: bool
    created_at: Timestamp


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    at: Timestamp
    user_id: int | None
    username: str | None = Field(description="Who: the user the request's token or dashboard session belongs to.")
    token_id: int | None = Field(description="The named API token used; null: the user's own token or a session.")
    address: str | None = Field(description="The client's address, as the API process saw it.")
    method: str
    path: str
    route: str | None = Field(description="The route's template, for grouping: /api/projects/{pid}/tasks/import.")
    status: int
    outcome: Literal["ok", "refused", "error"]
    detail: str | None = Field(description="The error code of a refusal, such as [E402].")


class Quota(BaseModel):
    """An amount of the cluster, as teams' quotas and limits give it."""

    model_config = ConfigDict(extra="forbid")
    cpus: float = Field(0, ge=0, le=1_000_000, description="CPU cores.")
    memory_gb: float = Field(0, ge=0, le=1_000_000_000, description="Memory, in GiB.")
    gpus: float = Field(0, ge=0, le=100_000, description="GPUs.")


SeatCounts = dict[str, Annotated[int, Field(ge=0, le=100_000)]]


class TeamCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    quota: Quota = Field(description="Nominal quota: what the team may always take back from borrowers.")
    borrowing_limit: Quota | None = Field(None, description="How much beyond its quota the team may borrow of what "
                                          "others leave unused; null: no limit.")
    seats: SeatCounts = Field(default_factory=dict, description="Seats of each licence scope the team's jobs may "
                                  "hold at once.", max_length=100)


class TeamUpdate(BaseModel):
    """What to change; a field left out stays (``borrowing_limit: null`` lifts the limit)."""

    model_config = ConfigDict(extra="forbid")
    quota: Quota | None = None
    borrowing_limit: Quota | None = None
    seats: SeatCounts | None = Field(None, max_length=100)


class TeamOut(BaseModel):
    name: str
    quota: dict[str, float]
    borrowing_limit: dict[str, float] | None
    seats: dict[str, int]
    projects: list[int] = Field(description="The team's projects' ids.")
    usage: dict[str, float] = Field(description="What its running trainings and servers hold now.")
    borrowed: dict[str, float] = Field(description="What of its usage is beyond its quota, lent by other teams.")


class ProjectUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    team: str | None = Field(None, max_length=100, description="The team whose quota the project's work counts against "
                             "(null or 'default': none).")
    priority: int | None = Field(None, ge=-1000, le=1000, description="Priority of its trainings when a request gives none.")
