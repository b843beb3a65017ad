"""Replay the NZa waiting-time file: store a plan (`replay_nza.py`) in the caller's transaction.

Creates the providers and departments that are missing, and records the signals through the same
path as the API and `signals import`: each payload validated as a provider's (`check_signal`,
without the age limit: a replay is history on purpose), then `record_signals`, which writes each
new signal with its `signal.received` event in this transaction. Never commits: the CLI does,
once, so a failed run leaves nothing behind, and `--dry-run` rolls everything back.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.access import load_caller
from services.core.admin.departments import DepartmentSpec, add_department
from services.core.admin.organisations import add_organisation, validate_spec
from services.core.db.models import CareType, Department, Organisation, Region
from services.core.domain import OrgKind, Role, SignalSource
from services.core.errors import Conflict, InvalidInput
from services.ingest.recording import record_signals
from services.ingest.replay_nza import PlannedSignal, ReplayPlan
from services.ingest.schemas import SignalIn
from services.ingest.validation import check_signal

CHUNK = 500  # signals per record_signals call: one INSERT each, memory stays flat
CLOCK_SKEW = timedelta(minutes=5)


class Progress(Protocol):
    """Where a long replay reports how far it is (the CLI draws a bar; tests pass nothing)."""

    def phase(self, description: str, total: int) -> None: ...

    def advance(self, count: int) -> None: ...


class _Silent:
    def phase(self, description: str, total: int) -> None:
        return None

    def advance(self, count: int) -> None:
        return None


@dataclass
class ReplayReport:
    """What a replay did: the summary the CLI prints (and `--json` returns)."""

    file: str
    rows: int
    rows_used: int
    rows_skipped: dict[str, int]
    remarks: dict[str, int]
    providers_created: int = 0
    providers_existing: int = 0
    departments_created: int = 0
    departments_existing: int = 0
    signals_stored: int = 0
    signals_already_stored: int = 0
    stored_by_kind: dict[str, int] = field(default_factory=dict)
    signals_refused: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The JSON document of `--json`."""
        return asdict(self)

    def lines(self) -> list[str]:
        """The summary for a person, a few lines."""
        made, stored = (
            ("would be created", "would be stored") if self.dry_run else ("created", "stored")
        )
        skipped = sum(self.rows_skipped.values())
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.rows_skipped.items()))
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.stored_by_kind.items()))
        lines = [
            f"{self.file}: {self.rows} rows, {self.rows_used} used, {skipped} skipped"
            + (f" ({reasons})" if reasons else ""),
            f"providers: {self.providers_created} {made}, {self.providers_existing} already there",
            f"departments: {self.departments_created} {made},"
            f" {self.departments_existing} already there",
            f"signals: {self.signals_stored} {stored}"
            + (f" ({kinds})" if kinds else "")
            + f", {self.signals_already_stored} already stored",
        ]
        if self.signals_refused:
            refused = "; ".join(f"{v}× {k}" for k, v in sorted(self.signals_refused.items()))
            lines.append(f"signals refused by validation: {refused}")
        lines.append(
            ("dry run: nothing stored" if self.dry_run else "done") + f" in {self.seconds:.1f} s"
        )
        return lines


async def _check_reference_data(session: AsyncSession, plan: ReplayPlan) -> None:
    """Refuse before any write when `seed` has not loaded the regions and care types needed."""
    regions = set(await session.scalars(select(Region.code).where(Region.active)))
    care_types = set(await session.scalars(select(CareType.code)))
    missing = sorted(
        {d.region for d in plan.departments} - regions
        | {d.care_type for d in plan.departments} - care_types
    )
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise InvalidInput(
            f"the database lacks reference data ({shown}): run `vroegsignaal seed` first"
        )


async def _ensure_providers(
    session: AsyncSession, plan: ReplayPlan, report: ReplayReport, progress: Progress
) -> dict[str, Organisation]:
    """The plan's providers by AGB code; missing ones are created with the name they publish."""
    agbs = list(plan.providers)
    found = {
        org.agb_code: org
        for org in await session.scalars(
            select(Organisation).where(Organisation.agb_code.in_(agbs))
        )
        if org.agb_code
    }
    not_providers = sorted(agb for agb, org in found.items() if org.kind is not OrgKind.PROVIDER)
    if not_providers:
        raise InvalidInput(f"AGB code(s) {', '.join(not_providers)} belong to no provider")
    report.providers_existing = len(found)
    missing = [agb for agb in agbs if agb not in found]
    wanted = [plan.providers[agb] for agb in missing]
    taken = set(
        await session.scalars(select(Organisation.name).where(Organisation.name.in_(wanted)))
    )
    uses = Counter(wanted)
    progress.phase("providers", len(missing))
    for agb in missing:
        name = plan.providers[agb]
        if name in taken or uses[name] > 1:
            # The file has one name for several AGB codes (PsyQ, ...); names must be unique.
            name = f"{name} (AGB {agb})"[:200]
        found[agb] = await add_organisation(session, validate_spec("provider", name, agb, None, ()))
        report.providers_created += 1
        progress.advance(1)
    return found


async def _ensure_departments(
    session: AsyncSession, plan: ReplayPlan, report: ReplayReport, progress: Progress
) -> None:
    """Create the departments of the plan that do not exist yet; existing ones stay as they are."""
    pairs = [(d.provider_agb, d.code) for d in plan.departments]
    existing: set[tuple[str, str]] = set()
    for start in range(0, len(pairs), 1000):
        rows = await session.execute(
            select(Organisation.agb_code, Department.code)
            .join(Organisation, Department.provider_id == Organisation.id)
            .where(tuple_(Organisation.agb_code, Department.code).in_(pairs[start : start + 1000]))
        )
        existing.update((str(agb), str(code)) for agb, code in rows)
    report.departments_existing = len(existing)
    missing = [d for d in plan.departments if (d.provider_agb, d.code) not in existing]
    progress.phase("departments", len(missing))
    for planned in missing:
        await add_department(
            session,
            DepartmentSpec(
                provider_agb=planned.provider_agb,
                code=planned.code,
                name=planned.name,
                care_type=planned.care_type,
                region=planned.region,
            ),
            channel="cli",
        )
        report.departments_created += 1
        progress.advance(1)


def _validated(
    signals: list[PlannedSignal], now: datetime, report: ReplayReport
) -> dict[str, list[SignalIn]]:
    """Each payload checked as the API checks it (no age limit), grouped by provider."""
    by_provider: dict[str, list[SignalIn]] = defaultdict(list)
    refused: Counter[str] = Counter()
    for planned in signals:
        signal, problems = check_signal(
            planned.payload(), now=now, max_age=None, clock_skew=CLOCK_SKEW
        )
        if signal is None:
            loc, message = problems[0]
            refused[f"{'.'.join(str(part) for part in loc)}: {message}"] += 1
            continue
        by_provider[planned.provider_agb].append(signal)
    report.signals_refused = dict(refused)
    return by_provider


async def store_plan(
    session: AsyncSession,
    plan: ReplayPlan,
    *,
    file: str,
    received_at: datetime,
    progress: Progress | None = None,
    dry_run: bool = False,
) -> ReplayReport:
    """Create what is missing and record the signals, in the caller's transaction."""
    started = time.monotonic()
    bar = progress or _Silent()
    report = ReplayReport(
        file=file,
        rows=plan.rows,
        rows_used=plan.used,
        rows_skipped=dict(sorted(plan.skipped.items())),
        remarks=dict(sorted(plan.remarks.items())),
        dry_run=dry_run,
    )
    await _check_reference_data(session, plan)
    providers = await _ensure_providers(session, plan, report, bar)
    await _ensure_departments(session, plan, report, bar)
    by_provider = _validated(plan.signals, received_at, report)
    kinds: Counter[str] = Counter()
    bar.phase("signals", sum(len(signals) for signals in by_provider.values()))
    for agb, signals in sorted(by_provider.items()):
        caller = await load_caller(session, providers[agb], Role.PROVIDER, channel="cli")
        for start in range(0, len(signals), CHUNK):
            chunk = signals[start : start + CHUNK]
            try:
                stored = await record_signals(
                    session,
                    caller=caller,
                    signals=chunk,
                    source=SignalSource.REPLAY,
                    received_at=received_at,
                )
            except Conflict as exc:
                raise Conflict(
                    f"{exc}: this file was replayed before with other figures for the same day;"
                    " replay it with --observed-at to record it as a new report"
                ) from exc
            for item in stored:
                if item.stored:
                    report.signals_stored += 1
                    kinds[item.kind] += 1
                else:
                    report.signals_already_stored += 1
            bar.advance(len(chunk))
    report.stored_by_kind = dict(sorted(kinds.items()))
    report.seconds = round(time.monotonic() - started, 2)
    return report
