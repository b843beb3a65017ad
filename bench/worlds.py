"""Large made-up worlds for the benchmarks, loaded with COPY into a scratch database.

What `bench/dashboard.py` and `bench/digest.py` load alike: the reference data, the providers,
the departments, their staffing reports and the alerts. Each benchmark draws its own world (how
many of what, spread how) and gives the rows to these functions; going through the API would take
longer than the measurement.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db import scratch
from services.core.db.engine import make_engine, make_sessions
from services.core.reference import seed_reference_data

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# One reason behind every made-up alert; each benchmark adds its figures and signals.
VACANCY_REASON: dict[str, Any] = {
    "rule_id": "staffing.vacancies_sustained",
    "level": "threatened",
    "kind": "staffing",
    "explanation": "For three reports in a row 15 % or more of the formation has been vacant.",
    "explanation_nl": "Al drie meldingen achter elkaar staat 15 % of meer van de formatie open.",
    "thresholds": {},
    "norm": None,
}
DEPARTMENT_COLUMNS = (
    "id",
    "provider_id",
    "code",
    "name",
    "care_type_code",
    "region_id",
    "scope",
    "capacity",
)
ALERT_COLUMNS = (
    "id",
    "kind",
    "department_id",
    "region_id",
    "care_type_code",
    "level",
    "status",
    "escalation",
    "reasons",
    "opened_at",
    "resolved_at",
    "resolution",
    "ruleset_version",
)


class Provider(NamedTuple):
    id: uuid.UUID
    name: str
    agb_code: str


class Department(NamedTuple):
    """A department row, its values in the order of `DEPARTMENT_COLUMNS`."""

    id: uuid.UUID
    provider_id: uuid.UUID
    code: str
    name: str
    care_type: str
    region_id: int
    scope: str
    capacity: int


@asynccontextmanager
async def seeded(url: str) -> AsyncIterator[AsyncSession]:
    """A session on the scratch database with the reference data seeded, in one transaction."""
    engine = make_engine(url, pool_size=2)
    try:
        async with make_sessions(engine)() as session, session.begin():
            await seed_reference_data(session)
            yield session
    finally:
        await engine.dispose()


@asynccontextmanager
async def copying(url: str) -> AsyncIterator[Any]:
    """A plain asyncpg connection for COPY; ANALYZE once it is all in, so that the measured
    queries are planned on the real sizes."""
    connection = await asyncpg.connect(**scratch.connect_args(url))
    try:
        yield connection
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


async def copy_providers(connection: Any, count: int) -> list[Provider]:
    """`count` providers, `GGZ Bench 000` and on, with made-up AGB codes."""
    providers = [Provider(uuid.uuid4(), f"GGZ Bench {n:03d}", f"7390{n:04d}") for n in range(count)]
    await connection.copy_records_to_table(
        "organisations",
        records=[(p.id, "provider", p.name, p.agb_code) for p in providers],
        columns=["id", "kind", "name", "agb_code"],
    )
    return providers


def department(
    rng: random.Random, n: int, *, provider_id: uuid.UUID, care_type: str, region_id: int
) -> Department:
    """Department `n`: one in twenty supra-regional, 5 to 199 places."""
    return Department(
        uuid.uuid4(),
        provider_id,
        f"AFD-{n:05d}",
        f"Afdeling {n:05d}",
        care_type,
        region_id,
        "supra_regional" if rng.random() < 0.05 else "regional",
        rng.randrange(5, 200),
    )


async def copy_departments(
    connection: Any, departments: Sequence[Department], *, created_at: datetime | None = None
) -> None:
    """The departments; registered at `created_at` when given, else now (the column default)."""
    columns = list(DEPARTMENT_COLUMNS)
    records: Sequence[tuple[Any, ...]] = departments
    if created_at is not None:
        columns.append("created_at")
        records = [(*d, created_at) for d in departments]
    await connection.copy_records_to_table("departments", records=records, columns=columns)


def staffing_report(
    signal_id: uuid.UUID, department: Department, at: datetime, data: dict[str, Any]
) -> tuple[Any, ...]:
    """A staffing signal as the API stores it, sent by the department's provider at `at`."""
    return (
        signal_id,
        department.id,
        "staffing",
        at,
        at,
        json.dumps(data),
        "api",
        department.provider_id,
        "bench",
    )


async def copy_signals(connection: Any, signals: Sequence[tuple[Any, ...]]) -> None:
    """Rows made by `staffing_report`."""
    await connection.copy_records_to_table(
        "signals",
        records=signals,
        columns=[
            "id",
            "department_id",
            "kind",
            "observed_at",
            "received_at",
            "data",
            "source",
            "submitted_by_id",
            "body_hash",
        ],
    )


async def copy_alerts(
    connection: Any, alerts: Sequence[tuple[Any, ...]], *, extra_columns: Sequence[str] = ()
) -> None:
    """Rows with the values of `ALERT_COLUMNS`, then of `extra_columns`, in that order."""
    await connection.copy_records_to_table(
        "alerts", records=alerts, columns=[*ALERT_COLUMNS, *extra_columns]
    )
