"""A slow real SMTP server (aiosmtpd) for crash tests: it takes its messages one at a time, and
can stop before answering one it has already taken, so that a test can kill the sender in
exactly that window.

A real mail server commits a message to its queue and then answers `250`; a sender that dies
between the two has had its message delivered without knowing it, and will send it again (the
"duplicate message" window of RFC 1047). `SlowSmtpSink(hold_at=n)` stores the n-th message,
sets `holding`, and does not answer until `release()` (or until the sender's connection is
gone). Messages that arrive meanwhile wait their turn, fully transmitted but not yet taken,
like at a busy server: they are lost to no one, and a sender that dies resends them.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.receivers import SmtpSink, free_port


class _OneAtATime:
    """aiosmtpd handler: take each message in turn, slowly; keep it; maybe hold the answer."""

    def __init__(self, sink: SlowSmtpSink) -> None:
        self._sink = sink
        self._turn: asyncio.Lock | None = None  # made in aiosmtpd's own event loop

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self._turn is None:
            self._turn = asyncio.Lock()
        async with self._turn:
            await asyncio.sleep(self._sink.seconds_per_message)
            content = envelope.original_content or b""
            message = email.message_from_bytes(content, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            self._sink.messages.append(message)  # taken: it will reach the mailbox
            self._sink.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
            if len(self._sink.messages) == self._sink.hold_at:
                self._sink.holding.set()
                # Until the test says so; a lost connection cancels this wait.
                while not self._sink.released.is_set():  # noqa: ASYNC110 (a thread's Event)
                    await asyncio.sleep(0.01)
        return "250 Message accepted for delivery"


@dataclass
class SlowSmtpSink(SmtpSink):
    """An `SmtpSink` that takes one message at a time, each `seconds_per_message`, and holds
    its answer to the `hold_at`-th message (1-based; 0: never) until `release()`."""

    seconds_per_message: float = 0.2
    hold_at: int = 0
    holding: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()

    async def wait_holding(self, within: float = 30.0) -> None:
        """Until the `hold_at`-th message is taken and its answer held."""
        async with asyncio.timeout(within):
            while not self.holding.is_set():  # noqa: ASYNC110 (set on aiosmtpd's thread)
                await asyncio.sleep(0.01)

    async def __aenter__(self) -> SlowSmtpSink:
        self.port = free_port()
        self._controller = Controller(_OneAtATime(self), hostname="127.0.0.1", port=self.port)
        await asyncio.to_thread(self._controller.start)
        return self
