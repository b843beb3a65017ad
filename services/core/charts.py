"""Charts drawn on the server as SVG, and numbers and dates written the Dutch way.

The dashboard and the monthly digest draw their charts here, so a figure looks the same in both
and no browser is needed to make one (matplotlib's SVG backend, imported on first use so that the
command line does not pay for it). Text in the SVG stays text (`svg.fonttype: none`): it scales,
it can be searched, and a screen reader's `alt` text on the image says the same in words.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from matplotlib.axes import Axes

Language = Literal["nl", "en"]
MONTHS_NL = ("jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec")
MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Colours that keep a 3:1 contrast against white (WCAG 1.4.11 for graphics), told apart by the
# line style and marker too, so no one needs to see colour to read the chart.
PALETTE = ("#1f4e9c", "#b34700", "#2e7d32", "#6a1b9a", "#00695c", "#8d3b00")
STYLES = ("-", "--", "-.", ":", "-", "--")
MARKERS = ("o", "s", "^", "D", "v", "P")
THRESHOLD_COLOUR = "#a00000"
FORECAST_COLOUR = "#555555"
_lock = threading.Lock()  # matplotlib keeps global state (rc parameters, font cache)


def format_number(
    value: float | int | None, decimals: int | None = None, *, lang: str = "nl"
) -> str:
    """`1234.5` → `1.234,5` in Dutch, `1,234.5` in English; whole numbers without decimals."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if decimals is None:
        number = float(value)
        decimals = 0 if number.is_integer() else (2 if abs(number) < 1 else 1)
    text = f"{value:,.{decimals}f}"
    if lang == "nl":
        text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return text


def format_percent(value: float | None, *, lang: str = "nl") -> str:
    """`16.04` → `16 %` (Dutch puts a space before the sign)."""
    if value is None:
        return "–"
    return f"{format_number(round(value), 0, lang=lang)} %" if lang == "nl" else f"{value:.0f}%"


def format_date(value: date | datetime, zone: ZoneInfo, *, lang: str = "nl") -> str:
    """`30-11-2026` in Dutch, `30 Nov 2026` in English; times are shown in `zone`."""
    if isinstance(value, datetime):
        value = value.astimezone(zone).date()
    if lang == "nl":
        return f"{value.day:02d}-{value.month:02d}-{value.year}"
    return f"{value.day} {MONTHS_EN[value.month - 1]} {value.year}"


def format_datetime(value: datetime, zone: ZoneInfo, *, lang: str = "nl") -> str:
    """`30-11-2026 09:12` (24-hour clock, local time in `zone`)."""
    local = value.astimezone(zone)
    return f"{format_date(local.date(), zone, lang=lang)} {local:%H:%M}"


def format_month(value: date, *, lang: str = "nl") -> str:
    """`nov 2026`: a short month label, as on a chart axis."""
    months = MONTHS_NL if lang == "nl" else MONTHS_EN
    return f"{months[value.month - 1]} {value.year}"


@dataclass(frozen=True)
class Series:
    """One line: points in time with a value each, oldest first."""

    label: str
    points: Sequence[tuple[datetime, float]]


@dataclass(frozen=True)
class Threshold:
    """A horizontal line: a norm or the limit a rule compares with."""

    label: str
    value: float


@dataclass(frozen=True)
class Forecast:
    """A dashed line from the last point to where the trend meets the limit."""

    label: str
    start: tuple[datetime, float]
    end: tuple[datetime, float]


@dataclass(frozen=True)
class LineChart:
    """What one chart shows; `render_line_chart` draws it."""

    title: str
    unit: str
    series: Sequence[Series]
    thresholds: Sequence[Threshold] = field(default_factory=tuple)
    forecast: Forecast | None = None
    y_from_zero: bool = True


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _x(moment: datetime) -> float:
    """A moment as days since 1970 (what the x axis counts in)."""
    return (moment - EPOCH).total_seconds() / 86400.0


def _date_axis(axes: Axes, zone: ZoneInfo, lang: str, first: datetime, last: datetime) -> None:
    """About five ticks at local midnights between the first and last moment, Dutch labels."""
    from matplotlib.ticker import FixedLocator, FuncFormatter

    months = MONTHS_NL if lang == "nl" else MONTHS_EN
    span = last - first
    start = first.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    step = max(1, math.ceil(span.days / 5)) if span.days else 1
    ticks = [start + timedelta(days=step * n) for n in range(7)]
    ticks = [tick for tick in ticks if tick <= last + timedelta(days=1)] or [start]

    def label(x: float, _: int) -> str:
        moment = (EPOCH + timedelta(days=x)).astimezone(zone)
        if span > timedelta(days=400):
            return f"{months[moment.month - 1]} {moment.year}"
        return f"{moment.day} {months[moment.month - 1]}"

    axes.xaxis.set_major_locator(FixedLocator([_x(tick) for tick in ticks]))
    axes.xaxis.set_major_formatter(FuncFormatter(label))


def render_line_chart(
    chart: LineChart,
    *,
    zone: ZoneInfo,
    lang: Language = "nl",
    width: float = 6.4,
    height: float = 2.8,
) -> str:
    """The chart as an SVG document (text, without an XML declaration's date)."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    moments = [when for series in chart.series for when, _ in series.points]
    if chart.forecast is not None:
        moments += [chart.forecast.start[0], chart.forecast.end[0]]
    with (
        _lock,
        rc_context(
            {
                "svg.fonttype": "none",
                "svg.hashsalt": "vroegsignaal",  # the same chart gives the same bytes
                "font.family": "sans-serif",
                "font.size": 9,
                "axes.spines.top": False,
                "axes.spines.right": False,
            }
        ),
    ):
        figure = Figure(figsize=(width, height), layout="constrained")
        axes = figure.add_subplot()
        for index, series in enumerate(chart.series):
            if not series.points:
                continue
            xs = [_x(when) for when, _ in series.points]
            ys = [value for _, value in series.points]
            axes.plot(
                xs,
                ys,
                label=series.label,
                color=PALETTE[index % len(PALETTE)],
                linestyle=STYLES[index % len(STYLES)],
                marker=MARKERS[index % len(MARKERS)],
                markersize=3.5,
                linewidth=1.6,
            )
        for threshold in chart.thresholds:
            axes.axhline(
                threshold.value,
                color=THRESHOLD_COLOUR,
                linestyle=(0, (6, 3)),
                linewidth=1.2,
                label=threshold.label,
            )
        if chart.forecast is not None:
            start, end = chart.forecast.start, chart.forecast.end
            axes.plot(
                [_x(start[0]), _x(end[0])],
                [start[1], end[1]],
                color=FORECAST_COLOUR,
                linestyle=":",
                linewidth=1.6,
                marker="x",
                label=chart.forecast.label,
            )
        if chart.y_from_zero:
            axes.set_ylim(bottom=0)
        axes.yaxis.set_major_formatter(
            FuncFormatter(lambda y, _: format_number(y, None if y % 1 else 0, lang=lang))
        )
        if moments:
            _date_axis(axes, zone, lang, min(moments), max(moments))
        axes.set_ylabel(chart.unit)
        axes.set_title(chart.title, loc="left", fontsize=10)
        axes.grid(axis="y", color="#dddddd", linewidth=0.6)
        if chart.series or chart.thresholds:
            axes.legend(loc="upper left", fontsize=8, frameon=False, ncols=2)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return _without_prolog(buffer.getvalue())


def render_bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    unit: str,
    lang: Language = "nl",
    width: float = 6.4,
    height: float = 2.8,
) -> str:
    """Bars with their values written on them (e.g. alerts per month in the digest)."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    with (
        _lock,
        rc_context({"svg.fonttype": "none", "svg.hashsalt": "vroegsignaal", "font.size": 9}),
    ):
        figure = Figure(figsize=(width, height), layout="constrained")
        axes = figure.add_subplot()
        bars = axes.bar(list(labels), list(values), color=PALETTE[0])
        axes.bar_label(bars, labels=[format_number(v, lang=lang) for v in values], fontsize=8)
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.yaxis.set_major_formatter(FuncFormatter(lambda y, _: format_number(y, lang=lang)))
        axes.set_ylabel(unit)
        axes.set_title(title, loc="left", fontsize=10)
        axes.spines[["top", "right"]].set_visible(False)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return _without_prolog(buffer.getvalue())


def _without_prolog(svg: str) -> str:
    """Drop the XML declaration and doctype: the SVG can then be inlined in HTML as well."""
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg
