"""Municipality → IZA region for replays of NZa files: the derived table, how it is made and read.

No published table maps every municipality to its IZA region (the VWS SPUK letter names only each
region's mandate municipality). So the replay ships the best honest approximation it can derive
from two public files, and marks how each row was placed (docs/replay.md, "Regions"):

1. `mandate`: the municipality is an IZA region's mandate municipality.
2. `care_office`: its care-office region (zorgkantoorregio, NZa/Vektis 2017) holds the mandate
   municipality of exactly one IZA region.
3. `province`: otherwise, the one IZA region whose mandate municipality lies in the same care-office
   region and province (or, when the care-office region holds none, in the same province).
4. `ambiguous`: still several or none; the table leaves the region empty and a replay skips rows
   there rather than guess.

The result is `services/core/reference/municipality_iza_regions.csv`; run this module to make it
again: `python -m services.ingest.replay_nza_regions AWBZ_TABLE.csv IZA_REGIONS.csv > out.csv`.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources

from services.core.domain import slugify

TABLE_FILE = "municipality_iza_regions.csv"
TABLE_COLUMNS = (
    "municipality_code",
    "municipality",
    "province",
    "care_office_region",
    "region",
    "method",
    "note",
)
_PACKAGE = "services.core.reference"

# Municipalities formed 2014-2018 that the 2017 care-office table still lists by their predecessors
# (CBS, "Gemeentelijke indeling" and its yearly list of changes). Each new code takes the row of a
# predecessor; all predecessors of one new municipality lie in one care-office region.
SUCCESSORS: Mapping[str, tuple[str, str, tuple[str, ...]]] = {
    "1930": ("Nissewaard", "2015", ("0612", "0568")),  # Spijkenisse, Bernisse
    "1940": ("De Fryske Marren", "2015 (renamed)", ("1921",)),  # De Friese Meren
    "1942": ("Gooise Meren", "2016", ("0381", "0424", "0425")),  # Bussum, Muiden, Naarden
    "1945": ("Berg en Dal", "2016", ("0241", "0265", "0282")),  # Groesbeek, Millingen, Ubbergen
    "1950": ("Westerwolde", "2018", ("0007", "0048")),  # Bellingwedde, Vlagtwedde
}
# Mandate "municipalities" that are not a municipality of the care-office table.
MANDATE_PLACES: Mapping[str, str] = {
    "SamenTwente": "TWENTE",  # the public body of the Twente municipalities: care office Twente
}


class Method(StrEnum):
    """How a municipality was placed in its IZA region; `ambiguous` places it nowhere."""

    MANDATE = "mandate"
    CARE_OFFICE = "care_office"
    PROVINCE = "province"
    AMBIGUOUS = "ambiguous"


@dataclass(frozen=True)
class Placement:
    """One municipality of the table: its IZA region code (None when ambiguous) and why."""

    municipality_code: str
    municipality: str
    province: str
    care_office_region: str
    region: str | None
    method: Method
    note: str = ""


def _key(name: str) -> str:
    """'S HERTOGENBOSCH and 's-Hertogenbosch compare equal."""
    return re.sub(r"[^a-z]", "", name.lower())


def derive_placements(
    municipalities: Iterable[Mapping[str, str]], regions: Iterable[Mapping[str, str]]
) -> list[Placement]:
    """The table from the care-office rows (`gemeentecode,gemeente,provincie,zorgkantoorregio`)
    and the IZA regions (`regio,mandaatgemeente`), successors added; see the module docstring."""
    rows = [{**row, "gemeentecode": row["gemeentecode"].strip().zfill(4)} for row in municipalities]
    by_code = {row["gemeentecode"]: row for row in rows}
    by_name = {_key(row["gemeente"]): row for row in rows}
    for code, (name, _, predecessors) in SUCCESSORS.items():
        first = by_code.get(predecessors[0])
        if first is None:  # a source without the predecessor: nothing to place it by
            continue
        by_code[code] = {**first, "gemeentecode": code, "gemeente": name}
        by_name.setdefault(_key(name), by_code[code])
    # each IZA region: (code, care-office region, province) of its mandate municipality
    mandates: list[tuple[str, str, str, str]] = []
    for iza in regions:
        place = iza["mandaatgemeente"]
        if place in MANDATE_PLACES:
            office = MANDATE_PLACES[place]
            province = next(r["provincie"] for r in rows if r["zorgkantoorregio"] == office)
            mandates.append((slugify(iza["regio"]), office, province, ""))
            continue
        found = by_name[_key(place)]
        mandates.append(
            (slugify(iza["regio"]), found["zorgkantoorregio"], found["provincie"], _key(place))
        )
    placements = []
    for code in sorted(by_code):
        row = by_code[code]
        note = ""
        if code in SUCCESSORS:
            name, year, predecessors = SUCCESSORS[code]
            note = f"formed {year} from {', '.join(predecessors)}; placed as its predecessors"
        region, method = _place(row, mandates)
        placements.append(
            Placement(
                municipality_code=code,
                municipality=row["gemeente"],
                province=row["provincie"],
                care_office_region=row["zorgkantoorregio"],
                region=region,
                method=method,
                note=note,
            )
        )
    return placements


def _place(
    row: Mapping[str, str], mandates: list[tuple[str, str, str, str]]
) -> tuple[str | None, Method]:
    own = [code for code, _, _, name in mandates if name and name == _key(row["gemeente"])]
    if len(own) == 1:
        return own[0], Method.MANDATE
    office, province = row["zorgkantoorregio"], row["provincie"]
    in_office = [m for m in mandates if m[1] == office]
    if len(in_office) == 1:
        return in_office[0][0], Method.CARE_OFFICE
    same = [m for m in in_office if m[2] == province] if in_office else []
    if not in_office:
        same = [m for m in mandates if m[2] == province]
    if len(same) == 1:
        return same[0][0], Method.PROVINCE
    return None, Method.AMBIGUOUS


def render_table(placements: Iterable[Placement]) -> str:
    """The shipped CSV text of the table."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TABLE_COLUMNS)
    for p in placements:
        writer.writerow(
            [
                p.municipality_code,
                p.municipality,
                p.province,
                p.care_office_region,
                p.region or "",
                p.method.value,
                p.note,
            ]
        )
    return buffer.getvalue()


def parse_table(text: str) -> dict[str, Placement]:
    """The table by four-digit municipality code (CBS code, zero-padded)."""
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != TABLE_COLUMNS:
        raise ValueError(f"{TABLE_FILE}: columns must be {','.join(TABLE_COLUMNS)}")
    return {
        row["municipality_code"]: Placement(
            municipality_code=row["municipality_code"],
            municipality=row["municipality"],
            province=row["province"],
            care_office_region=row["care_office_region"],
            region=row["region"] or None,
            method=Method(row["method"]),
            note=row["note"],
        )
        for row in reader
    }


@cache
def municipality_regions() -> Mapping[str, Placement]:
    """The packaged table, read once per process."""
    text = resources.files(_PACKAGE).joinpath(TABLE_FILE).read_text(encoding="utf-8")
    return parse_table(text)


def main(argv: list[str]) -> int:
    """Print the table made from the two source files named on the command line."""
    if len(argv) != 2:
        sys.stderr.write(__doc__ or "")
        return 2
    with (
        open(argv[0], encoding="utf-8-sig", newline="") as a,
        open(argv[1], encoding="utf-8-sig", newline="") as b,
    ):
        placements = derive_placements(csv.DictReader(a), csv.DictReader(b))
    sys.stdout.write(render_table(placements))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
