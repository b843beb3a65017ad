"""The figures of a digest: a pure function of the rows (`rows.py`), without I/O.

Everything is counted as it stood at a month's end, from the alerts' timelines: each timeline
entry records the alert's level and step at that moment, so "open at the end of March, at the
national table, critical" is read from the last entry before April, not from the alert as it is
today. The same rules give every month of the trend, so this month and the one before are
compared like with like. The result is one JSON document (`DigestFigures`): stored with the
digest, served as `/v1/digests/{period}.json`, and rendered as HTML and PDF.
"""

from __future__ import annotations

import bisect
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.core.domain import AlertEventType, AlertKind, Cluster, EscalationStep, Level
from services.core.events.payloads import DigestCounts
from services.notify.digest.document import (
    AlertLine,
    AreaFigures,
    Change,
    Completeness,
    DigestFigures,
    Headline,
    MonthFigures,
    NationalLine,
    NoAlternativeLine,
    ResolvedLine,
    SilentLine,
    SilentProvider,
    Status,
)
from services.notify.digest.period import Period
from services.notify.digest.rows import (
    AlertRow,
    DepartmentRow,
    DigestRows,
    JudgementRow,
    ReportingRow,
    TimelineRow,
)

DEFAULT_LONG_OPEN_DAYS = 60
NATIONAL = "landelijk (bovenregionaal)"
_RANK = {Level.OK: 0, Level.WATCH: 1, Level.THREATENED: 2, Level.CRITICAL: 3}
CLUSTER_NL = {
    Cluster.ACUTE.value: "Acute ggz",
    Cluster.OUTREACH.value: "Outreachende zorg",
    Cluster.CLINICAL.value: "Klinische zorg",
    Cluster.SECURE.value: "Beveiligde zorg",
    Cluster.HIGHLY_SPECIALISED.value: "Hoogspecialistische ggz",
    Cluster.CRISIS_BEDS.value: "Crisisbedden",
}


# --- the arithmetic ------------------------------------------------------------------------------


@dataclass
class _History:
    """One alert's timeline, for "where did it stand at moment t"."""

    alert: AlertRow
    entries: list[TimelineRow] = field(default_factory=list)
    moments: list[datetime] = field(default_factory=list)

    def add(self, entry: TimelineRow) -> None:
        self.entries.append(entry)
        self.moments.append(entry.at)

    def opened_by(self, end: datetime) -> bool:
        return self.alert.opened_at < end

    def open_at(self, end: datetime) -> bool:
        resolved = self.alert.resolved_at
        return self.alert.opened_at < end and (resolved is None or resolved >= end)

    def state_at(self, end: datetime) -> tuple[Level, EscalationStep]:
        """Level and step of the last timeline entry before `end`."""
        index = bisect.bisect_left(self.moments, end) - 1
        if index < 0:
            return self.alert.level, self.alert.escalation
        entry = self.entries[index]
        return entry.level, entry.escalation

    def status_at(self, end: datetime) -> Status:
        """Open, acknowledged (taken on at its step) or resolved, at `end`."""
        if not self.open_at(end):
            return "resolved"
        status: Status = "open"
        for entry in self.entries[: bisect.bisect_left(self.moments, end)]:
            if entry.type is AlertEventType.ACKNOWLEDGED:
                status = "acknowledged"
            elif entry.type is AlertEventType.ESCALATED:
                status = "open"  # the wider circle has to take it on anew
            elif entry.type is AlertEventType.UPDATED:
                previous = entry.details.get("previous_level")
                if previous in _RANK and _RANK[entry.level] > _RANK[Level(previous)]:
                    status = "open"  # a graver risk lapses the acknowledgement
        return status

    def escalations(self, start: datetime, end: datetime) -> Iterable[TimelineRow]:
        lo = bisect.bisect_left(self.moments, start)
        hi = bisect.bisect_left(self.moments, end)
        return (e for e in self.entries[lo:hi] if e.type is AlertEventType.ESCALATED)

    def last_to_national(self, end: datetime) -> TimelineRow | None:
        hi = bisect.bisect_left(self.moments, end)
        for entry in reversed(self.entries[:hi]):
            if (
                entry.type is AlertEventType.ESCALATED
                and entry.details.get("to_step") == EscalationStep.NATIONAL_TABLE.value
            ):
                return entry
        return None

    def resolution_entry(self) -> TimelineRow | None:
        for entry in reversed(self.entries):
            if entry.type is AlertEventType.RESOLVED:
                return entry
        return None


@dataclass
class _Tally:
    """The counters of one month for one area (or for all)."""

    departments: int = 0
    opened: int = 0
    escalated_regional_table: int = 0
    escalated_national_table: int = 0
    resolved: int = 0
    open: int = 0
    national_open: int = 0
    critical_open: int = 0
    coverage_gaps: int = 0
    silent_departments: int = 0


def _watched(department: DepartmentRow, end: datetime) -> bool:
    return department.created_at < end and (
        department.closed_at is None or department.closed_at >= end
    )


def _tally_alert(tally: _Tally, history: _History, start: datetime, end: datetime) -> None:
    alert = history.alert
    if start <= alert.opened_at < end:
        tally.opened += 1
    if alert.resolved_at is not None and start <= alert.resolved_at < end:
        tally.resolved += 1
    for entry in history.escalations(start, end):
        to_step = entry.details.get("to_step")
        if to_step == EscalationStep.REGIONAL_TABLE.value:
            tally.escalated_regional_table += 1
        elif to_step == EscalationStep.NATIONAL_TABLE.value:
            tally.escalated_national_table += 1
    if history.open_at(end):
        level, step = history.state_at(end)
        tally.open += 1
        tally.national_open += step is EscalationStep.NATIONAL_TABLE
        tally.critical_open += level is Level.CRITICAL
        tally.coverage_gaps += alert.kind is AlertKind.COVERAGE


def _dutch(reasons: Sequence[dict[str, object]]) -> list[str]:
    return [str(r.get("explanation_nl") or r.get("explanation") or "") for r in reasons]


class _Directory:
    """Names for codes and ids, so the lists read as a board member would say them."""

    def __init__(self, rows: DigestRows) -> None:
        self.regions = {r.id: r for r in rows.regions}
        self.care_types = {c.code: c for c in rows.care_types}
        self.departments = {d.id: d for d in rows.departments}

    def cluster(self, care_type: str) -> Cluster:
        found = self.care_types.get(care_type)
        return found.cluster if found else Cluster(care_type.split(".", 1)[0])

    def care_type_name(self, care_type: str) -> str:
        found = self.care_types.get(care_type)
        return found.name if found else care_type

    def region(self, region_id: int | None) -> tuple[str | None, str]:
        found = self.regions.get(region_id) if region_id is not None else None
        return (found.code, found.name) if found else (None, NATIONAL)

    def department_line(self, department: DepartmentRow) -> dict[str, object]:
        code, name = self.region(department.region_id)
        return {
            "id": department.id,
            "department": department.code,
            "name": department.name,
            "provider": department.provider_name,
            "provider_agb": department.provider_agb,
            "region": code or "",
            "region_name": name,
            "care_type": department.care_type,
            "care_type_name": self.care_type_name(department.care_type),
        }


def digest_figures(
    rows: DigestRows,
    *,
    made_at: datetime,
    long_open_days: int = DEFAULT_LONG_OPEN_DAYS,
    trend_months: int = 12,
) -> DigestFigures:
    """The digest of `rows.period` as figures (pure: the same rows give the same document)."""
    period, zone = rows.period, rows.zone
    start, end = period.starts_at(zone), period.ends_at(zone)
    names = _Directory(rows)
    histories = {a.id: _History(a) for a in rows.alerts}
    for entry in rows.timeline:
        history = histories.get(entry.alert_id)
        if history is not None:
            history.add(entry)
    judgements = {j.department_id: j for j in rows.judgements}
    reporting = {r.department_id: r for r in rows.reporting}

    # The trend ends with this month; the month before gives the comparison.
    months = [period.shift(offset) for offset in range(1 - max(trend_months, 2), 1)]
    trend = [_month(m, rows, histories.values()) for m in months]
    this, before = trend[-1], trend[-2]

    watched = [d for d in rows.departments if _watched(d, end)]
    silent = [d for d in watched if not (reporting.get(d.id) and reporting[d.id].in_period)]
    silent_ids = {d.id for d in silent}

    regions = _areas(
        histories.values(),
        watched,
        silent_ids,
        start,
        end,
        key_of_alert=lambda a: names.region(a.region_id)[0] or "",
        key_of_department=lambda d: names.region(d.region_id)[0] or "",
        name_of=lambda key: next((r.name for r in rows.regions if r.code == key), NATIONAL),
    )
    regions.sort(key=lambda area: (area.code == "", area.name.lower()))
    cluster_order = {c: i for i, c in enumerate(Cluster)}
    clusters = _areas(
        histories.values(),
        watched,
        silent_ids,
        start,
        end,
        key_of_alert=lambda a: names.cluster(a.care_type).value,
        key_of_department=lambda d: names.cluster(d.care_type).value,
        name_of=lambda key: CLUSTER_NL.get(key, key),
    )
    clusters.sort(key=lambda area: cluster_order.get(Cluster(area.code), 99))

    def line(history: _History, at: datetime) -> dict[str, object]:
        alert = history.alert
        department = names.departments.get(alert.department_id) if alert.department_id else None
        region_code, region_name = names.region(alert.region_id)
        level, step = history.state_at(at)
        resolved = alert.resolved_at
        closed = resolved if resolved is not None and resolved < end else end
        reasons: Sequence[dict[str, object]] = alert.reasons
        judgement = judgements.get(alert.department_id) if alert.department_id else None
        if history.open_at(end) and judgement is not None and judgement.reasons:
            reasons = judgement.reasons  # as judged at the month's end
        if department is not None:
            what = f"{department.name} ({department.provider_name})"
        else:
            what = f"Dekking {names.care_type_name(alert.care_type)}"
        return {
            "id": alert.id,
            "kind": alert.kind,
            "what": what,
            "department": department.code if department else None,
            "provider": department.provider_name if department else None,
            "provider_agb": department.provider_agb if department else None,
            "region": region_code,
            "region_name": region_name,
            "care_type": alert.care_type,
            "care_type_name": names.care_type_name(alert.care_type),
            "cluster": names.cluster(alert.care_type),
            "level": level,
            "step": step,
            "status": history.status_at(end),
            "opened_at": alert.opened_at,
            "age_days": max(0, (closed - alert.opened_at).days),
            "reasons": _dutch(reasons),
        }

    national: list[NationalLine] = []
    for history in histories.values():
        # At the national table some time this month: it got there this month, or it was
        # there already and still open when the month began.
        reached = history.last_to_national(end)
        if reached is None or (reached.at < start and not history.open_at(start)):
            continue
        national.append(
            NationalLine.model_validate(
                line(history, end)
                | {
                    "escalated_at": reached.at,
                    "escalation_reason": str(reached.details.get("reason") or "level"),
                    "escalated_in_period": reached.at >= start,
                }
            )
        )
    # What still needs the table first, the gravest first, then the newest escalations.
    national.sort(
        key=lambda n: (n.status == "resolved", -_RANK[n.level], -n.escalated_at.timestamp())
    )

    open_at_end = [h for h in histories.values() if h.open_at(end)]
    gaps = [
        AlertLine.model_validate(line(h, end))
        for h in open_at_end
        if h.alert.kind is AlertKind.COVERAGE
    ]
    gaps.sort(key=lambda g: (g.region_name, g.care_type_name))
    long_open_since = end - timedelta(days=long_open_days)
    long_open = [
        AlertLine.model_validate(line(h, end))
        for h in open_at_end
        if h.alert.opened_at <= long_open_since
    ]
    long_open.sort(key=lambda a: (-a.age_days, a.what))

    resolved: list[ResolvedLine] = []
    for history in histories.values():
        when = history.alert.resolved_at
        if when is None or not start <= when < end:
            continue
        closing = history.resolution_entry()
        resolved.append(
            ResolvedLine.model_validate(
                line(history, when)
                | {
                    "resolved_at": when,
                    "resolution": history.alert.resolution,
                    "resolved_by": closing.organisation if closing else None,
                    "note": closing.note if closing else None,
                }
            )
        )
    resolved.sort(key=lambda r: r.resolved_at)

    no_alternative = [
        NoAlternativeLine.model_validate(
            names.department_line(d)
            | {"level": judgements[d.id].level, "reasons": _dutch(judgements[d.id].reasons)}
        )
        for d in watched
        if d.id in judgements
        and judgements[d.id].no_alternative
        and judgements[d.id].level is not Level.OK
    ]
    no_alternative.sort(key=lambda n: (-_RANK[n.level], n.region_name, n.name))

    completeness = _completeness(names, watched, silent, reporting)
    counts = DigestCounts(
        departments=this.departments,
        alerts_opened=this.opened,
        alerts_resolved=this.resolved,
        alerts_open=this.open,
        critical_open=this.critical_open,
        escalated_regional_table=this.escalated_regional_table,
        escalated_national_table=this.escalated_national_table,
        coverage_gaps=this.coverage_gaps,
    )
    return DigestFigures(
        period=str(period),
        label=period.label,
        zone=str(zone),
        starts_at=start,
        ends_at=end,
        made_at=made_at,
        ruleset_version=_ruleset_version(rows.judgements, rows.ruleset_fallback),
        long_open_days=long_open_days,
        empty=not (
            this.opened
            or this.resolved
            or this.open
            or this.escalated_regional_table
            or this.escalated_national_table
        ),
        counts=counts,
        headline=Headline(
            departments=Change(value=this.departments, previous=before.departments),
            opened=Change(value=this.opened, previous=before.opened),
            escalated=Change(
                value=this.escalated_regional_table + this.escalated_national_table,
                previous=before.escalated_regional_table + before.escalated_national_table,
            ),
            escalated_national_table=Change(
                value=this.escalated_national_table, previous=before.escalated_national_table
            ),
            resolved=Change(value=this.resolved, previous=before.resolved),
            open=Change(value=this.open, previous=before.open),
            national_open=Change(value=this.national_open, previous=before.national_open),
            critical_open=Change(value=this.critical_open, previous=before.critical_open),
            coverage_gaps=Change(value=this.coverage_gaps, previous=before.coverage_gaps),
        ),
        trend=trend,
        regions=regions,
        clusters=clusters,
        national_table=national,
        coverage_gaps=gaps,
        no_alternative=no_alternative,
        long_open=long_open,
        resolved=resolved,
        resolved_by_reason=dict(Counter(r.resolution or "unknown" for r in resolved)),
        completeness=completeness,
    )


def _month(month: Period, rows: DigestRows, histories: Iterable[_History]) -> MonthFigures:
    start, end = month.starts_at(rows.zone), month.ends_at(rows.zone)
    tally = _Tally(departments=sum(1 for d in rows.departments if _watched(d, end)))
    for history in histories:
        if history.opened_by(end):
            _tally_alert(tally, history, start, end)
    return MonthFigures(
        period=str(month),
        label=month.label,
        departments=tally.departments,
        opened=tally.opened,
        escalated_regional_table=tally.escalated_regional_table,
        escalated_national_table=tally.escalated_national_table,
        resolved=tally.resolved,
        open=tally.open,
        national_open=tally.national_open,
        critical_open=tally.critical_open,
        coverage_gaps=tally.coverage_gaps,
    )


def _areas(
    histories: Iterable[_History],
    watched: Sequence[DepartmentRow],
    silent_ids: set[uuid.UUID],
    start: datetime,
    end: datetime,
    *,
    key_of_alert: Callable[[AlertRow], str],
    key_of_department: Callable[[DepartmentRow], str],
    name_of: Callable[[str], str],
) -> list[AreaFigures]:
    """One row per area with departments or alerts this month (regions, or clusters)."""
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    for department in watched:
        tally = tallies[key_of_department(department)]
        tally.departments += 1
        tally.silent_departments += department.id in silent_ids
    for history in histories:
        if history.opened_by(end) and (
            history.alert.resolved_at is None or history.alert.resolved_at >= start
        ):
            _tally_alert(tallies[key_of_alert(history.alert)], history, start, end)
    return [
        AreaFigures(code=key, name=name_of(key), **vars(tally)) for key, tally in tallies.items()
    ]


def _completeness(
    names: _Directory,
    watched: Sequence[DepartmentRow],
    silent: Sequence[DepartmentRow],
    reporting: dict[uuid.UUID, ReportingRow],
) -> Completeness:
    def last(department: DepartmentRow) -> datetime | None:
        row = reporting.get(department.id)
        return row.last_observed_at if row is not None else None

    lines = [
        SilentLine.model_validate(names.department_line(d) | {"last_observed_at": last(d)})
        for d in silent
    ]
    lines.sort(key=lambda s: (s.provider, s.region_name, s.name))
    by_provider: dict[uuid.UUID, list[DepartmentRow]] = defaultdict(list)
    for department in watched:
        by_provider[department.provider_id].append(department)
    silent_ids = {d.id for d in silent}
    providers: list[SilentProvider] = []
    for departments in by_provider.values():
        if all(d.id in silent_ids for d in departments):
            moments = [m for m in (last(d) for d in departments) if m is not None]
            providers.append(
                SilentProvider(
                    name=departments[0].provider_name,
                    agb=departments[0].provider_agb,
                    departments=len(departments),
                    last_observed_at=max(moments) if moments else None,
                )
            )
    providers.sort(key=lambda p: p.name.lower())
    return Completeness(
        departments=len(watched),
        reporting=len(watched) - len(silent),
        silent=len(silent),
        providers=len(by_provider),
        silent_departments=lines,
        silent_providers=providers,
    )


def _ruleset_version(judgements: Sequence[JudgementRow], fallback: str | None) -> str:
    newest = max(judgements, key=lambda j: j.assessed_at, default=None)
    if newest is not None:
        return newest.ruleset_version
    return fallback or "onbekend"
