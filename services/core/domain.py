"""Code lists and value rules of the domain, shared by every service.

The Dutch terms of the source documents map to these names as in DESIGN.md's glossary.
"""

from __future__ import annotations

import re
from enum import StrEnum


class OrgKind(StrEnum):
    """What part an organisation plays in the governance of crucial ggz."""

    PROVIDER = "provider"  # zorgaanbieder, identified by its AGB code
    INSURER = "insurer"  # zorgverzekeraar, identified by its UZOVI code
    REGIONAL_TABLE = "regional_table"  # regionale tafel of one IZA region
    NATIONAL_TABLE = "national_table"  # landelijke tafel for supra-regional care
    GOVERNANCE = "governance"  # bestuurlijk overleg cruciale ggz (BO)
    OPERATOR = "operator"  # the team that runs Vroegsignaal


class Role(StrEnum):
    """What an API key or a dashboard user may do; DESIGN.md, "Roles"."""

    PROVIDER = "provider"
    INSURER = "insurer"
    REGIONAL_TABLE = "regional_table"
    NATIONAL_TABLE = "national_table"
    GOVERNANCE = "governance"
    ADMIN = "admin"


# A key or user acts for its organisation, so its role follows from the organisation's kind.
ROLE_FOR_KIND: dict[OrgKind, Role] = {
    OrgKind.PROVIDER: Role.PROVIDER,
    OrgKind.INSURER: Role.INSURER,
    OrgKind.REGIONAL_TABLE: Role.REGIONAL_TABLE,
    OrgKind.NATIONAL_TABLE: Role.NATIONAL_TABLE,
    OrgKind.GOVERNANCE: Role.GOVERNANCE,
    OrgKind.OPERATOR: Role.ADMIN,
}


class RegionSource(StrEnum):
    """Who last decided a region's name, mandate municipality and active flag."""

    PACKAGED = "packaged"  # the list shipped with the package; `seed` keeps it up to date
    IMPORTED = "imported"  # an operator's `region import`; `seed` leaves the region alone


class Cluster(StrEnum):
    """The clusters of crucial care (seed 001 § 3.2 and Figure 1; crisis beds from seed 000)."""

    ACUTE = "acute"
    OUTREACH = "outreach"
    CLINICAL = "clinical"
    SECURE = "secure"
    HIGHLY_SPECIALISED = "highly_specialised"
    CRISIS_BEDS = "crisis_beds"


class Scope(StrEnum):
    """Whether a department serves its own region or more (bovenregionaal)."""

    REGIONAL = "regional"
    SUPRA_REGIONAL = "supra_regional"


class DepartmentStatus(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"


class SignalKind(StrEnum):
    """The kinds of department signal in the Signal v1 contract."""

    STAFFING = "staffing"
    WAITLIST = "waitlist"
    CAPACITY = "capacity"
    ADMISSION_STOP = "admission_stop"
    CLOSURE = "closure"
    CONTRACT = "contract"


class SignalSource(StrEnum):
    """How a signal reached us; kept for the ingest counters and for tracing."""

    API = "api"
    WEBHOOK = "webhook"
    CSV = "csv"
    REPLAY = "replay"
    DEMO = "demo"


class Level(StrEnum):
    """Assessment level: ok · watch (aandacht) · threatened (dreigend) · critical (acuut)."""

    OK = "ok"
    WATCH = "watch"
    THREATENED = "threatened"
    CRITICAL = "critical"


class AlertKind(StrEnum):
    DEPARTMENT = "department"
    COVERAGE = "coverage"  # a region (or the country) left without unthreatened care of a type


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class EscalationStep(StrEnum):
    """The ladder: the provider with its insurer, the regional table, the national table."""

    PROVIDER = "provider"
    REGIONAL_TABLE = "regional_table"
    NATIONAL_TABLE = "national_table"


class AlertEventType(StrEnum):
    OPENED = "opened"
    UPDATED = "updated"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    COMMENTED = "commented"
    SILENCED = "silenced"
    UNSILENCED = "unsilenced"
    REANNOUNCED = "reannounced"
    RESOLVED = "resolved"


class DeliveryChannel(StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class DigestStatus(StrEnum):
    MADE = "made"
    PUBLISHED = "published"


AGB_PATTERN = re.compile(r"^[0-9]{8}$")
UZOVI_PATTERN = re.compile(r"^[0-9]{4}$")
SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def is_agb(value: str) -> bool:
    """An AGB code is eight digits; the first two name the kind of provider (Vektis COD016)."""
    return bool(AGB_PATTERN.match(value))


def is_uzovi(value: str) -> bool:
    """A UZOVI code is four digits (care offices use 5501-5532)."""
    return bool(UZOVI_PATTERN.match(value))


def slugify(name: str) -> str:
    """A stable, readable code from a Dutch name: 'Apeldoorn/Zutphen' -> 'apeldoorn-zutphen'."""
    ascii_name = (
        name.lower()
        .replace("'", "")
        .translate(str.maketrans("àáâäèéêëìíîïòóôöùúûü", "aaaaeeeeiiiioooouuuu"))
    )
    return re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-")
