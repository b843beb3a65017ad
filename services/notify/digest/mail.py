"""The e-mail that brings the digest to the governance board: the month's headline figures in a
few lines, the PDF attached, and a link to the page in the dashboard."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from services.core.charts import format_datetime, format_number
from services.notify.digest.document import DigestFigures
from services.notify.messages import Mail


def digest_mail(
    figures: DigestFigures, *, public_url: str, zone: ZoneInfo, remade: bool = False
) -> Mail:
    """Subject and plain text (Dutch)."""
    h = figures.headline
    previous = figures.trend[-2].label if len(figures.trend) > 1 else "vorige maand"
    subject = f"[Vroegsignaal] Maandoverzicht cruciale ggz {figures.label}" + (
        " (herziene versie)" if remade else ""
    )
    link = f"{public_url.rstrip('/')}/digests/{figures.period}"
    lines = [
        f"Het maandoverzicht cruciale ggz over {figures.label} staat klaar"
        + (" in een herziene versie." if remade else "."),
        "",
    ]
    if figures.empty:
        lines += [
            f"Over {figures.label} is niets te melden: geen nieuwe meldingen, geen opschalingen,"
            " en aan het eind van de maand stond geen melding open.",
            f"Vroegsignaal volgde {format_number(h.departments.value)} afdelingen.",
        ]
    else:
        rows = (
            ("Nieuwe meldingen", h.opened),
            ("Opschalingen", h.escalated),
            ("  naar de landelijke tafel", h.escalated_national_table),
            ("Afgesloten", h.resolved),
            ("Open aan het eind", h.open),
            ("  bij de landelijke tafel", h.national_open),
            ("  acuut", h.critical_open),
            ("Dekkingstekorten", h.coverage_gaps),
        )
        lines.append(f"{'':28}{figures.label:>16}{previous:>16}")
        lines += [
            f"{label:28}{format_number(c.value):>16}{format_number(c.previous):>16}"
            for label, c in rows
        ]
        silent = figures.completeness.silent
        if silent:
            lines += [
                "",
                f"{format_number(silent)} van de {format_number(figures.completeness.departments)}"
                " afdelingen leverden deze maand geen gegevens aan.",
            ]
    lines += [
        "",
        "Het volledige overzicht zit als PDF bij dit bericht. Lees het ook in het dashboard:",
        link,
        "",
        f"Gemaakt op {format_datetime(figures.made_at, zone)} door Vroegsignaal cruciale ggz"
        f" (regelset {figures.ruleset_version}). U ontvangt dit bericht als lid van het"
        " bestuurlijk overleg cruciale ggz.",
    ]
    return Mail(subject=subject, text="\n".join(lines) + "\n")
