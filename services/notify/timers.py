"""The escalation timers: a sweep that moves alerts up the ladder when their time runs out.

Every `interval` (and at start-up, so a notifier that was down catches up) the sweep looks for
alerts whose step has run out, acknowledged alerts that stayed open too long, and silences that
ended on an open alert. Each alert is handled in a transaction of its own under `FOR UPDATE SKIP
LOCKED`, and the decision is taken again on the locked row, so any number of notifier replicas
can sweep at once and an alert still moves once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db.models import Alert, Silence
from services.core.domain import AlertStatus
from services.core.events.outbox import record_events
from services.core.events.payloads import ReminderReason
from services.core.schedule import interval_schedule
from services.notify.actions import escalate, remind
from services.notify.ladder import Escalate, LadderState, Remind, due
from services.notify.parties import context_of, is_silenced
from services.notify.policy import Policy

log = logging.getLogger(__name__)
INTERVAL = timedelta(minutes=1)
BATCH = 200


async def sweep_timers(
    sessions: async_sessionmaker[AsyncSession], policy: Policy, zone: ZoneInfo, now: datetime
) -> int:
    """Escalate, remind and re-announce what is due at `now`; how many alerts were moved."""
    moved = 0
    for alert_id in await _candidates(sessions, policy, now):
        async with sessions() as session, session.begin():
            alert = (
                await session.execute(
                    select(Alert)
                    .where(Alert.id == alert_id)
                    .with_for_update(skip_locked=True, key_share=True)
                )
            ).scalar_one_or_none()
            if alert is None or alert.status is AlertStatus.RESOLVED:
                continue  # another replica has it, or it was resolved meanwhile
            context = await context_of(session, alert)
            state = LadderState(
                shape=context.shape,
                status=alert.status,
                step=alert.escalation,
                step_due_at=alert.step_due_at,
                acknowledged_at=alert.acknowledged_at,
                reminded_at=alert.reminded_at,
                silenced=await is_silenced(session, alert, now),
            )
            action = due(policy, state, now, zone)
            if isinstance(action, Escalate):
                event = escalate(
                    session,
                    context,
                    action.to,
                    action.reason,
                    action.explanation,
                    now,
                    policy=policy,
                    zone=zone,
                )
            elif isinstance(action, Remind):
                days = policy.file.acknowledged.remind_after_working_days
                event = remind(
                    session,
                    context,
                    ReminderReason.ACKNOWLEDGED_OPEN,
                    f"Acknowledged {days}+ working days ago and still open.",
                    now,
                )
            else:
                continue
            await record_events(session, [event])
            moved += 1
    moved += await _silences_ended(sessions, now)
    return moved


async def _candidates(
    sessions: async_sessionmaker[AsyncSession], policy: Policy, now: datetime
) -> list[object]:
    """Alerts that may be due: a cheap superset; the ladder decides on the locked row."""
    # A working day is at least a calendar day, so this window cannot miss a due reminder.
    rules = policy.file.acknowledged
    remind_by = now - timedelta(days=rules.remind_after_working_days)
    escalate_by = now - timedelta(days=rules.escalate_after_working_days)
    async with sessions() as session:
        query = (
            select(Alert.id)
            .where(
                or_(
                    (Alert.status == AlertStatus.OPEN) & (Alert.step_due_at <= now),
                    (Alert.status == AlertStatus.ACKNOWLEDGED)
                    & Alert.reminded_at.is_(None)
                    & (Alert.acknowledged_at <= remind_by),
                    (Alert.status == AlertStatus.ACKNOWLEDGED) & (Alert.reminded_at <= escalate_by),
                )
            )
            .order_by(Alert.step_due_at.nulls_last(), Alert.id)
            .limit(BATCH)
        )
        return list((await session.execute(query)).scalars())


async def _silences_ended(sessions: async_sessionmaker[AsyncSession], now: datetime) -> int:
    """A silence that ended (or was lifted) while its department's alert is open: tell again."""
    told = 0
    async with sessions() as session:
        ended = list(
            (
                await session.execute(
                    select(Silence.id)
                    .where(
                        Silence.ended_notified_at.is_(None),
                        or_(Silence.ends_at <= now, Silence.lifted_at.is_not(None)),
                    )
                    .limit(BATCH)
                )
            ).scalars()
        )
    for silence_id in ended:
        async with sessions() as session, session.begin():
            silence = (
                await session.execute(
                    select(Silence)
                    .where(Silence.id == silence_id)
                    .with_for_update(skip_locked=True, key_share=True)
                )
            ).scalar_one_or_none()
            if silence is None or silence.ended_notified_at is not None:
                continue
            silence.ended_notified_at = now
            alert = (
                await session.execute(
                    select(Alert)
                    .where(
                        Alert.department_id == silence.department_id,
                        Alert.status != AlertStatus.RESOLVED,
                    )
                    .with_for_update(key_share=True)
                )
            ).scalar_one_or_none()
            if alert is None or await is_silenced(session, alert, now):
                continue  # nothing open, or another silence still runs
            context = await context_of(session, alert)
            event = remind(
                session,
                context,
                ReminderReason.SILENCE_ENDED,
                "The silence of this department ended while the alert is still open.",
                now,
            )
            await record_events(session, [event])
            told += 1
    return told


def timer_schedule(
    sessions: async_sessionmaker[AsyncSession],
    policy: Policy | Callable[[], Policy],
    zone: ZoneInfo,
    *,
    every: timedelta = INTERVAL,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AbstractAsyncContextManager[AsyncIOScheduler]:
    """Sweep every `every` (and once at start-up) while the context is open."""
    current = policy if callable(policy) else (lambda: policy)

    async def run() -> None:
        try:
            moved = await sweep_timers(sessions, current(), zone, clock())
            if moved:
                log.info("escalation timers: %d alerts moved or announced again", moved)
        except Exception:
            log.exception("escalation timer sweep failed; the next one tries again")

    return interval_schedule(run, job="escalation-timers", every=every, clock=clock)
