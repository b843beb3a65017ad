"""The e-mails of the ladder, in Dutch, for the people at the tables.

Short on purpose: what happened, to which care, where, why (the reasons in plain Dutch), and one
link to the alert in the dashboard, where the figures, the charts and the actions are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from services.core.domain import EscalationStep, Level
from services.core.events.types import EventType
from services.notify.parties import AlertContext

LEVEL_NL = {
    Level.OK: "geen zorg",
    Level.WATCH: "aandacht",
    Level.THREATENED: "dreigend",
    Level.CRITICAL: "acuut",
}
STEP_NL = {
    EscalationStep.PROVIDER: "aanbieder en coördinerend zorgverzekeraar",
    EscalationStep.REGIONAL_TABLE: "regionale tafel",
    EscalationStep.NATIONAL_TABLE: "landelijke tafel",
}
_WHAT_NL = {
    EventType.ALERT_OPENED: "Nieuwe melding",
    EventType.ALERT_UPDATED: "Melding verzwaard",
    EventType.ALERT_ESCALATED: "Melding opgeschaald",
    EventType.ALERT_REMINDED: "Melding nog open",
    EventType.ALERT_RESOLVED: "Melding afgesloten",
}


@dataclass(frozen=True)
class Mail:
    subject: str
    text: str


def alert_mail(
    event_type: EventType,
    context: AlertContext,
    *,
    public_url: str,
    zone: ZoneInfo,
    now: datetime,
    why: str | None = None,
) -> Mail:
    """The e-mail for one alert event."""
    alert = context.alert
    what = _WHAT_NL.get(event_type, "Melding gewijzigd")
    if context.department is not None:
        where = f"{context.department.name} ({context.provider_name})"
    else:
        where = f"dekking {context.care_type_name}"
    region = f"regio {context.region_name}" if context.region_name else "landelijk"
    level = LEVEL_NL[alert.level]
    subject = f"[Vroegsignaal] {what}: {where}, {region} — {level}"
    lines = [
        f"{what} in Vroegsignaal.",
        "",
        f"Zorg:        {context.care_type_name}",
        f"Waar:        {where}, {region}",
        f"Niveau:      {level}",
        f"Bij:         {STEP_NL[alert.escalation]}",
        f"Geopend:     {_date(alert.opened_at, zone)}",
    ]
    if alert.no_alternative:
        lines.append("Let op:      geen gelijkwaardig alternatief in de regio")
    if why:
        lines += ["", why]
    reasons = [r.get("explanation_nl") or r.get("explanation", "") for r in alert.reasons]
    if reasons and event_type is not EventType.ALERT_RESOLVED:
        lines += ["", "Waarom:"] + [f"- {reason}" for reason in reasons]
    lines += [
        "",
        f"Bekijk de melding, de cijfers en de tijdlijn: {public_url.rstrip('/')}/alerts/{alert.id}",
        "",
        f"Verstuurd op {_date(now, zone)} door Vroegsignaal cruciale ggz. U ontvangt dit bericht"
        " omdat uw organisatie bij deze melding betrokken is.",
    ]
    return Mail(subject=subject, text="\n".join(lines) + "\n")


def _date(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    return local.strftime("%d-%m-%Y %H:%M")
