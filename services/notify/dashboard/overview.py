"""The overview (`/`): the coverage heat map, open alerts by level and step, what is at the
national table, and the newest changes — the page a policy officer opens every morning."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.core.domain import Cluster, EscalationStep, Level
from services.notify.dashboard import queries
from services.notify.dashboard.web import open_page
from services.notify.runtime import runtime_of
from services.rules.api import DEFAULT_SHARE

router = APIRouter(include_in_schema=False)


@router.get("/")
async def overview(request: Request) -> Response:
    now = runtime_of(request).clock()
    share = float(getattr(request.app.state, "no_alternative_share", DEFAULT_SHARE))
    async with open_page(request) as page:
        cells = await queries.coverage_cells(page.session, page.caller, share=share)
        summed = queries.by_cluster(cells)
        regions: dict[int | None, tuple[str | None, str | None]] = {}
        grid: dict[tuple[int | None, str], queries.CoverageCell] = {}
        for cell in summed:
            regions.setdefault(cell.region_id, (cell.region_code, cell.region_name))
            grid[(cell.region_id, cell.cluster)] = cell
        counts = await queries.open_counts(page.session, page.caller)
        national = await queries.alert_rows(
            page.session, page.caller, queries.open_at_national(), now=now, limit=10
        )
        latest = await queries.changes(page.session, page.caller, now=now, limit=10)
        await page.audit(
            "alert.list",
            "alert",
            details={"page": "overview", "open": sum(counts.values()), "national": len(national)},
        )
        await page.audit("coverage.read", "coverage", details={"page": "overview"})
        return page.render(
            "overview.html",
            regions=regions,
            grid=grid,
            clusters=[c.value for c in Cluster],
            counts=counts,
            levels=[lvl.value for lvl in (Level.CRITICAL, Level.THREATENED, Level.WATCH)],
            steps=[s.value for s in EscalationStep],
            national=national,
            latest=latest,
            live_since=await queries.latest_change_id(page.session),
        )
