"""The NZa notification draft: what the coordinating insurer must report when care is about to stop.

The Regeling meldplicht continuïteit van cruciale zorg (art. 5.2) asks for: the provider and its
contact, the number of insured people affected, the form(s) of crucial care, to what extent care
cannot continue, from what date, the reason, and the alternatives investigated and the purchase
efforts made. The draft fills in what Vroegsignaal knows — from the alert, the department's newest
signals and the coverage of its region and the regions beside it — and marks each field the
insurer must still add (`to_add`). It is a draft for a person to complete and send; nothing is
sent to the NZa from here.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from functools import cache
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db.models import Assessment, Department, Organisation, Region, Signal
from services.core.domain import DepartmentStatus, Level, SignalKind
from services.ingest.replay_nza_regions import municipality_regions
from services.notify.parties import AlertContext

REGULATION = "Regeling meldplicht continuïteit van cruciale zorg, artikel 5.2"
TO_ADD = "aan te vullen door de coördinerend zorgverzekeraar"


class Field_(BaseModel):
    """One item of the notification: its value, where it came from, or that it is to be added."""

    label: str
    value: str | int | None
    source: str | None = Field(description="where Vroegsignaal found it; null: to be added")
    to_add: bool


class Alternative(BaseModel):
    department: str
    name: str
    provider: str
    region: str
    level: Level
    capacity: int | None
    in_region: bool = Field(description="in the alert's region, or a region beside it")


class NzaNotification(BaseModel):
    regulation: str
    alert_id: str
    made_at: datetime
    fields: dict[str, Field_]
    alternatives: list[Alternative] = Field(description="unthreatened care of this type near by")
    to_add: list[str] = Field(description="the fields the insurer must still fill in")


def _known(label: str, value: str | int | None, source: str) -> Field_:
    if value is None or value == "":
        return Field_(label=label, value=None, source=None, to_add=True)
    return Field_(label=label, value=value, source=source, to_add=False)


def _missing(label: str, hint: str | None = None) -> Field_:
    return Field_(label=label, value=hint, source=None, to_add=True)


@cache
def _provinces_of_regions() -> dict[str, frozenset[str]]:
    """Region code → the provinces its municipalities lie in (from the municipality table)."""
    found: dict[str, set[str]] = defaultdict(set)
    for placement in municipality_regions().values():
        if placement.region:
            found[placement.region].add(placement.province)
    return {region: frozenset(provinces) for region, provinces in found.items()}


def neighbouring_regions(region: str) -> frozenset[str]:
    """Regions sharing a province with this one: the working stand-in for "beside it" (there is
    no published adjacency of IZA regions; see docs/escalation.md)."""
    provinces = _provinces_of_regions()
    mine = provinces.get(region, frozenset())
    return frozenset(r for r, p in provinces.items() if r != region and p & mine)


async def _newest(session: AsyncSession, department_id: Any, kind: SignalKind) -> Signal | None:
    return (
        await session.execute(
            select(Signal)
            .where(Signal.department_id == department_id, Signal.kind == kind)
            .order_by(Signal.observed_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def draft(session: AsyncSession, context: AlertContext, now: datetime) -> NzaNotification:
    """Fill the notification from what the system knows about the alert's department."""
    alert = context.alert
    department = context.department
    fields: dict[str, Field_] = {}
    fields["provider"] = _known(
        "Zorgaanbieder",
        f"{context.provider_name} (AGB {context.provider_agb})" if context.provider_name else None,
        "register van Vroegsignaal",
    )
    fields["contact"] = _missing("Contactpersoon bij de zorgaanbieder")
    fields["department"] = _known(
        "Afdeling", f"{department.name} ({department.code})" if department else None, "register"
    )
    fields["care"] = _known(
        "Vorm(en) van cruciale zorg",
        f"{context.care_type_name} ({alert.care_type_code})",
        "register",
    )
    closure = (
        await _newest(session, alert.department_id, SignalKind.CLOSURE) if department else None
    )
    stop = (
        await _newest(session, alert.department_id, SignalKind.ADMISSION_STOP)
        if department
        else None
    )
    waitlist = (
        await _newest(session, alert.department_id, SignalKind.WAITLIST) if department else None
    )
    extent: str | None = None
    since: str | None = None
    reason: str | None = None
    source = ""
    if closure is not None:
        data = closure.data
        scope = "geheel" if data.get("scope") == "full" else "gedeeltelijk"
        lost = data.get("capacity_lost")
        capacity = f", {lost} van {department.capacity} plaatsen" if lost and department else ""
        extent = f"Sluiting, {scope}{capacity}"
        since = str(data.get("effective_date"))
        reason = data.get("reason") or closure.note
        source = f"sluitingssignaal van {closure.observed_at.date().isoformat()}"
    elif stop is not None and stop.data.get("active"):
        data = stop.data
        until = data.get("expected_until")
        extent = "Opnamestop" + (f", verwacht tot {until}" if until else "")
        since = str(data.get("since")) if data.get("since") else stop.observed_at.date().isoformat()
        reason = data.get("reason") or stop.note
        source = f"opnamestopsignaal van {stop.observed_at.date().isoformat()}"
    fields["extent"] = _known("In welke mate de zorg niet kan worden voortgezet", extent, source)
    fields["from"] = _known("Vanaf welke datum", since, source)
    if reason is None and alert.reasons:
        reason = "; ".join(
            str(r.get("explanation_nl") or r.get("explanation")) for r in alert.reasons
        )
        source = "de redenen van de melding"
    fields["reason"] = _known("De reden", reason, source)
    waiting = waitlist.data.get("waiting_count") if waitlist is not None else None
    hint = f"bekend: {waiting} wachtenden" if waiting is not None else None
    if department is not None and department.capacity:
        hint = (hint + "; " if hint else "bekend: ") + f"capaciteit {department.capacity} plaatsen"
    fields["insured"] = _missing("Aantal getroffen verzekerden", hint)
    alternatives = await _alternatives(session, context)
    fields["alternatives"] = _known(
        "Onderzochte alternatieven",
        f"{len(alternatives)} onbedreigde afdeling(en) van dit zorgtype in de regio en de regio's"
        " ernaast (zie lijst); welke zijn benaderd en met welk resultaat is aan te vullen"
        if alternatives
        else None,
        "regionale dekking in Vroegsignaal",
    )
    fields["purchase"] = _missing("Inkoopinspanningen van de zorgverzekeraar")
    return NzaNotification(
        regulation=REGULATION,
        alert_id=str(alert.id),
        made_at=now,
        fields=fields,
        alternatives=alternatives,
        to_add=[key for key, f in fields.items() if f.to_add],
    )


async def _alternatives(session: AsyncSession, context: AlertContext) -> list[Alternative]:
    """Active departments of the same care type near by whose newest judgement is not at risk."""
    alert = context.alert
    regions = {context.region_code} if context.region_code else set()
    if context.region_code:
        regions |= neighbouring_regions(context.region_code)
    latest = (
        select(Assessment.level)
        .where(Assessment.department_id == Department.id)
        .order_by(Assessment.assessed_at.desc(), Assessment.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = (
        select(Department, Organisation.name, Region.code, latest)
        .join(Organisation, Organisation.id == Department.provider_id)
        .join(Region, Region.id == Department.region_id)
        .where(
            Department.care_type_code == alert.care_type_code,
            Department.status == DepartmentStatus.ACTIVE,
        )
        .order_by(Region.code, Department.code)
    )
    if alert.department_id is not None:
        query = query.where(Department.id != alert.department_id)
    if regions:
        query = query.where(Region.code.in_(regions))
    found = []
    for department, provider, region, level in (await session.execute(query)).all():
        judged = Level(level) if level else Level.OK
        if judged in (Level.THREATENED, Level.CRITICAL):
            continue
        found.append(
            Alternative(
                department=department.code,
                name=department.name,
                provider=provider,
                region=region,
                level=judged,
                capacity=department.capacity,
                in_region=region == context.region_code,
            )
        )
    found.sort(key=lambda a: (not a.in_region, a.region, a.department))
    return found
