"""The declarative base: one naming convention, timezone-aware timestamps, enums as checked text.

Enums are stored as text with a CHECK constraint rather than PostgreSQL enum types: adding a value
is then a one-line migration, and Alembic's autogenerate compares them without surprises.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import DateTime, Enum, MetaData, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every model; tables are plural, classes singular."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: DateTime(timezone=True)}


def text_enum(enum: type[StrEnum], name: str) -> Enum:
    """An enum column stored as VARCHAR with a named CHECK constraint listing the values."""
    return Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


def uuid_pk() -> Mapped[uuid.UUID]:
    """A UUID primary key made by the application, so ids are known before the insert."""
    return mapped_column(primary_key=True, default=uuid.uuid4)


def created_at() -> Mapped[datetime]:
    """When the row was made, by the database clock."""
    return mapped_column(server_default=func.now())


def updated_at() -> Mapped[datetime]:
    """When the row last changed, by the database clock."""
    return mapped_column(server_default=func.now(), onupdate=func.now())
