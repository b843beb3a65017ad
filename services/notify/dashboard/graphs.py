"""The charts of the alert and department pages: what each shows (pure), and drawing it as an
SVG answer (in a worker thread, cached), with a text that says the same for those who cannot
see it."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from services.core import charts
from services.core.domain import SignalKind
from services.notify.dashboard.figures import (
    Limit,
    Measure,
    forecast_end,
    limit_of,
    measure_of,
    series,
)
from services.notify.dashboard.i18n import Words
from services.notify.dashboard.settings import DashboardSettings
from services.rules.ruleset import Rule

UNITS: dict[str, tuple[str, str]] = {
    "pct": ("%", "%"),
    "fte": ("fte", "FTE"),
    "weeks": ("weken", "weeks"),
    "count": ("aantal", "number"),
    "beds": ("bedden", "beds"),
    "people": ("mensen", "people"),
    "days": ("dagen", "days"),
}
Reports = Sequence[tuple[datetime, Mapping[str, Any]]]


def unit_of(field: str, words: Words) -> str:
    """The axis label for a figure, from how its name ends (`_pct`, `_fte`, `_weeks`, ...)."""
    for ending, unit in (
        ("pct", "pct"),
        ("fte", "fte"),
        ("weeks", "weeks"),
        ("days", "days"),
        ("active", "days"),
    ):
        if field.endswith(ending):
            return UNITS[unit][1] if words.lang == "en" else UNITS[unit][0]
    if field.startswith("beds"):
        return UNITS["beds"][1] if words.lang == "en" else UNITS["beds"][0]
    return UNITS["count"][1] if words.lang == "en" else UNITS["count"][0]


@dataclass(frozen=True)
class ReasonChart:
    """A reason's chart: the figure over time, its limit, the forecast where one fired."""

    measure: Measure
    points: list[tuple[datetime, float]]
    limit: Limit | None
    forecast: tuple[datetime, float] | None

    def spec(self, words: Words) -> charts.LineChart:
        label = words.field(self.measure.field)
        thresholds = []
        if self.limit is not None:
            name = words("norm") if self.limit.is_norm else words("threshold")
            thresholds.append(
                charts.Threshold(f"{name} {words.number(self.limit.value)}", self.limit.value)
            )
        forecast = None
        if self.forecast is not None and self.points:
            forecast = charts.Forecast(words("forecast"), self.points[-1], self.forecast)
        return charts.LineChart(
            title=f"{words.signal_kind(self.measure.kind.value)}: {label}",
            unit=unit_of(self.measure.field, words),
            series=[charts.Series(label, self.points)],
            thresholds=thresholds,
            forecast=forecast,
        )

    def description(self, words: Words) -> str:
        """The chart in one sentence, for `alt`: first and last value, the limit, the forecast."""
        label = words.field(self.measure.field)
        if not self.points:
            return words("no_chart")
        first, last = self.points[0], self.points[-1]
        text = (
            f"{label}: {words.number(first[1])} op {words.date(first[0])}, "
            f"{words.number(last[1])} op {words.date(last[0])}"
            if words.lang == "nl"
            else f"{label}: {words.number(first[1])} on {words.date(first[0])}, "
            f"{words.number(last[1])} on {words.date(last[0])}"
        )
        if self.limit is not None:
            name = words("norm") if self.limit.is_norm else words("threshold")
            text += f"; {name.lower()} {words.number(self.limit.value)}"
        if self.forecast is not None:
            text += f"; {words('forecast').lower()}: {words.number(self.forecast[1])}"
            text += (" op " if words.lang == "nl" else " on ") + words.date(self.forecast[0])
        return text + "."


def reason_chart(
    reason: Mapping[str, Any], rule: Rule | None, reports: Mapping[SignalKind, Reports]
) -> ReasonChart | None:
    """The chart of one reason, or None when it is not about a figure with a history."""
    measure = measure_of(reason, rule)
    if measure is None:
        return None
    points = series(reports.get(measure.kind, ()), measure.kind, measure.field)
    if not points:
        return None
    limit = limit_of(reason, rule, measure)
    forecast = forecast_end(reason, points, limit) if rule and rule.kind == "forecast" else None
    return ReasonChart(measure, points, limit, forecast)


def group_chart(
    kind: SignalKind,
    unit_key: str,
    fields: Sequence[str],
    reports: Reports,
    words: Words,
    norms: Mapping[str, float] | None = None,
) -> tuple[charts.LineChart, str] | None:
    """A department's figures of one kind and unit over time, with the Treeknorm for waits."""
    lines = [(name, series(reports, kind, name)) for name in fields]
    lines = [(name, points) for name, points in lines if points]
    if not lines:
        return None
    thresholds = []
    if norms and kind is SignalKind.WAITLIST and fields[0].endswith("_weeks"):
        for key, label in (("aanmeld_weeks", "aanmeld"), ("behandel_weeks", "behandel")):
            if key in norms:
                value = norms[key]
                text = f"Treeknorm {label} {words.number(value)}"
                thresholds.append(charts.Threshold(text, value))
    unit = words.pick(UNITS.get("pct" if unit_key == "%" else unit_key, UNITS["count"]))
    chart = charts.LineChart(
        title=f"{words.signal_kind(kind.value)} ({unit})",
        unit=unit,
        series=[charts.Series(words.field(name), points) for name, points in lines],
        thresholds=thresholds,
    )
    parts = [
        f"{words.field(name)}: {words.number(points[-1][1])} ({words.date(points[-1][0])})"
        for name, points in lines
    ]
    return chart, "; ".join(parts) + "."


async def svg_response(
    settings: DashboardSettings, chart: charts.LineChart, words: Words
) -> Response:
    """The chart as `image/svg+xml`, drawn once per content (and language) and then cached."""
    key = hashlib.sha256(repr((chart, words.lang, str(settings.zone))).encode()).hexdigest()
    svg = settings.charts.get(key)
    if svg is None:
        svg = await run_in_threadpool(
            charts.render_line_chart, chart, zone=settings.zone, lang=words.lang
        )
        settings.charts.put(key, svg)
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={
            "Cache-Control": "private, max-age=60",
            "X-Content-Type-Options": "nosniff",
            # An SVG opened on its own must not run anything.
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        },
    )
