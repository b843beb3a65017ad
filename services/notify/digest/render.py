"""The digest as HTML (Jinja2, Dutch) and as PDF (WeasyPrint: A4, page numbers, contents).

One template serves both: a browser ignores the print rules (`@page`, page counters), WeasyPrint
uses them. The HTML stands alone — styles inline, charts as `data:` images — because it is
stored with the digest and shown as it was made, also in the dashboard's archive.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import jinja2

from services.core.charts import format_date, format_datetime, format_number
from services.core.domain import EscalationStep, Level
from services.notify.digest.charts import trend_charts
from services.notify.digest.document import DigestFigures
from services.notify.messages import LEVEL_NL, STEP_NL

LIST_LIMIT = 50  # rows per list in HTML and PDF (a ten-minute read); the JSON has them all
STATUS_NL = {"open": "open", "acknowledged": "in behandeling", "resolved": "afgesloten"}
ESCALATION_REASON_NL = {
    "level": "het niveau vraagt erom",
    "timer": "niet op tijd in behandeling genomen",
    "coverage": "dekkingstekort in de regio",
}
RESOLUTION_NL = {
    "recovered": "hersteld: lang genoeg weer in orde",
    "manual": "met de hand afgesloten",
    "department_closed": "afdeling gesloten",
    "unknown": "onbekend",
}

_environment = jinja2.Environment(
    loader=jinja2.PackageLoader("services.notify.digest", "templates"),
    autoescape=jinja2.select_autoescape(("html",), default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)


def _signed(value: int) -> str:
    """`+3`, `−2` (a real minus sign) or `0`."""
    if value > 0:
        return f"+{format_number(value)}"
    if value < 0:
        return f"−{format_number(-value)}"
    return "0"


def render_html(figures: DigestFigures, *, zone: ZoneInfo, public_url: str = "") -> str:
    """The digest page (Dutch)."""
    template = _environment.get_template("digest.html")
    return template.render(
        f=figures,
        charts=trend_charts(figures.trend),
        limit=LIST_LIMIT,
        public_url=public_url.rstrip("/"),
        number=format_number,
        signed=_signed,
        date=lambda value: format_date(value, zone),
        moment=lambda value: format_datetime(value, zone),
        first_day=format_date(figures.starts_at, zone),
        last_day=format_date((figures.ends_at.astimezone(zone) - timedelta(days=1)).date(), zone),
        level=lambda value: LEVEL_NL[Level(value)],
        step=lambda value: STEP_NL[EscalationStep(value)],
        status=lambda value: STATUS_NL.get(str(value), str(value)),
        escalation_reason=lambda value: ESCALATION_REASON_NL.get(str(value), str(value)),
        resolution=lambda value: RESOLUTION_NL.get(str(value or "unknown"), str(value)),
    )


def render_pdf(html: str) -> bytes:
    """The same page as an A4 PDF; CPU-bound (about a second): run it off the event loop."""
    from weasyprint import HTML  # type: ignore[import-untyped]  # imported on first use: heavy

    buffer = io.BytesIO()
    HTML(string=html, base_url=None).write_pdf(buffer)
    return buffer.getvalue()


def made_label(moment: datetime, zone: ZoneInfo) -> str:
    """`01-12-2026 07:00`, for the mail and the command line."""
    return format_datetime(moment, zone)
