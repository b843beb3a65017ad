"""The derived municipality → IZA region table: the shipped file, and the rules that made it."""

from __future__ import annotations

from collections import Counter

from services.core.reference.files import packaged_regions
from services.ingest.replay_nza_regions import (
    Method,
    derive_placements,
    municipality_regions,
    parse_table,
    render_table,
)

# Real rows of the two source files (NZa/Vektis 2017 care-office table, VWS SPUK IZA 2025).
CARE_OFFICES = [
    ("0344", "UTRECHT", "Utrecht", "UTRECHT"),
    ("0307", "AMERSFOORT", "Utrecht", "UTRECHT"),
    ("0310", "DE BILT", "Utrecht", "UTRECHT"),
    ("0193", "ZWOLLE", "Overijssel", "ZWOLLE"),
    ("0230", "ELBURG", "Gelderland", "ZWOLLE"),
    ("0243", "HARDERWIJK", "Gelderland", "ZWOLLE"),
    ("0166", "KAMPEN", "Overijssel", "ZWOLLE"),
    ("0153", "ENSCHEDE", "Overijssel", "TWENTE"),
    ("0612", "SPIJKENISSE", "Zuid-Holland", "ZUID-HOLLANDSE EILANDEN"),
    ("0568", "BERNISSE", "Zuid-Holland", "ZUID-HOLLANDSE EILANDEN"),
    ("0995", "LELYSTAD", "Flevoland", "FLEVOLAND"),
    ("0034", "ALMERE", "Flevoland", "'T GOOI"),
    ("0402", "HILVERSUM", "Noord-Holland", "'T GOOI"),
]
IZA = [
    ("Utrecht", "Utrecht"),
    ("Utrecht-Eemland", "Amersfoort"),
    ("IJssel-Vecht", "Zwolle"),
    ("Noord Veluwe", "Elburg"),
    ("Twente", "SamenTwente"),
    ("ZHE-BAR", "Nissewaard"),
    ("Flevoland", "Almere"),
    ("Gooi en Vechtstreek", "Hilversum"),
]


def _derive() -> dict[str, tuple[str | None, Method]]:
    municipalities = [
        {"gemeentecode": c, "gemeente": n, "provincie": p, "zorgkantoorregio": o}
        for c, n, p, o in CARE_OFFICES
    ]
    regions = [{"regio": r, "mandaatgemeente": m} for r, m in IZA]
    return {
        p.municipality_code: (p.region, p.method)
        for p in derive_placements(municipalities, regions)
    }


def test_each_rule_places_real_municipalities() -> None:
    placed = _derive()
    assert placed["0344"] == ("utrecht", Method.MANDATE)
    assert placed["0307"] == ("utrecht-eemland", Method.MANDATE)
    # a care office with several IZA regions in one province: no guess
    assert placed["0310"] == (None, Method.AMBIGUOUS)
    # care office Zwolle holds IJssel-Vecht (Overijssel) and Noord Veluwe (Gelderland)
    assert placed["0243"] == ("noord-veluwe", Method.PROVINCE)
    assert placed["0166"] == ("ijssel-vecht", Method.PROVINCE)
    # SamenTwente is the Twente public body: care office Twente
    assert placed["0153"] == ("twente", Method.CARE_OFFICE)
    # Nissewaard (1930) was formed from Spijkenisse and Bernisse, and is ZHE-BAR's mandate
    assert placed["1930"] == ("zhe-bar", Method.MANDATE)
    assert placed["0612"] == ("zhe-bar", Method.CARE_OFFICE)
    # care office Flevoland holds no mandate municipality: the province's one region
    assert placed["0995"] == ("flevoland", Method.PROVINCE)
    assert placed["0034"] == ("flevoland", Method.MANDATE)


def test_the_shipped_table() -> None:
    table = municipality_regions()
    assert len(table) == 408  # 403 municipalities of 2017 + 5 formed 2015-2018
    assert Counter(p.method for p in table.values()) == {
        Method.CARE_OFFICE: 259,
        Method.AMBIGUOUS: 81,
        Method.MANDATE: 41,
        Method.PROVINCE: 27,
    }
    regions = {region.code for region in packaged_regions()}
    placed = {p.region for p in table.values() if p.region}
    assert placed == regions  # every IZA region is reached, and nothing else
    assert all((p.region is None) == (p.method is Method.AMBIGUOUS) for p in table.values())
    assert table["0363"].region == "amsterdam"
    assert table["1942"].region == "gooi-en-vechtstreek" and "0381" in table["1942"].note
    assert table["0202"].region == "arnhem"
    assert table["0274"].region is None  # Renkum: care office Arnhem holds three IZA regions


def test_the_table_reads_back_as_written() -> None:
    table = municipality_regions()
    assert parse_table(render_table(table.values())) == table
