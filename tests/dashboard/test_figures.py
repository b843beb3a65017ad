"""What a reason's chart draws, worked out without a database or browser: the figure (derived
as the engine derives it), the threshold or norm from the rule, the forecast; and the Dutch way
of writing numbers and dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

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
from services.rules.ruleset import load_ruleset

AMS = ZoneInfo("Europe/Amsterdam")
RULES = {compiled.rule.id: compiled.rule for compiled in load_ruleset().rules}
T0 = datetime(2026, 11, 1, 9, tzinfo=UTC)


def test_a_threshold_rule_draws_its_derived_figure_and_the_number_it_compares_with() -> None:
    rule = RULES["staffing.vacancies_sustained"]
    reason = {"rule_id": rule.id, "figures": {"staffing.vacancy_pct": 16.0}, "thresholds": {}}
    measure = measure_of(reason, rule)
    assert measure == Measure(SignalKind.STAFFING, "vacancy_pct")
    assert limit_of(reason, rule, measure) == Limit(15.0, is_norm=False)
    reports = [
        (T0 + timedelta(days=7), {"fte_budgeted": 20.0, "vacancies_fte": 3.2}),
        (T0, {"fte_budgeted": 20.0, "vacancies_fte": 2.0}),
        (T0 + timedelta(days=3), {"fte_budgeted": 20.0}),  # no vacancies reported: no point
    ]
    assert series(reports, measure.kind, measure.field) == [
        (T0, 10.0),
        (T0 + timedelta(days=7), 16.0),
    ]


def test_a_norm_and_a_forecast_come_from_the_reason() -> None:
    over = RULES["waitlist.behandel_over_treeknorm"]
    reason = {
        "figures": {"waitlist.behandelwachttijd_weeks": 13.5, "norm.behandel_weeks": 10.0},
        "thresholds": {},
    }
    measure = measure_of(reason, over)
    assert measure is not None and measure.field == "behandelwachttijd_weeks"
    assert limit_of(reason, over, measure) == Limit(10.0, is_norm=True)

    forecast = RULES["waitlist.behandel_forecast"]
    reason = {"figures": {"value": 8.0, "days": 21}, "thresholds": {"limit": 10.0}}
    measure = measure_of(reason, forecast)
    assert measure == Measure(SignalKind.WAITLIST, "behandelwachttijd_weeks")
    limit = limit_of(reason, forecast, measure)
    assert limit == Limit(10.0, is_norm=True)
    points = [(T0, 6.0), (T0 + timedelta(days=14), 8.0)]
    assert forecast_end(reason, points, limit) == (T0 + timedelta(days=35), 10.0)
    assert forecast_end({"figures": {"days": True}}, points, limit) is None


def test_event_reasons_have_no_chart() -> None:
    stop = next(r for r in RULES.values() if r.signals == (SignalKind.ADMISSION_STOP,))
    assert measure_of({"figures": {"admission_stop.days_active": 3.0}}, stop) is None


def test_dutch_numbers_and_dates() -> None:
    assert charts.format_number(1234.5) == "1.234,5"
    assert charts.format_number(1234.5, lang="en") == "1,234.5"
    assert charts.format_number(24) == "24"
    assert charts.format_number(0.25) == "0,25"
    assert charts.format_number(float("nan")) == "–"
    assert charts.format_percent(16.04) == "16 %"
    assert charts.format_datetime(datetime(2026, 11, 30, 8, 12, tzinfo=UTC), AMS) == (
        "30-11-2026 09:12"
    )
    assert charts.format_date(datetime(2026, 7, 1, 22, 30, tzinfo=UTC), AMS) == "02-07-2026"


def test_a_chart_is_an_svg_with_dutch_axis_labels() -> None:
    chart = charts.LineChart(
        title="Personeel: vacatures (% van formatie)",
        unit="%",
        series=[charts.Series("vacatures", [(T0, 10.0), (T0 + timedelta(days=60), 16.5)])],
        thresholds=[charts.Threshold("drempel 15", 15.0)],
        forecast=charts.Forecast("prognose", (T0 + timedelta(days=60), 16.5), (T0, 1.0)),
    )
    svg = charts.render_line_chart(chart, zone=AMS)
    assert svg.startswith("<svg") and "drempel 15" in svg and "prognose" in svg
    assert "nov" in svg and "dec" in svg  # Dutch month names on the axis
    assert svg == charts.render_line_chart(chart, zone=AMS)  # the same chart, the same bytes
    bars = charts.render_bar_chart(["okt", "nov"], [3, 1234], title="Meldingen", unit="aantal")
    assert "1.234" in bars
