"""The region page: coverage per care type, the open alerts and the departments of one IZA
region, each as far as the viewer may see them (a region they have nothing in answers 403)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from services.core.access import visible_departments
from services.core.db.models import Assessment, CareType, Department, Organisation, Region
from services.notify.dashboard import queries
from services.notify.dashboard.web import PageError, open_page
from services.notify.runtime import runtime_of
from services.rules.api import DEFAULT_SHARE

router = APIRouter(include_in_schema=False)
CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


@router.get("/regions/{code}")
async def region_page(request: Request, code: str) -> Response:
    if not CODE.match(code):
        raise PageError(404, "not_found")
    now = runtime_of(request).clock()
    share = float(getattr(request.app.state, "no_alternative_share", DEFAULT_SHARE))
    async with open_page(request) as page:
        region = await page.session.scalar(select(Region).where(Region.code == code))
        if region is None:
            raise PageError(404, "not_found")
        if code not in {c for c, _ in await queries.visible_regions(page.session, page.caller)}:
            raise PageError(403, "forbidden")
        cells = await queries.coverage_cells(
            page.session, page.caller, share=share, region_id=region.id, only_region=True
        )
        alerts = await queries.alert_rows(
            page.session, page.caller, queries.region_alerts_clause(region.id), now=now, limit=50
        )
        # The newest assessment per department, one index probe each (not a scan of them all).
        latest = (
            select(Assessment.level)
            .where(Assessment.department_id == Department.id)
            .order_by(Assessment.assessed_at.desc(), Assessment.id.desc())
            .limit(1)
            .correlate(Department)
            .scalar_subquery()
        )
        rows = await page.session.execute(
            select(Department, Organisation.name, CareType, latest)
            .join(Organisation, Organisation.id == Department.provider_id)
            .join(CareType, CareType.code == Department.care_type_code)
            .where(Department.region_id == region.id, visible_departments(page.caller))
            .order_by(CareType.sort_order, Organisation.name, Department.code)
            .limit(500)
        )
        departments: list[dict[str, Any]] = [
            {
                "department": department,
                "provider": provider,
                "care_type": care_type,
                "level": getattr(level, "value", level),
            }
            for department, provider, care_type, level in rows
        ]
        await page.audit("coverage.read", "coverage", details={"region": code})
        await page.audit("alert.list", "alert", details={"region": code, "count": len(alerts)})
        return page.render(
            "region.html",
            region=region,
            cells=cells,
            alerts=alerts,
            departments=departments,
            live_since=await queries.latest_change_id(page.session),
        )
