"""The dashboard's words in Dutch (the default: its readers are Dutch) and English.

One table of texts keyed by a short name, so a page template says `t("alerts")` and never holds a
sentence of its own; the labels of the code lists (levels, steps, statuses, clusters, timeline
entries) live here too. Numbers and dates go through services/core/charts.py, which the digest
uses as well.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal
from zoneinfo import ZoneInfo

from services.core import charts

Lang = Literal["nl", "en"]
LANGUAGES: tuple[Lang, ...] = ("nl", "en")
DEFAULT_LANG: Lang = "nl"

TEXTS: dict[str, tuple[str, str]] = {
    # (Dutch, English)
    "app": ("Vroegsignaal", "Vroegsignaal"),
    "tagline": ("Continuïteit van cruciale ggz", "Continuity of crucial mental health care"),
    "skip": ("Naar de inhoud", "Skip to content"),
    "nav": ("Hoofdmenu", "Main menu"),
    "overview": ("Overzicht", "Overview"),
    "alerts": ("Meldingen", "Alerts"),
    "alert": ("Melding", "Alert"),
    "digests": ("Maandoverzichten", "Monthly digests"),
    "webhooks": ("Webhooks", "Webhooks"),
    "logout": ("Uitloggen", "Log out"),
    "login": ("Inloggen", "Log in"),
    "login_title": ("Inloggen bij Vroegsignaal", "Log in to Vroegsignaal"),
    "email": ("E-mailadres", "E-mail address"),
    "password": ("Wachtwoord", "Password"),
    "login_failed": (
        "Het e-mailadres of het wachtwoord klopt niet.",
        "The e-mail address or the password is not right.",
    ),
    "login_throttled": (
        "Te veel mislukte pogingen. Probeer het over een kwartier opnieuw.",
        "Too many failed attempts. Try again in a quarter of an hour.",
    ),
    "logged_out": ("U bent uitgelogd.", "You have logged out."),
    "session_expired": (
        "Uw sessie is verlopen. Log opnieuw in.",
        "Your session has expired. Please log in again.",
    ),
    "language": ("Taal", "Language"),
    "switch_language": ("English", "Nederlands"),
    "signed_in_as": ("Ingelogd als", "Signed in as"),
    "live_title": ("Live: nieuwe en gewijzigde meldingen", "Live: new and changed alerts"),
    "live_none": (
        "Nieuwe en gewijzigde meldingen verschijnen hier zonder de pagina te vernieuwen.",
        "New and changed alerts appear here without reloading the page.",
    ),
    "live_this_changed": (
        "Deze melding is zojuist gewijzigd. Vernieuw de pagina om de wijziging te zien.",
        "This alert has just changed. Reload the page to see the change.",
    ),
    "reload": ("Pagina vernieuwen", "Reload page"),
    # overview
    "coverage_map": ("Dekking per regio en cluster", "Coverage per region and cluster"),
    "coverage_map_intro": (
        "Per regio en cluster: afdelingen, hoeveel daarvan dreigend of acuut zijn, en de"
        " capaciteit die op het spel staat. Het niveau staat in tekst en met een symbool.",
        "Per region and cluster: departments, how many are threatened or critical, and the"
        " capacity at risk. The level is given in text and by a symbol.",
    ),
    "coverage_none": (
        "Er zijn nog geen dekkingsgegevens voor uw regio's.",
        "There are no coverage figures for your regions yet.",
    ),
    "national_cells": ("Landelijk (bovenregionaal)", "National (supra-regional)"),
    "region": ("Regio", "Region"),
    "regions": ("Regio's", "Regions"),
    "cluster": ("Cluster", "Cluster"),
    "care_type": ("Zorgvorm", "Care type"),
    "departments": ("Afdelingen", "Departments"),
    "department": ("Afdeling", "Department"),
    "threatened_n": ("dreigend", "threatened"),
    "critical_n": ("acuut", "critical"),
    "capacity_at_risk": ("Capaciteit in gevaar", "Capacity at risk"),
    "capacity": ("Capaciteit", "Capacity"),
    "gap": ("Geen alternatief meer", "No alternative left"),
    "open_by_level_step": (
        "Open meldingen per niveau en stap",
        "Open alerts by level and step",
    ),
    "total": ("Totaal", "Total"),
    "at_national_table": ("Bij de landelijke tafel", "At the national table"),
    "at_national_none": (
        "Er ligt nu niets bij de landelijke tafel dat u mag zien.",
        "Nothing you may see is at the national table now.",
    ),
    "newest_changes": ("Laatste wijzigingen", "Latest changes"),
    "newest_none": ("Nog geen wijzigingen.", "No changes yet."),
    "all_alerts": ("Alle meldingen", "All alerts"),
    # alert list
    "filters": ("Filters", "Filters"),
    "filter": ("Filteren", "Filter"),
    "clear_filters": ("Filters wissen", "Clear filters"),
    "any": ("(alle)", "(any)"),
    "level": ("Niveau", "Level"),
    "status": ("Status", "Status"),
    "step": ("Stap", "Step"),
    "provider": ("Zorgaanbieder", "Provider"),
    "provider_hint": ("AGB-code of (deel van de) naam", "AGB code or (part of the) name"),
    "opened": ("Geopend", "Opened"),
    "updated": ("Gewijzigd", "Changed"),
    "sort": ("Sorteren op", "Sort by"),
    "sort_dir": ("Volgorde", "Order"),
    "newest_first": ("aflopend", "descending"),
    "oldest_first": ("oplopend", "ascending"),
    "no_alerts": (
        "Geen meldingen die aan deze filters voldoen.",
        "No alerts match these filters.",
    ),
    "results": ("{n} meldingen", "{n} alerts"),
    "result_one": ("1 melding", "1 alert"),
    "page_of": ("Pagina {page} van {pages}", "Page {page} of {pages}"),
    "previous": ("Vorige", "Previous"),
    "next": ("Volgende", "Next"),
    "pagination": ("Paginering", "Pagination"),
    "bad_filter": (
        "Een filter had een onbekende waarde en is genegeerd: {names}.",
        "A filter had an unknown value and was ignored: {names}.",
    ),
    "coverage_alert": ("Dekkingstekort", "Coverage gap"),
    "silenced": ("stilgezet", "silenced"),
    # alert detail
    "why": ("Waarom", "Why"),
    "figures": ("Cijfers", "Figures"),
    "chart_of": ("Grafiek: {title}", "Chart: {title}"),
    "chart_table": ("De cijfers van deze grafiek", "The figures of this chart"),
    "no_chart": (
        "Bij deze reden hoort geen reeks cijfers om te tonen.",
        "This reason has no series of figures to show.",
    ),
    "forecast": ("Prognose", "Forecast"),
    "forecast_text": (
        "Bij deze trend komt {measure} over ongeveer {days} dagen boven {limit}.",
        "At this rate {measure} passes {limit} in about {days} days.",
    ),
    "threshold": ("Drempel", "Threshold"),
    "norm": ("Norm", "Norm"),
    "timeline": ("Tijdlijn", "Timeline"),
    "actions": ("Wat u kunt doen", "What you can do"),
    "no_actions": (
        "U kunt met deze melding nu niets doen; u kunt haar wel lezen.",
        "You cannot act on this alert now; you can read it.",
    ),
    "acknowledge": ("In behandeling nemen", "Acknowledge"),
    "acknowledge_help": (
        "Neemt u de melding op deze stap in behandeling? De termijn voor opschalen stopt dan.",
        "Take the alert on at this step: its escalation timer stops.",
    ),
    "comment": ("Opmerking plaatsen", "Add comment"),
    "resolve": ("Afsluiten", "Resolve"),
    "note": ("Toelichting (geen persoonsgegevens)", "Note (no personal data)"),
    "note_optional": (
        "Toelichting, optioneel (geen persoonsgegevens)",
        "Note, optional (no personal data)",
    ),
    "resolve_reason": ("Reden van afsluiten", "Why it is closed"),
    "resolution.manual": ("Opgelost", "Solved"),
    "resolution.department_closed": ("Afdeling gesloten", "Department closed"),
    "resolution.recovered": ("Hersteld (door de regels)", "Recovered (by the rules)"),
    "done.acknowledge": ("De melding is in behandeling genomen.", "The alert is acknowledged."),
    "done.comment": ("Uw opmerking staat op de tijdlijn.", "Your comment is on the timeline."),
    "done.resolve": ("De melding is afgesloten.", "The alert is resolved."),
    "refused": ("Dat kon niet: {detail}", "That was not possible: {detail}"),
    "step_due": ("Wordt opgeschaald op", "Escalates on"),
    "no_alternative": ("Geen gelijkwaardig alternatief", "No equivalent alternative"),
    "by_engine": ("Vroegsignaal", "Vroegsignaal"),
    "signals_behind": ("Signalen achter deze melding", "Signals behind this alert"),
    "observed": ("Waargenomen", "Observed"),
    "kind": ("Soort", "Kind"),
    "data": ("Gegevens", "Data"),
    "open_department": ("Naar de afdeling", "To the department"),
    "open_region": ("Naar de regio", "To the region"),
    # department
    "assessment_now": ("Huidige beoordeling", "Current assessment"),
    "not_judged": (
        "Nog niet beoordeeld: er is nog geen signaal.",
        "Not judged yet: no signal so far.",
    ),
    "assessment_history": ("Beoordelingen", "Assessments"),
    "assessed": ("Beoordeeld", "Assessed"),
    "reasons": ("Redenen", "Reasons"),
    "series": ("Signalen in de tijd", "Signals over time"),
    "no_series": ("Nog geen signalen met cijfers.", "No signals with figures yet."),
    "events": ("Gebeurtenissen", "Events"),
    "no_signals_for_role": (
        "Het bestuurlijk overleg leest het maandoverzicht, geen losse signalen.",
        "The governance board reads the digest, not raw signals.",
    ),
    "department_alerts": ("Meldingen van deze afdeling", "Alerts of this department"),
    "older": ("Oudere beoordelingen", "Older assessments"),
    "scope": ("Reikwijdte", "Scope"),
    "scope.regional": ("regionaal", "regional"),
    "scope.supra_regional": ("bovenregionaal", "supra-regional"),
    "dept_status.active": ("actief", "active"),
    "dept_status.closed": ("gesloten", "closed"),
    # region
    "region_coverage": ("Dekking per zorgvorm", "Coverage per care type"),
    "region_alerts": ("Open meldingen in deze regio", "Open alerts in this region"),
    "region_departments": ("Afdelingen in deze regio", "Departments in this region"),
    "current_level": ("Huidig niveau", "Current level"),
    # digests
    "digest_intro": (
        "Elke maand maakt Vroegsignaal een escalatieoverzicht voor het bestuurlijk overleg"
        " cruciale ggz.",
        "Each month Vroegsignaal makes an escalation digest for the governance board of crucial"
        " mental health care.",
    ),
    "digest_empty": (
        "Er zijn nog geen maandoverzichten gemaakt. Het eerste verschijnt na afloop van de"
        " eerste volle maand.",
        "No monthly digests have been made yet. The first appears after the first full month.",
    ),
    "period": ("Maand", "Month"),
    "made_at": ("Gemaakt", "Made"),
    "published_at": ("Gepubliceerd", "Published"),
    "open_html": ("Openen (HTML)", "Open (HTML)"),
    "open_pdf": ("PDF", "PDF"),
    "not_published": ("nog niet", "not yet"),
    # webhooks
    "webhooks_intro": (
        "De webhook-adressen van uw organisatie en wat er naartoe is verstuurd.",
        "Your organisation's webhook endpoints and what was sent to them.",
    ),
    "subscriptions": ("Webhook-adressen", "Webhook endpoints"),
    "no_subscriptions": (
        "Uw organisatie heeft nog geen webhook-adressen. Die legt u vast via de API"
        " (POST /v1/subscriptions).",
        "Your organisation has no webhook endpoints yet. Register them through the API"
        " (POST /v1/subscriptions).",
    ),
    "url": ("Adres", "URL"),
    "event_types": ("Soorten gebeurtenissen", "Event types"),
    "active": ("Actief", "Active"),
    "disabled": ("uitgeschakeld", "disabled"),
    "yes": ("ja", "yes"),
    "no": ("nee", "no"),
    "deliveries": ("Verzendlog", "Delivery log"),
    "no_deliveries": ("Nog niets verstuurd.", "Nothing sent yet."),
    "channel": ("Kanaal", "Channel"),
    "recipient": ("Ontvanger", "Recipient"),
    "attempts": ("Pogingen", "Attempts"),
    "last_error": ("Laatste fout", "Last error"),
    "created": ("Aangemaakt", "Created"),
    "retry": ("Opnieuw versturen", "Send again"),
    "retried": (
        "De levering staat weer in de wachtrij.",
        "The delivery is queued again.",
    ),
    "delivery_status.pending": ("wacht", "pending"),
    "delivery_status.succeeded": ("gelukt", "succeeded"),
    "delivery_status.failed": ("mislukt", "failed"),
    "event_type": ("Gebeurtenis", "Event"),
    # errors
    "error": ("Er ging iets mis", "Something went wrong"),
    "forbidden": (
        "Deze pagina is niet voor uw organisatie bedoeld.",
        "This page is not meant for your organisation.",
    ),
    "not_found": ("Deze pagina bestaat niet.", "This page does not exist."),
    "csrf_failed": (
        "Het formulier was verlopen of kwam niet van deze site. Probeer het opnieuw.",
        "The form had expired or did not come from this site. Please try again.",
    ),
    "bad_request": ("Dit verzoek kon niet worden gelezen.", "This request could not be read."),
    "unavailable": (
        "De database is even niet bereikbaar. Probeer het zo opnieuw.",
        "The database is unavailable for a moment. Please try again shortly.",
    ),
    "back_overview": ("Terug naar het overzicht", "Back to the overview"),
    "invalid_note": ("De toelichting is niet geldig: {detail}", "The note is not valid: {detail}"),
}

LEVELS: dict[str, tuple[str, str, str]] = {
    # level: (icon, Dutch, English) — the icon differs in shape, not only in colour
    "ok": ("✓", "in orde", "ok"),
    "watch": ("◆", "aandacht", "watch"),
    "threatened": ("▲", "dreigend", "threatened"),
    "critical": ("✖", "acuut", "critical"),
}
STEPS: dict[str, tuple[str, str]] = {
    "provider": ("aanbieder en verzekeraar", "provider and insurer"),
    "regional_table": ("regionale tafel", "regional table"),
    "national_table": ("landelijke tafel", "national table"),
}
STATUSES: dict[str, tuple[str, str]] = {
    "open": ("open", "open"),
    "acknowledged": ("in behandeling", "acknowledged"),
    "resolved": ("afgesloten", "resolved"),
}
CLUSTERS: dict[str, tuple[str, str]] = {
    "acute": ("Acute ggz", "Acute care"),
    "outreach": ("Outreachende zorg", "Outreach care"),
    "clinical": ("Klinische zorg", "Inpatient care"),
    "secure": ("Beveiligde zorg", "Secure care"),
    "highly_specialised": ("Hoogspecialistische ggz", "Highly specialised care"),
    "crisis_beds": ("Crisisbedden", "Crisis beds"),
}
TIMELINE: dict[str, tuple[str, str]] = {
    "opened": ("Geopend", "Opened"),
    "updated": ("Bijgewerkt", "Updated"),
    "escalated": ("Opgeschaald", "Escalated"),
    "acknowledged": ("In behandeling genomen", "Acknowledged"),
    "commented": ("Opmerking", "Comment"),
    "silenced": ("Stilgezet", "Silenced"),
    "unsilenced": ("Stilte opgeheven", "Silence lifted"),
    "reannounced": ("Opnieuw gemeld", "Announced again"),
    "resolved": ("Afgesloten", "Resolved"),
}
ESCALATION_REASONS: dict[str, tuple[str, str]] = {
    "level": ("het niveau vraagt erom", "its level asks for it"),
    "timer": ("niet op tijd in behandeling genomen", "not acknowledged in time"),
    "coverage": ("dekkingstekort in de regio", "a coverage gap in the region"),
}
SIGNAL_KINDS: dict[str, tuple[str, str]] = {
    "staffing": ("Personeel", "Staffing"),
    "waitlist": ("Wachtlijst", "Waiting list"),
    "capacity": ("Bedden", "Beds"),
    "admission_stop": ("Opnamestop", "Admission stop"),
    "closure": ("Sluiting", "Closure"),
    "contract": ("Contract", "Contract"),
}
FIELDS: dict[str, tuple[str, str]] = {
    "fte_budgeted": ("formatie (fte)", "budgeted FTE"),
    "fte_filled": ("bezet (fte)", "filled FTE"),
    "vacancies_fte": ("vacatures (fte)", "vacancies (FTE)"),
    "psychiatrist_fte": ("psychiaters (fte)", "psychiatrists (FTE)"),
    "vacancy_pct": ("vacatures (% van formatie)", "vacancies (% of budget)"),
    "sick_leave_pct": ("ziekteverzuim (%)", "sick leave (%)"),
    "temp_staff_pct": ("tijdelijk personeel (%)", "temporary staff (%)"),
    "unfilled_shifts_pct": ("onbezette diensten (%)", "unfilled shifts (%)"),
    "waiting_count": ("wachtenden", "people waiting"),
    "waiting_over_norm_count": ("wachtenden boven de norm", "waiting beyond the norm"),
    "aanmeldwachttijd_weeks": ("aanmeldwachttijd (weken)", "registration wait (weeks)"),
    "behandelwachttijd_weeks": ("behandelwachttijd (weken)", "treatment wait (weeks)"),
    "beds_total": ("bedden totaal", "beds in total"),
    "beds_occupied": ("bedden bezet", "beds occupied"),
    "beds_closed": ("bedden gesloten", "beds closed"),
    "out_of_area_placements": ("buiten de regio geplaatst", "placed outside the region"),
    "occupancy_pct": ("bezetting (% van open bedden)", "occupancy (% of open beds)"),
    "closed_pct": ("gesloten bedden (%)", "closed beds (%)"),
    "days_active": ("dagen opnamestop", "days of admission stop"),
    "days_until": ("dagen tot sluiting", "days until closure"),
    "capacity_lost": ("capaciteit die verdwijnt", "capacity lost"),
}


def pick(pair: tuple[str, str], lang: str) -> str:
    return pair[1] if lang == "en" else pair[0]


class Words:
    """The texts and formatters of one language, as a page template uses them."""

    def __init__(self, lang: Lang, zone: ZoneInfo) -> None:
        self.lang: Lang = lang
        self.zone = zone

    def __call__(self, key: str, **values: object) -> str:
        pair = TEXTS.get(key)
        text = pick(pair, self.lang) if pair else key
        return text.format(**values) if values else text

    def pick(self, pair: tuple[str, str]) -> str:
        return pick(pair, self.lang)

    def level(self, value: str) -> str:
        _, nl, en = LEVELS.get(value, ("", value, value))
        return en if self.lang == "en" else nl

    def level_icon(self, value: str) -> str:
        return LEVELS.get(value, ("?", value, value))[0]

    def step(self, value: str) -> str:
        return pick(STEPS.get(value, (value, value)), self.lang)

    def status(self, value: str) -> str:
        return pick(STATUSES.get(value, (value, value)), self.lang)

    def cluster(self, value: str) -> str:
        return pick(CLUSTERS.get(value, (value, value)), self.lang)

    def timeline(self, value: str) -> str:
        return pick(TIMELINE.get(value, (value, value)), self.lang)

    def escalation_reason(self, value: str) -> str:
        return pick(ESCALATION_REASONS.get(value, (value, value)), self.lang)

    def signal_kind(self, value: str) -> str:
        return pick(SIGNAL_KINDS.get(value, (value, value)), self.lang)

    def field(self, value: str) -> str:
        return pick(
            FIELDS.get(value, (value.replace("_", " "), value.replace("_", " "))), self.lang
        )

    def number(self, value: float | int | None, decimals: int | None = None) -> str:
        return charts.format_number(value, decimals, lang=self.lang)

    def datetime(self, value: dt.datetime | None) -> str:
        return charts.format_datetime(value, self.zone, lang=self.lang) if value else "–"

    def date(self, value: dt.date | dt.datetime | None) -> str:
        return charts.format_date(value, self.zone, lang=self.lang) if value else "–"

    def value(self, value: object) -> str:
        """A figure from a signal or reason: numbers the Dutch way, yes/no, text as it is."""
        if isinstance(value, bool):
            return self("yes") if value else self("no")
        if isinstance(value, int | float):
            return self.number(value)
        return "–" if value is None else str(value)

    def care_type(self, names: tuple[str, str] | None, code: str) -> str:
        return pick(names, self.lang) if names else code


def parse_lang(value: object) -> Lang:
    return "en" if value == "en" else "nl"
