"""The counting and the page, on rows made by hand: no database, every rule in isolation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from services.core.domain import AlertEventType, AlertKind, Cluster, EscalationStep, Level, Scope
from services.notify.digest.figures import digest_figures
from services.notify.digest.period import Period
from services.notify.digest.render import LIST_LIMIT, render_html
from services.notify.digest.rows import (
    AlertRow,
    CareTypeRow,
    DepartmentRow,
    DigestRows,
    RegionRow,
    ReportingRow,
    TimelineRow,
)
from tests.digest.world import AMS

NOVEMBER = Period(2026, 11)
MADE = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
PROVIDER = uuid.uuid4()


def _department(code: str = "FACT-1") -> DepartmentRow:
    return DepartmentRow(
        id=uuid.uuid4(),
        code=code,
        name=f"Team {code}",
        provider_id=PROVIDER,
        provider_name="GGZ Proef",
        provider_agb="73990009",
        region_id=1,
        care_type="outreach.fact",
        scope=Scope.REGIONAL,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        closed_at=None,
    )


def _alert(department: DepartmentRow, opened_at: datetime, **fields: Any) -> AlertRow:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "kind": AlertKind.DEPARTMENT,
        "department_id": department.id,
        "region_id": 1,
        "care_type": "outreach.fact",
        "opened_at": opened_at,
        "resolved_at": None,
        "resolution": None,
        "level": Level.THREATENED,
        "escalation": EscalationStep.REGIONAL_TABLE,
        "reasons": [{"explanation": "english", "explanation_nl": "Nederlands"}],
    }
    values.update(fields)
    return AlertRow(**values)


def _entry(
    alert: AlertRow,
    kind: AlertEventType,
    at: datetime,
    level: Level = Level.THREATENED,
    step: EscalationStep = EscalationStep.PROVIDER,
    note: str | None = None,
    **details: Any,
) -> TimelineRow:
    return TimelineRow(alert.id, kind, at, level, step, details, note, None)


def _rows(
    departments: list[DepartmentRow],
    alerts: list[AlertRow] = (),  # type: ignore[assignment]
    timeline: list[TimelineRow] = (),  # type: ignore[assignment]
    reporting: list[ReportingRow] = (),  # type: ignore[assignment]
) -> DigestRows:
    return DigestRows(
        period=NOVEMBER,
        zone=AMS,
        regions=[RegionRow(1, "ijssel-vecht", "IJssel-Vecht")],
        care_types=[CareTypeRow("outreach.fact", "FACT-team", Cluster.OUTREACH, 40)],
        departments=departments,
        alerts=list(alerts),
        timeline=sorted(timeline, key=lambda e: e.at),
        judgements=[],
        reporting=list(reporting),
        ruleset_fallback="2026.11",
    )


def test_an_empty_month_says_so_plainly() -> None:
    team = _department()
    figures = digest_figures(
        _rows([team], reporting=[ReportingRow(team.id, 2, datetime(2026, 11, 20, tzinfo=UTC))]),
        made_at=MADE,
    )
    assert figures.empty and figures.counts.alerts_open == 0
    assert figures.completeness.silent == 0 and figures.ruleset_version == "2026.11"
    html = render_html(figures, zone=AMS)
    assert "Niets te melden over november 2026." in html
    assert "Dat is een goed bericht, geen storing" in html
    assert "<img" not in html  # no empty charts: the page says it in words
    assert "In de afgelopen 12 maanden is geen melding geopend" in html


def test_months_follow_the_local_calendar() -> None:
    team = _department()
    # 00:30 on 1 December in Amsterdam is still 30 November in UTC: December's.
    late = _alert(team, datetime(2026, 11, 30, 23, 30, tzinfo=UTC))
    # 23:30 on 31 October in UTC is already 1 November in Amsterdam: November's.
    early = _alert(team, datetime(2026, 10, 31, 23, 30, tzinfo=UTC))
    timeline = [
        _entry(late, AlertEventType.OPENED, late.opened_at),
        _entry(early, AlertEventType.OPENED, early.opened_at),
    ]
    figures = digest_figures(_rows([team], [late, early], timeline), made_at=MADE)
    assert figures.counts.alerts_opened == 1
    assert figures.headline.opened.previous == 0
    assert figures.counts.alerts_open == 1


def test_the_state_at_the_months_end_comes_from_the_timeline() -> None:
    team = _department()
    opened = datetime(2026, 10, 5, 9, tzinfo=UTC)
    alert = _alert(
        team,
        opened,
        level=Level.OK,  # today it is much better: the digest must not care
        escalation=EscalationStep.NATIONAL_TABLE,
        resolved_at=datetime(2026, 12, 10, tzinfo=UTC),
        resolution="manual",
    )
    timeline = [
        _entry(alert, AlertEventType.OPENED, opened, Level.WATCH),
        _entry(
            alert,
            AlertEventType.ESCALATED,
            datetime(2026, 11, 3, tzinfo=UTC),
            Level.THREATENED,
            EscalationStep.REGIONAL_TABLE,
            from_step="provider",
            to_step="regional_table",
            reason="level",
        ),
        _entry(
            alert,
            AlertEventType.ACKNOWLEDGED,
            datetime(2026, 11, 4, tzinfo=UTC),
            Level.THREATENED,
            EscalationStep.REGIONAL_TABLE,
        ),
        # After the month: must not count.
        _entry(
            alert,
            AlertEventType.ESCALATED,
            datetime(2026, 12, 2, tzinfo=UTC),
            Level.CRITICAL,
            EscalationStep.NATIONAL_TABLE,
            to_step="national_table",
            reason="level",
        ),
    ]
    figures = digest_figures(_rows([team], [alert], timeline), made_at=MADE, long_open_days=30)
    assert figures.counts.alerts_open == 1 and figures.counts.alerts_resolved == 0
    assert figures.counts.escalated_regional_table == 1
    assert figures.counts.escalated_national_table == 0 and figures.national_table == []
    [line] = figures.long_open
    assert (line.level, line.step, line.status) == (
        Level.THREATENED,
        EscalationStep.REGIONAL_TABLE,
        "acknowledged",
    )
    assert line.age_days == 56 and line.reasons == ["Nederlands"]
    assert figures.headline.open.previous == 1  # open at the end of October too
    assert figures.completeness.silent == 1  # no report in November


def test_lists_are_capped_on_the_page_and_notes_escaped() -> None:
    teams = [_department(f"FACT-{n}") for n in range(LIST_LIMIT + 5)]
    resolved_at = datetime(2026, 11, 20, tzinfo=UTC)
    alerts = [
        _alert(
            team,
            datetime(2026, 11, 2, tzinfo=UTC),
            resolved_at=resolved_at,
            resolution="manual",
        )
        for team in teams
    ]
    timeline = [
        _entry(a, AlertEventType.RESOLVED, resolved_at, note="<script>alert(1)</script>")
        for a in alerts
    ]
    figures = digest_figures(_rows(teams, alerts, timeline), made_at=MADE)
    assert len(figures.resolved) == LIST_LIMIT + 5  # the JSON has them all
    assert len(figures.completeness.silent_departments) == LIST_LIMIT + 5
    html = render_html(figures, zone=AMS)
    assert "… en nog 5." in html
    assert "<script>" not in html and "&lt;script&gt;" in html
