"""Signals as CSV: the upload endpoint and `vroegsignaal signals import`, all rows or none."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from services.cli import app as cli_app
from services.ingest.csv_format import CSV_COLUMNS
from tests.ingest.conftest import PROVIDER_A, World, stored_counts


def csv_text(*rows: dict[str, str]) -> str:
    """A CSV with the documented header and the given cells filled (quoted where needed)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def row(department: str, kind: str, hours_ago: int = 1, **data: str) -> dict[str, str]:
    return {"department": department, "kind": kind, "observed_at": when(hours_ago), **data}


def when(hours_ago: int = 1) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat()


GOOD = (
    {
        "department": "HIC-ZWOLLE",
        "kind": "staffing",
        "observed_at": when(),
        "fte_budgeted": "30",
        "sick_leave_pct": "9,5",
    },
    {
        "department": "FACT-ZWOLLE",
        "kind": "waitlist",
        "observed_at": when(2),
        "waiting_count": "41",
        "behandelwachttijd_weeks": "13.5",
    },
    {"department": "HIC-ZWOLLE", "kind": "admission_stop", "observed_at": when(3), "active": "ja"},
)


async def test_upload_stores_every_row(
    client: httpx.AsyncClient, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    answer = await client.post(
        "/v1/signals/csv",
        content=csv_text(*GOOD),
        headers={**world.auth("provider_a"), "Content-Type": "text/csv"},
    )
    assert answer.status_code == 202, answer.text
    assert [s["kind"] for s in answer.json()["signals"]] == [
        "staffing",
        "waitlist",
        "admission_stop",
    ]
    assert await stored_counts(sessions) == (3, 3)


async def test_upload_with_bad_rows_is_refused_whole(
    client: httpx.AsyncClient, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    bad = (
        GOOD[0],
        {
            "department": "HIC-ZWOLLE",
            "kind": "staffing",
            "observed_at": when(),
            "fte_budgeted": "30",
            "sick_leave_pct": "140",
        },
        {
            "department": "HIC-ZWOLLE",
            "kind": "waitlist",
            "observed_at": when(),
            "fte_budgeted": "3",
        },
    )
    answer = await client.post(
        "/v1/signals/csv",
        content=csv_text(*bad),
        headers={**world.auth("provider_a"), "Content-Type": "text/csv"},
    )
    assert answer.status_code == 422
    paths = " ".join(error["path"] for error in answer.json()["errors"])
    assert "row 2" in paths and "sick_leave_pct" in paths and "row 3" in paths
    assert not any(error["path"].startswith("row 1") for error in answer.json()["errors"])
    assert await stored_counts(sessions) == (0, 0)
    wrong_type = await client.post(
        "/v1/signals/csv", content=csv_text(*GOOD), headers=world.auth("provider_a")
    )
    assert wrong_type.status_code == 415


def run_cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli_app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


async def test_signals_import_command(
    cli_env: dict[str, str],
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:

    good = tmp_path / "export.csv"
    good.write_text(csv_text(*GOOD), encoding="utf-8")
    code, out, err = await asyncio.to_thread(
        run_cli, cli_env, "signals", "import", str(good), "--org", PROVIDER_A, "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report == report | {"rows": 3, "stored": 3, "already_stored": 0}
    assert report["by_kind"] == {"admission_stop": 1, "staffing": 1, "waitlist": 1}
    assert await stored_counts(sessions) == (3, 3)

    bad = tmp_path / "bad.csv"
    bad.write_text(
        csv_text(
            GOOD[0],
            {
                "department": "HIC-ZWOLLE",
                "kind": "capacity",
                "observed_at": when(),
                "beds_total": "10",
                "beds_occupied": "12",
            },
        )
    )
    code, _, err = await asyncio.to_thread(
        run_cli, cli_env, "signals", "import", str(bad), "--org", PROVIDER_A
    )
    assert code == 2
    assert "row 2" in err and "beds_occupied" in err
    code, _, err = await asyncio.to_thread(
        run_cli, cli_env, "signals", "import", str(good), "--org", "ijssel-vecht"
    )
    assert code == 2 and "may not post signals" in err
    assert await stored_counts(sessions) == (3, 3)


async def test_inbound_add_prints_a_secret_once(cli_env: dict[str, str], world: World) -> None:

    code, out, err = await asyncio.to_thread(
        run_cli, cli_env, "inbound", "add", "--org", "73990002", "--json"
    )
    assert code == 0, err
    made = json.loads(out)
    assert made["secret"].startswith("whsec_")
    assert made["url"] == "/v1/webhooks/inbound/ggz-noorderlicht"
    code, _, err = await asyncio.to_thread(run_cli, cli_env, "inbound", "add", "--org", "73990002")
    assert code == 2 and "already exists" in err
    code, _, err = await asyncio.to_thread(
        run_cli, cli_env, "inbound", "add", "--org", "governance"
    )
    assert code == 2 and "only providers and insurers" in err
