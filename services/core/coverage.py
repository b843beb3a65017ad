"""Regional coverage as it is read: which cells a caller may see, and what level a cell has.

`GET /v1/coverage` (rules) and the dashboard's coverage pages (notify) read the stored cells
through these, so a page never shows a cell the API would refuse the same organisation, and both
give a cell the level the rules worker gave it when it stored the cell.
"""

from __future__ import annotations

from typing import TypeVarTuple

from sqlalchemy import ColumnElement, Select, select

from services.core.access import Caller
from services.core.db.models import CareType, Department, Region, RegionalCoverage
from services.core.domain import Level, Role

_Columns = TypeVarTuple("_Columns")


def visible_coverage(caller: Caller) -> ColumnElement[bool] | None:
    """Which coverage cells the caller may see; None: all of them."""
    match caller.role:
        case Role.NATIONAL_TABLE | Role.GOVERNANCE | Role.ADMIN:
            return None
        case Role.REGIONAL_TABLE:
            return RegionalCoverage.region_id == caller.region_id
        case Role.INSURER:
            return RegionalCoverage.region_id.in_(caller.coordinated_region_ids or {-1})
        case Role.PROVIDER:
            own = select(Department.region_id).where(
                Department.provider_id == caller.organisation_id
            )
            return RegionalCoverage.region_id.is_(None) | RegionalCoverage.region_id.in_(own)
    return RegionalCoverage.region_id == -1


def scoped_coverage(query: Select[*_Columns], caller: Caller) -> Select[*_Columns]:
    """`query` over the coverage cells, joined to their region (none for a national cell) and
    care type, kept to the cells the caller may see."""
    query = query.outerjoin(Region, Region.id == RegionalCoverage.region_id).join(
        CareType, CareType.code == RegionalCoverage.care_type_code
    )
    scope = visible_coverage(caller)
    return query if scope is None else query.where(scope)


def cell_level(row: RegionalCoverage, share: float) -> Level:
    """A stored cell's level: critical for a gap, threatened when much capacity is at risk."""
    if row.departments_active and row.no_alternative:
        return Level.CRITICAL
    if row.capacity_total and row.capacity_at_risk / row.capacity_total > share:
        return Level.THREATENED
    return Level.WATCH if row.threatened or row.critical else Level.OK
