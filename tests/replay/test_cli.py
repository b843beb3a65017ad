"""`vroegsignaal signals replay` as an operator runs it: dry run, replay, again, bad input."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import Result

from services.core.db.models import Department, Signal
from tests.cli.conftest import Cli
from tests.replay.conftest import SAMPLE

Sessions = async_sessionmaker[AsyncSession]


async def _stored(sessions: Sessions) -> tuple[int, int]:
    async with sessions() as session:
        departments = await session.scalar(select(func.count()).select_from(Department))
        signals = await session.scalar(select(func.count()).select_from(Signal))
    return int(departments or 0), int(signals or 0)


def _refused(result: Result, phrase: str) -> None:
    """Exit status 2 and one line on standard error that names the problem."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    message = result.stderr.strip()
    assert message.startswith("error:") and "\n" not in message, message
    assert phrase in message, message


async def test_dry_run_then_replay_then_replay_again(seeded: Cli, sessions: Sessions) -> None:
    dry = seeded.json("signals", "replay", str(SAMPLE), "--dry-run")
    assert dry["dry_run"] is True
    assert (dry["departments_created"], dry["signals_stored"]) == (227, 238)
    assert await _stored(sessions) == (0, 0)

    first = seeded.json("signals", "replay", str(SAMPLE))
    assert first["rows"] == 400 and first["rows_used"] == 239
    assert first["rows_skipped"] == {
        "ambiguous_region": 25,
        "basic_ggz": 70,
        "no_agb": 1,
        "no_offering": 8,
        "no_waiting_times": 52,
        "unknown_municipality": 5,
    }
    assert (first["providers_created"], first["departments_created"]) == (81, 227)
    assert first["stored_by_kind"] == {"admission_stop": 34, "closure": 12, "waitlist": 192}
    assert await _stored(sessions) == (227, 238)

    again = seeded("signals", "replay", str(SAMPLE))
    assert again.exit_code == 0, again.stderr
    assert "departments: 0 created, 227 already there" in again.stdout
    assert "signals: 0 stored, 238 already stored" in again.stdout
    assert "skipped (ambiguous_region 25, basic_ggz 70," in again.stdout
    assert await _stored(sessions) == (227, 238)


async def test_a_later_day_is_a_new_report(seeded: Cli, sessions: Sessions) -> None:
    seeded.json("signals", "replay", str(SAMPLE))
    later = seeded.json("signals", "replay", str(SAMPLE), "--observed-at", "2018-06-01")
    assert (later["departments_created"], later["signals_stored"]) == (0, 238)
    assert await _stored(sessions) == (227, 476)


async def test_bad_input_changes_nothing(seeded: Cli, sessions: Sessions, tmp_path: Path) -> None:
    other = tmp_path / "wachttijden_2016.csv"
    other.write_text("Zorgaanbieder,AGB-code,Wachttijd\nGGZ X,06290101,3\n", encoding="utf-8")
    _refused(seeded("signals", "replay", str(other)), "is not an NZa ggz waiting-time file")
    _refused(seeded("signals", "replay", str(tmp_path / "nope.csv")), "no such file")
    binary = tmp_path / "latin1.csv"
    binary.write_bytes("Opmerking\nCliëntenstop\n".encode("latin-1"))
    _refused(seeded("signals", "replay", str(binary)), "not UTF-8 text")
    future = seeded("signals", "replay", str(SAMPLE), "--observed-at", "2999-01-01")
    _refused(future, "is in the future")
    assert await _stored(sessions) == (0, 0)


async def test_refused_before_seed(cli: Cli, sessions: Sessions) -> None:
    _refused(cli("signals", "replay", str(SAMPLE)), "run `vroegsignaal seed` first")
    assert await _stored(sessions) == (0, 0)
