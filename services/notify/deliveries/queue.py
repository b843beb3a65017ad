"""The delivery queue in PostgreSQL: claim due work (transaction 1), record what came of it
(transaction 2); the call itself happens between the two, with no transaction open.

A claim is a lease: the claimed rows get a token and `claimed_until`, and their `next_attempt_at`
moves to the end of the lease, so no other worker sees them as due; a worker that dies mid-call
loses nothing, its deliveries fall due again when the lease lapses (at least once; receivers
drop a repeat by its `webhook-id`). Three rules decide what may be claimed:

- due: pending, and `next_attempt_at` empty (new, or retried by hand) or passed;
- in order: no earlier delivery with the same ordering key (the alert) to the same recipient is
  still pending, in flight or waiting for its retry;
- not crowding an endpoint: at most `max_in_flight` calls per webhook endpoint at once, counted in
  the database across all workers. To make that count exact, claims take one transaction-scoped
  advisory lock: they are serialised (a claim is one short statement), while rows being recorded
  are skipped (`SKIP LOCKED`) rather than waited for.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from services.core.audit import record_audit
from services.core.db.models import (
    Delivery,
    DeliveryAttempt,
    Organisation,
    User,
    WebhookSubscription,
)
from services.core.domain import DeliveryChannel, DeliveryStatus
from services.core.metrics import DELIVERY_ATTEMPTS
from services.notify.deliveries.enqueue import enqueue_email
from services.notify.deliveries.outcome import Outcome
from services.notify.deliveries.schedule import next_delay

log = logging.getLogger(__name__)

CLAIM_LOCK = (0x5653_0300, 0)  # advisory lock key of the claim step (see outbox.py's spaces)
SCAN_LIMIT = 500  # due rows looked at per claim; the oldest first

# Due rows are read in claim order straight off `ix_deliveries_due_order` (next_attempt_at,
# seq; pending only), new ones (no `next_attempt_at`) first, then the retries whose time came,
# each scan stopping once it has `:scan` rows that pass the per-row checks: a claim costs what it
# looks at, not the whole backlog (sorting every pending row first made a claim cost 25 ms with
# 3,000 pending and grow with the queue). The checks are correlated subqueries inside an OR, so
# PostgreSQL runs them per row read rather than joining them over every pending row; each CTE is
# computed once (MATERIALIZED) and the rows to lock are found by id, so no plan can run a step
# again per row of another.
_CLAIMABLE = text(
    """
    WITH due AS MATERIALIZED (
        SELECT c.id, c.subscription_id, c.next_attempt_at, c.seq
        FROM (
            (SELECT d.id, d.subscription_id, d.next_attempt_at, d.seq
             FROM deliveries d
             WHERE d.status = 'pending' AND d.next_attempt_at IS NULL
               AND (d.subscription_id IS NULL OR (
                     SELECT s.active FROM webhook_subscriptions s WHERE s.id = d.subscription_id))
               AND (d.ordering_key IS NULL OR NOT EXISTS (
                     SELECT 1 FROM deliveries e
                     WHERE e.ordering_key = d.ordering_key
                       AND e.status = 'pending'
                       AND e.seq < d.seq
                       AND (e.subscription_id = d.subscription_id OR e.email = d.email)))
             ORDER BY d.next_attempt_at, d.seq
             LIMIT :scan)
            UNION ALL
            (SELECT d.id, d.subscription_id, d.next_attempt_at, d.seq
             FROM deliveries d
             WHERE d.status = 'pending' AND d.next_attempt_at <= :now
               AND (d.subscription_id IS NULL OR (
                     SELECT s.active FROM webhook_subscriptions s WHERE s.id = d.subscription_id))
               AND (d.ordering_key IS NULL OR NOT EXISTS (
                     SELECT 1 FROM deliveries e
                     WHERE e.ordering_key = d.ordering_key
                       AND e.status = 'pending'
                       AND e.seq < d.seq
                       AND (e.subscription_id = d.subscription_id OR e.email = d.email)))
             ORDER BY d.next_attempt_at, d.seq
             LIMIT :scan)
        ) AS c
        ORDER BY c.next_attempt_at NULLS FIRST, c.seq
        LIMIT :scan
    ),
    in_flight AS MATERIALIZED (
        SELECT f.subscription_id, count(*) AS calls
        FROM deliveries f
        WHERE f.claimed_until > :now  -- the few leased rows (`ix_deliveries_in_flight`)
        GROUP BY f.subscription_id
    ),
    ranked AS MATERIALIZED (
        SELECT due.id, due.subscription_id,
               row_number() OVER (
                   PARTITION BY due.subscription_id
                   ORDER BY due.next_attempt_at NULLS FIRST, due.seq
               ) AS place,
               coalesce(in_flight.calls, 0) AS in_flight
        FROM due LEFT JOIN in_flight ON in_flight.subscription_id = due.subscription_id
    )
    SELECT d.id
    FROM deliveries d
    WHERE d.id = ANY(ARRAY(
            SELECT r.id FROM ranked r
            WHERE r.subscription_id IS NULL OR r.place + r.in_flight <= :max_in_flight))
      AND d.status = 'pending'
      AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= :now)
    ORDER BY d.next_attempt_at NULLS FIRST, d.seq
    LIMIT :limit
    FOR UPDATE OF d SKIP LOCKED
    """
)

_CLAIM = text(
    """
    UPDATE deliveries
    SET claim_token = :token, claimed_until = :until, next_attempt_at = :until
    WHERE id = ANY(:ids)
    RETURNING id, channel, organisation_id, subscription_id, email, event_type, payload, attempts
    """
).bindparams(bindparam("ids", type_=ARRAY(Uuid())))


@dataclass(frozen=True)
class Claimed:
    """A delivery this worker holds the lease of, with what it needs to send it."""

    id: uuid.UUID
    token: uuid.UUID
    channel: DeliveryChannel
    organisation_id: uuid.UUID
    event_type: str
    payload: dict[str, Any]
    attempts: int  # made before this one
    subscription_id: uuid.UUID | None = None
    url: str | None = None
    secret_encrypted: str | None = None
    email: str | None = None


async def claim_due(
    session: AsyncSession,
    *,
    now: datetime,
    limit: int,
    max_in_flight: int,
    lease: timedelta,
) -> list[Claimed]:
    """Claim up to `limit` due deliveries for `lease`; commit before sending."""
    if limit <= 0:
        return []
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:space, :key)"),
        {
            "space": CLAIM_LOCK[0],
            "key": CLAIM_LOCK[1],
        },
    )
    ids = list(
        (
            await session.execute(
                _CLAIMABLE,
                {"now": now, "scan": SCAN_LIMIT, "max_in_flight": max_in_flight, "limit": limit},
            )
        ).scalars()
    )
    if not ids:
        return []
    token = uuid.uuid4()
    rows = (await session.execute(_CLAIM, {"token": token, "until": now + lease, "ids": ids})).all()
    endpoints = {
        subscription.id: subscription
        for subscription in (
            await session.scalars(
                select(WebhookSubscription).where(
                    WebhookSubscription.id.in_(
                        {row.subscription_id for row in rows if row.subscription_id}
                    )
                )
            )
        )
    }
    claimed = []
    for row in rows:
        endpoint = endpoints.get(row.subscription_id) if row.subscription_id else None
        claimed.append(
            Claimed(
                id=row.id,
                token=token,
                channel=DeliveryChannel(row.channel),
                organisation_id=row.organisation_id,
                event_type=row.event_type,
                payload=row.payload,
                attempts=row.attempts,
                subscription_id=row.subscription_id,
                url=endpoint.url if endpoint else None,
                secret_encrypted=endpoint.secret_encrypted if endpoint else None,
                email=row.email,
            )
        )
    claimed.sort(key=lambda c: ids.index(c.id))  # the claim's order: oldest due first
    return claimed


@dataclass(frozen=True)
class EndpointPolicy:
    """What recording needs from the settings."""

    disable_after: timedelta
    public_url: str
    timezone: tzinfo  # for the times in the owner's e-mail


async def record_outcome(
    session: AsyncSession,
    claimed: Claimed,
    outcome: Outcome,
    *,
    now: datetime,
    policy: EndpointPolicy,
    rng: random.Random | None = None,
) -> DeliveryStatus | None:
    """Log the attempt and move the delivery on: succeeded, retried later, or failed.

    None when the lease was lost meanwhile (an operator retried it, or another worker took it
    over): the attempt is still logged, the delivery is left to its new holder.
    """
    if claimed.subscription_id is not None:
        # The endpoint first, then the delivery: the same lock order as deleting an endpoint.
        await _endpoint_outcome(session, claimed, outcome, now=now, policy=policy)
    delivery = await session.get(Delivery, claimed.id, with_for_update=True)
    if delivery is None:
        return None  # its organisation or endpoint was removed meanwhile
    session.add(
        DeliveryAttempt(
            delivery_id=claimed.id,
            attempted_at=now,
            status_code=outcome.status_code,
            duration_ms=outcome.duration_ms,
            error=outcome.error,
        )
    )
    if delivery.claim_token != claimed.token:
        return None
    delivery.attempts = delivery.attempts + 1
    delivery.last_attempt_at = now
    delivery.claim_token = None
    delivery.claimed_until = None
    if outcome.ok:
        delivery.status = DeliveryStatus.SUCCEEDED
        delivery.next_attempt_at = None
        delivery.last_error = None
        DELIVERY_ATTEMPTS.labels(claimed.channel.value, "succeeded").inc()
        return delivery.status
    delivery.last_error = outcome.error
    delay = None if outcome.permanent else next_delay(delivery.attempts, rng)
    if delay is None or delivery.status is not DeliveryStatus.PENDING:
        delivery.status = DeliveryStatus.FAILED
        delivery.next_attempt_at = None
        DELIVERY_ATTEMPTS.labels(claimed.channel.value, "failed").inc()
    else:
        delivery.next_attempt_at = now + delay
        DELIVERY_ATTEMPTS.labels(claimed.channel.value, "retry").inc()
    return delivery.status


async def _endpoint_outcome(
    session: AsyncSession,
    claimed: Claimed,
    outcome: Outcome,
    *,
    now: datetime,
    policy: EndpointPolicy,
) -> None:
    """Keep the endpoint's health: last success, failing since when; disable it when it has
    failed without a single success for `disable_after`."""
    if outcome.ok:
        await session.execute(
            update(WebhookSubscription)
            .where(WebhookSubscription.id == claimed.subscription_id)
            .values(last_success_at=now, failing_since=None)
        )
        return
    row = (
        await session.execute(
            text(
                "UPDATE webhook_subscriptions SET failing_since = coalesce(failing_since, :now)"
                " WHERE id = :id RETURNING failing_since, active"
            ),
            {"now": now, "id": claimed.subscription_id},
        )
    ).one_or_none()
    if row is None or not row.active or now - row.failing_since < policy.disable_after:
        return
    await disable_endpoint(
        session,
        subscription_id=claimed.subscription_id,
        now=now,
        failing_since=row.failing_since,
        last_error=outcome.error or "",
        policy=policy,
    )


async def disable_endpoint(
    session: AsyncSession,
    *,
    subscription_id: uuid.UUID | None,
    now: datetime,
    failing_since: datetime,
    last_error: str,
    policy: EndpointPolicy,
) -> bool:
    """Disable a failing endpoint, fail what waits for it, and tell its owner's admins."""
    days = (now - failing_since).total_seconds() / 86_400
    reason = f"no successful delivery for {days:.1f} days; last error: {last_error}"[:1000]
    subscription = (
        await session.execute(
            update(WebhookSubscription)
            .where(WebhookSubscription.id == subscription_id, WebhookSubscription.active)
            .values(active=False, disabled_at=now, disabled_reason=reason)
            .returning(WebhookSubscription)
        )
    ).scalar_one_or_none()
    if subscription is None:
        return False  # another worker disabled it a moment ago, and told the owner
    await fail_pending(
        session, subscription_id=subscription.id, reason="endpoint disabled: " + reason
    )
    await record_audit(
        session,
        action="subscription.disabled",
        object_type="webhook_subscription",
        object_id=str(subscription.id),
        channel="system",
        details={"organisation_id": str(subscription.organisation_id), "reason": reason},
    )
    await _tell_owner(session, subscription, failing_since, last_error, policy)
    log.warning("webhook endpoint %s disabled: %s", subscription.id, reason)
    return True


async def fail_pending(session: AsyncSession, *, subscription_id: uuid.UUID, reason: str) -> int:
    """Mark every pending delivery to an endpoint failed (it was disabled or deleted)."""
    result = await session.execute(
        update(Delivery)
        .where(Delivery.subscription_id == subscription_id)
        .where(Delivery.status == DeliveryStatus.PENDING)
        .values(
            status=DeliveryStatus.FAILED,
            next_attempt_at=None,
            claim_token=None,
            claimed_until=None,
            last_error=reason[:1000],
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def _tell_owner(
    session: AsyncSession,
    subscription: WebhookSubscription,
    failing_since: datetime,
    last_error: str,
    policy: EndpointPolicy,
) -> None:
    organisation = await session.get(Organisation, subscription.organisation_id)
    admins = (
        await session.scalars(
            select(User.email).where(
                User.organisation_id == subscription.organisation_id,
                User.is_org_admin.is_(True),
                User.active.is_(True),
            )
        )
    ).all()
    if not admins:
        log.warning(
            "webhook endpoint %s disabled; its organisation has no admin to tell", subscription.id
        )
        return
    since = failing_since.astimezone(policy.timezone).strftime("%d-%m-%Y %H:%M")
    base = policy.public_url.rstrip("/")
    name = organisation.name if organisation else "uw organisatie"
    event_id = uuid.uuid5(
        uuid.NAMESPACE_URL,
        f"vroegsignaal:subscription-disabled:{subscription.id}:{subscription.disabled_at}",
    )
    text_body = (
        "Beste beheerder,\n\n"
        f"Het webhook-adres {subscription.url} van {name} neemt sinds {since} geen meldingen"
        " van Vroegsignaal meer aan. We hebben het daarom uitgeschakeld: er gaan geen meldingen"
        " meer naartoe, en wat nog klaarstond is als mislukt gemarkeerd.\n\n"
        f"Laatste fout: {last_error}\n\n"
        "Wat nu:\n"
        "1. Herstel de ontvanger.\n"
        f"2. Zet het adres weer aan: POST {base}/v1/subscriptions/{subscription.id}/enable\n"
        f"3. Verstuur de mislukte meldingen opnieuw: POST {base}/v1/deliveries/retry"
        f' met {{"subscription": "{subscription.id}"}}\n\n'
        f"Het afleverlogboek: {base}/v1/deliveries?subscription={subscription.id}\n\n"
        "Dit bericht is automatisch verstuurd door Vroegsignaal.\n"
    )
    for address in admins:
        await enqueue_email(
            session,
            organisation_id=subscription.organisation_id,
            to=address,
            subject=f"Vroegsignaal: webhook uitgeschakeld ({subscription.url})"[:200],
            text=text_body,
            html=None,
            event_id=event_id,
            event_type="subscription.disabled",
            alert_id=None,
        )
