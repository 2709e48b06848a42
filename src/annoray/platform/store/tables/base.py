"""The tables' base, the types every table shares and the enums of roles and statuses."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Enum,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase


JsonType = JSON().with_variant(JSONB(), "postgresql")


MAX_ID = 2**31 - 1
"""The largest id a row can have: ids are INTEGER columns, signed 32-bit on PostgreSQL."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JsonType, list[Any]: JsonType}


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])


class Role(str, enum.Enum):
    OWNER = "owner"
    MANAGER = "manager"
    ANNOTATOR = "annotator"
    REVIEWER = "reviewer"


class CompletionStatus(str, enum.Enum):
    DRAFT = "draft"
    SUBMITTED = "submitted"


class ReviewStatus(str, enum.Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
