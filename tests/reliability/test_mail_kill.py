"""SIGKILL of the notifier while it sends e-mail to a real SMTP server, on the real topology
(`vroegsignaal ingest`, `rules` and `notify` as processes; see tests/reliability/test_faults.py).

Critical alerts on FACT teams go up to the national table, so the people of the regional and
the national table are e-mailed. The SMTP server (aiosmtpd, tests/support/slow_smtp.py) takes
one message at a time; when it has taken the fifth it holds its `250`, and the notifier is
killed in that window: one message is in the mailbox without the sender knowing, others are
mid-transfer or not started. After a restart every expected e-mail must arrive.

The bound the design gives (services/notify/deliveries/queue.py): a claimed delivery is a lease;
a worker that dies loses nothing, its claimed deliveries are sent again when the lease lapses.
So only a mail in flight at the kill (claimed and not yet recorded) may arrive twice, and a
second copy must carry the same `Message-ID` as the first, so that a reader (or a mail client's
duplicate filter) can tell it is the same message. The 90 s lease (SMTP timeout + 60 s) is
fast-forwarded in the database, as in test_faults.py, so the test does not wait it out.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.admin.credentials import add_user
from services.core.admin.organisations import resolve_organisation
from services.core.db.models import Delivery
from services.core.domain import DeliveryChannel, DeliveryStatus
from tests.notify.world import NATIONAL_MEMBER, REGIONAL_MEMBER
from tests.reliability.test_faults import Topology, _env, _staffing, _teams
from tests.support.slow_smtp import SlowSmtpSink

ALERTS = 10  # critical: each e-mails the regional and the national table's member
HOLD_AT = 5  # the message whose 250 never reaches the notifier


class SecondCopyWithAnotherMessageId(AssertionError):
    """A mail that arrived twice carries two Message-IDs: nobody can tell it is one message."""


@pytest.fixture
def topology(database_url: str, tmp_path: Path) -> Iterator[Topology]:
    running = Topology(_env(database_url, tmp_path / "data"), tmp_path)
    yield running
    running.close()


def _no_psychiatrist(code: str) -> dict[str, Any]:
    signal = _staffing(code)
    signal["data"]["psychiatrist_fte"] = 0.0  # FACT cannot run without one: critical
    return signal


async def _emails(sessions: async_sessionmaker[AsyncSession]) -> list[Any]:
    async with sessions() as session:
        return list(
            await session.execute(
                select(
                    Delivery.id,
                    Delivery.email,
                    Delivery.alert_id,
                    Delivery.status,
                    Delivery.claimed_until,
                ).where(Delivery.channel == DeliveryChannel.EMAIL)
            )
        )


def _told(rows: list[Any]) -> int:
    """How many alerts have their e-mail to both tables' people."""
    per_alert: defaultdict[uuid.UUID, set[str]] = defaultdict(set)
    for row in rows:
        per_alert[row.alert_id].add(row.email)
    return sum(1 for to in per_alert.values() if to == {REGIONAL_MEMBER, NATIONAL_MEMBER})


async def _all_sent(sessions: async_sessionmaker[AsyncSession], within: float = 45.0) -> list[Any]:
    """The e-mail deliveries once every alert has its two and none is pending. (The restarted
    notifier takes over the killed one's bus partitions when their 10 s lease has lapsed.)"""
    async with asyncio.timeout(within):
        while True:
            rows = await _emails(sessions)
            done = all(r.status is not DeliveryStatus.PENDING for r in rows)
            if done and _told(rows) >= ALERTS:
                return rows
            await asyncio.sleep(0.1)


async def test_a_notifier_killed_mid_mail_sends_every_mail_and_repeats_only_those_in_flight(
    topology: Topology, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await _teams(sessions)
    async with sessions() as session, session.begin():
        for ref, address in (
            ("ijssel-vecht", REGIONAL_MEMBER),
            ("national_table", NATIONAL_MEMBER),
        ):
            await add_user(
                session,
                organisation=await resolve_organisation(session, ref),
                email=address,
                password="een lang wachtwoord",
                name=address.split("@")[0].title(),
            )
    async with SlowSmtpSink(seconds_per_message=0.2, hold_at=HOLD_AT) as smtp:
        topology.env["VROEGSIGNAAL_SMTP_URL"] = smtp.url
        await topology.start("ingest", "rules", "notify")
        async with httpx.AsyncClient(timeout=10) as client:
            posted = await client.post(
                f"{topology['ingest'].base}/v1/signals",
                json={"signals": [_no_psychiatrist(f"FACT-{n:03d}") for n in range(ALERTS)]},
                headers=world.auth("provider_a"),
            )
            assert posted.status_code == 202, posted.text

        await smtp.wait_holding()
        topology["notify"].kill()  # the fifth mail is in the mailbox, its 250 unsent
        smtp.release()
        held = smtp.messages[HOLD_AT - 1]["X-Vroegsignaal-Delivery"]
        in_flight = {
            str(r.id)
            for r in await _emails(sessions)
            if r.status is DeliveryStatus.PENDING and r.claimed_until is not None
        }
        assert held in in_flight, "the held mail was not in flight: the kill came too late"
        async with sessions() as session, session.begin():
            await session.execute(
                update(Delivery)
                .where(Delivery.status == DeliveryStatus.PENDING)
                .values(claimed_until=None, next_attempt_at=func.now())
            )
        await topology.start("notify")
        rows = await _all_sent(sessions)
        await smtp.wait_for(len(rows), within=30)
        await asyncio.sleep(2)  # a late duplicate, or a late decision, would show now
        rows = await _all_sent(sessions)
        mails = list(await smtp.wait_for(len(rows), within=30))

    # Every mail the notifier decided on was sent, and arrived.
    assert all(r.status is DeliveryStatus.SUCCEEDED for r in rows), Counter(r.status for r in rows)
    assert _told(rows) == ALERTS
    copies: defaultdict[str, list[Any]] = defaultdict(list)
    for mail in mails:
        copies[str(mail["X-Vroegsignaal-Delivery"])].append(mail)
    expected = {str(r.id): r.email for r in rows}
    assert set(copies) == set(expected), "a mail was lost, or one nobody decided on was sent"
    for delivery, sent in copies.items():
        assert {str(m["To"]) for m in sent} == {expected[delivery]}

    # Only what was in flight at the kill came twice, at most once more each; the held one did.
    repeated = {delivery: len(sent) - 1 for delivery, sent in copies.items() if len(sent) > 1}
    assert held in repeated, "the mail taken before the kill was not sent again"
    assert set(repeated) <= in_flight, (repeated, in_flight)
    assert max(repeated.values()) == 1 and sum(repeated.values()) <= len(in_flight)

    # A reader can tell a repeat: the same Message-ID as the first copy.
    for delivery in repeated:
        ids = {str(m["Message-ID"]) for m in copies[delivery]}
        if len(ids) != 1:
            raise SecondCopyWithAnotherMessageId(f"delivery {delivery}: Message-IDs {ids}")
