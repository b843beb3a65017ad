"""The digest's trend charts: drawn on the server with the shared chart helpers (matplotlib to
SVG, Dutch numbers), embedded as `data:` images so the HTML stands alone — the dashboard shows
it under a policy that allows no requests — and WeasyPrint draws them into the PDF as vectors."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from services.core.charts import MONTHS_NL, render_bar_chart
from services.notify.digest.document import MonthFigures
from services.notify.digest.period import Period


@dataclass(frozen=True)
class Chart:
    """One image: its source (a data URI) and what it shows in words (the `alt` text)."""

    src: str
    alt: str


def _label(month: str) -> str:
    period = Period.parse(month)
    return f"{MONTHS_NL[period.month - 1]}\n{period.year}"


def _data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _alt(title: str, trend: list[MonthFigures], values: list[int]) -> str:
    pairs = ", ".join(f"{m.label}: {v}" for m, v in zip(trend, values, strict=True))
    return f"{title}. {pairs}."


def trend_charts(trend: list[MonthFigures]) -> list[Chart]:
    """New alerts per month, and alerts open at each month's end, over the trend's months;
    none when there was nothing in any of them (the page says so in words instead)."""
    if not any(m.opened or m.open for m in trend):
        return []
    labels = [_label(m.period) for m in trend]
    charts: list[Chart] = []
    for title, values in (
        ("Nieuwe meldingen per maand", [m.opened for m in trend]),
        ("Open meldingen aan het eind van de maand", [m.open for m in trend]),
    ):
        svg = render_bar_chart(
            labels, [float(v) for v in values], title=title, unit="meldingen", width=6.6, height=2.4
        )
        charts.append(Chart(src=_data_uri(svg), alt=_alt(title, trend, values)))
    return charts
