"""Making a digest: read the month, count, render, store, and publish — once per period.

`make_digest` runs in the caller's transaction and does all of it there: the digest row, the
`digest.published` event in the outbox, and the deliveries (an e-mail with the PDF to each person
of the governance board, a webhook to each endpoint that asked for `digest.published`). They
commit together or not at all, so a digest is never stored unannounced, nor announced unstored.

Exactly once per period, with any number of notifier replicas and commands: the transaction first
takes a transaction-scoped advisory lock on the period with `pg_try_advisory_xact_lock`; a second
maker does not wait but answers `busy`, and one that comes after the commit finds the row and
answers `exists`. The unique period of `digests` backs this up: two inserts can never both win.
`force` makes the digest again over the stored one and publishes it again (a corrected month).

Delivery happens here, not in the notifier's consumer: the recipients follow from the digest alone
(no alert, no ladder), the PDF is at hand, and the same transaction already gives exactly once.
The consumer sees the event on the alerts topic and leaves it alone.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.config import Settings
from services.core.db.models import Digest, Organisation, WebhookSubscription
from services.core.domain import DigestStatus, OrgKind
from services.core.events.envelope import Event
from services.core.events.outbox import NewEvent, record_events
from services.core.events.payloads import (
    DigestCounts,
    DigestLinks,
    DigestPublished,
    Service,
    new_event,
)
from services.core.events.types import Topic
from services.notify.deliveries.enqueue import (
    Attachment,
    enqueue_email,
    enqueue_webhooks,
    short_type,
)
from services.notify.digest.access import READER_KINDS
from services.notify.digest.document import DigestFigures
from services.notify.digest.figures import DEFAULT_LONG_OPEN_DAYS, digest_figures
from services.notify.digest.mail import digest_mail
from services.notify.digest.period import Period
from services.notify.digest.render import render_html, render_pdf
from services.notify.digest.rows import DigestRows, load_rows
from services.notify.parties import people_of

LOCK_SPACE = 0x5653_0300  # advisory locks of digests: (LOCK_SPACE, yyyymm)
EVENT_TYPE = short_type(DigestPublished.event_type.value)  # digest.published


class Outcome(StrEnum):
    MADE = "made"  # made for the first time
    REMADE = "remade"  # made again over a stored one (force)
    EXISTS = "exists"  # already made; nothing done
    BUSY = "busy"  # another process is making it right now; nothing done


@dataclass(frozen=True)
class DigestOptions:
    """What making a digest needs besides the database."""

    zone: ZoneInfo
    public_url: str
    long_open_days: int = DEFAULT_LONG_OPEN_DAYS
    pdf: bool = True

    @classmethod
    def from_settings(
        cls, settings: Settings, *, long_open_days: int = DEFAULT_LONG_OPEN_DAYS
    ) -> DigestOptions:
        return cls(zone=settings.tz, public_url=settings.public_url, long_open_days=long_open_days)


@dataclass(frozen=True)
class DigestResult:
    period: Period
    outcome: Outcome
    made_at: datetime | None = None
    published: bool = False
    counts: DigestCounts | None = None
    emails: int = 0
    webhooks: int = 0

    def as_json(self) -> dict[str, object]:
        return {
            "period": str(self.period),
            "outcome": self.outcome.value,
            "made_at": self.made_at.isoformat() if self.made_at else None,
            "published": self.published,
            "counts": self.counts.model_dump(mode="json") if self.counts else None,
            "emails": self.emails,
            "webhooks": self.webhooks,
            "links": links(self.period).model_dump(mode="json"),
        }


Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def links(period: Period, *, pdf: bool = True) -> DigestLinks:
    base = f"/v1/digests/{period}"
    return DigestLinks(
        html=f"{base}.html", pdf=f"{base}.pdf" if pdf else None, json_=f"{base}.json"
    )


async def claim_period(session: AsyncSession, period: Period) -> bool:
    """True for the one transaction that may make this period's digest now (until it ends)."""
    key = period.year * 100 + period.month
    return bool(await session.scalar(select(func.pg_try_advisory_xact_lock(LOCK_SPACE, key))))


@dataclass(frozen=True)
class Rendered:
    figures: DigestFigures
    html: str
    pdf: bytes | None


def build_digest(rows: DigestRows, options: DigestOptions, now: datetime) -> Rendered:
    """Figures, HTML and PDF from the rows: pure CPU work (a thread may run it)."""
    figures = digest_figures(rows, made_at=now, long_open_days=options.long_open_days)
    html = render_html(figures, zone=options.zone, public_url=options.public_url)
    return Rendered(figures, html, render_pdf(html) if options.pdf else None)


async def make_digest(
    session: AsyncSession,
    period: Period,
    *,
    options: DigestOptions,
    now: datetime,
    force: bool = False,
    publish: bool = True,
    progress: Progress = _quiet,
) -> DigestResult:
    """Make (or with `force` remake) the digest of `period` in the caller's transaction."""
    if not await claim_period(session, period):
        return DigestResult(period, Outcome.BUSY)
    existing = await session.scalar(select(Digest).where(Digest.period == str(period)))
    if existing is not None and not force:
        return DigestResult(
            period,
            Outcome.EXISTS,
            made_at=existing.made_at,
            published=existing.status is DigestStatus.PUBLISHED,
            counts=DigestCounts.model_validate(existing.figures["counts"]),
        )
    progress(f"Gegevens van {period.label} lezen")
    rows = await load_rows(session, period, options.zone)
    progress(
        f"Cijfers, grafieken en PDF maken ({len(rows.departments)} afdelingen,"
        f" {len(rows.alerts)} meldingen)"
    )
    # Counting and drawing take seconds at national scale: off the event loop, so the
    # notifier's consumers and API keep answering meanwhile.
    rendered = await asyncio.to_thread(build_digest, rows, options, now)
    progress("Opslaan" + (" en publiceren" if publish else ""))
    figures = rendered.figures
    document = figures.model_dump(mode="json")
    digest = existing or Digest(period=str(period))
    digest.status = DigestStatus.PUBLISHED if publish else DigestStatus.MADE
    digest.made_at = now
    digest.published_at = now if publish else None
    digest.ruleset_version = figures.ruleset_version[:64]
    digest.figures = document
    digest.html = rendered.html
    digest.pdf = rendered.pdf
    if existing is None:
        session.add(digest)
    await session.flush()
    result = DigestResult(
        period,
        Outcome.REMADE if existing is not None else Outcome.MADE,
        made_at=now,
        published=publish,
        counts=figures.counts,
    )
    if not publish:
        return result
    event = new_event(
        DigestPublished(
            period=str(period),
            published_at=now,
            ruleset_version=figures.ruleset_version[:64],
            links=links(period, pdf=rendered.pdf is not None),
            counts=figures.counts,
        ),
        source=Service.NOTIFY,
        time=now,
    )
    await record_events(session, [event])
    emails, webhooks = await deliver_digest(
        session,
        event=event,
        figures=figures,
        pdf=rendered.pdf,
        options=options,
        remade=existing is not None,
    )
    return DigestResult(
        period,
        result.outcome,
        made_at=now,
        published=True,
        counts=figures.counts,
        emails=emails,
        webhooks=webhooks,
    )


async def deliver_digest(
    session: AsyncSession,
    *,
    event: NewEvent,
    figures: DigestFigures,
    pdf: bytes | None,
    options: DigestOptions,
    remade: bool,
) -> tuple[int, int]:
    """Queue the e-mails and webhooks of a published digest; (e-mails, webhooks) queued."""
    announced = Event.from_cloudevent(Topic.ALERTS.value, event.cloudevent())
    # Webhooks to every organisation that may read digests and asked for them: the links in
    # the body only open for those roles anyway.
    readers: list[uuid.UUID] = list(
        (
            await session.scalars(
                select(WebhookSubscription.organisation_id)
                .join(Organisation, Organisation.id == WebhookSubscription.organisation_id)
                .where(
                    Organisation.kind.in_(READER_KINDS),
                    WebhookSubscription.active.is_(True),
                    WebhookSubscription.event_types.any_() == EVENT_TYPE,
                )
                .distinct()
            )
        ).all()
    )
    webhooks = 0
    for organisation_id in sorted(readers):
        webhooks += await enqueue_webhooks(
            session, organisation_id=organisation_id, event=announced, alert_id=None
        )
    board = await session.scalar(
        select(Organisation.id).where(Organisation.kind == OrgKind.GOVERNANCE)
    )
    people = await people_of(session, [board] if board is not None else [])
    mail = digest_mail(figures, public_url=options.public_url, zone=options.zone, remade=remade)
    attachments = (
        [Attachment(f"vroegsignaal-maandoverzicht-{figures.period}.pdf", "application/pdf", pdf)]
        if pdf is not None
        else []
    )
    for person in people:
        await enqueue_email(
            session,
            organisation_id=person.organisation_id,
            to=person.email,
            subject=mail.subject,
            text=mail.text,
            html=None,
            event_id=event.id,
            event_type=event.type.value,
            alert_id=None,
            attachments=attachments,
        )
    return len(people), webhooks
