"""The sample of the NZa waiting-time file that the replay tests read (see data/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.ingest.replay_nza import read_nza_file
from tests.cli.conftest import cli, seeded  # noqa: F401 (the CLI fixtures, for test_cli.py)

SAMPLE = Path(__file__).parent / "data" / "nza_wachttijden_ggz_2018q1_sample.csv"


@pytest.fixture(scope="session")
def sample_rows() -> list[dict[str, str]]:
    """The 400 rows of the sample, as the replay reads them."""
    return read_nza_file(SAMPLE.read_text(encoding="utf-8-sig"), SAMPLE.name)
