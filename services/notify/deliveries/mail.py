"""One e-mail: build the multipart message and hand it to the SMTP server once.

The words come from the caller (Dutch texts, the dashboard link); this module only sends:
text/plain, an html alternative when there is one, and attachments (the digest's PDF). An SMTP
5xx answer is permanent (the mailbox does not exist, the message is refused): trying again for a
day cannot help, so the delivery fails at once; 4xx and network trouble are retried.
"""

from __future__ import annotations

import base64
import time
import urllib.parse
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any

import aiosmtplib

from services.notify.deliveries.outcome import Outcome

SMTP_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class SmtpServer:
    """Where mail goes, from `VROEGSIGNAAL_SMTP_URL` (smtp://user:password@host:port)."""

    hostname: str
    port: int | None
    username: str | None
    password: str | None
    use_tls: bool  # smtps://: TLS from the first byte
    start_tls: bool | None  # smtp://: STARTTLS when the server offers it; ?starttls=true insists

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        """Read the URL; ValueError for one that is not smtp:// or smtps://."""
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("smtp", "smtps") or not parsed.hostname:
            raise ValueError("VROEGSIGNAAL_SMTP_URL must look like smtp://host:port or smtps://...")
        query = urllib.parse.parse_qs(parsed.query)
        insist = query.get("starttls", [""])[0].lower() in ("1", "true", "yes")
        return cls(
            hostname=parsed.hostname,
            port=parsed.port,
            username=urllib.parse.unquote(parsed.username) if parsed.username else None,
            password=urllib.parse.unquote(parsed.password) if parsed.password else None,
            use_tls=parsed.scheme == "smtps",
            start_tls=True if insist else None,
        )


def message_id(delivery_id: str, mail_from: str) -> str:
    """The same for every attempt of a delivery, so that a mail sent again after a crash (the
    lease ran out while the server was answering) is one message to its reader's mail client,
    not two (tests/reliability/test_mail_kill.py); in the sender's domain."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "vroegsignaal.invalid"
    return f"<{delivery_id}@{domain}>"


def build_message(payload: dict[str, Any], *, mail_from: str, delivery_id: str) -> EmailMessage:
    """The message a stored e-mail payload describes."""
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = payload["to"]
    message["Subject"] = payload["subject"]
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id(delivery_id, mail_from)
    message["Auto-Submitted"] = "auto-generated"  # no out-of-office replies, please
    message["X-Vroegsignaal-Delivery"] = delivery_id
    message.set_content(payload["text"])
    if payload.get("html"):
        message.add_alternative(payload["html"], subtype="html")
    for attachment in payload.get("attachments") or []:
        maintype, _, subtype = str(attachment["content_type"]).partition("/")
        message.add_attachment(
            base64.b64decode(attachment["content_base64"]),
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=attachment["filename"],
        )
    return message


def _elapsed_ms(started: float) -> int:
    return max(0, round((time.perf_counter() - started) * 1000))


async def send_email(
    smtp_url: str | None, *, mail_from: str, payload: dict[str, Any], delivery_id: str
) -> Outcome:
    """Send once; the outcome carries the SMTP reply code."""
    if not smtp_url:
        return Outcome.failure(
            "e-mail is not configured (VROEGSIGNAAL_SMTP_URL is unset); retry once it is",
            permanent=True,
        )
    started = time.perf_counter()
    try:
        server = SmtpServer.from_url(smtp_url)
        message = build_message(payload, mail_from=mail_from, delivery_id=delivery_id)
    except (ValueError, KeyError, TypeError) as exc:
        return Outcome.failure(f"cannot build the e-mail: {exc}", permanent=True)
    try:
        await aiosmtplib.send(
            message,
            hostname=server.hostname,
            port=server.port,
            username=server.username,
            password=server.password,
            use_tls=server.use_tls,
            start_tls=server.start_tls,
            timeout=SMTP_TIMEOUT_SECONDS,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [refused.code for refused in exc.recipients]
        code = codes[0] if codes else None
        return Outcome.failure(
            f"recipient refused: {'; '.join(r.message for r in exc.recipients)}",
            duration_ms=_elapsed_ms(started),
            status_code=code,
            permanent=code is not None and code >= 500,
        )
    except aiosmtplib.SMTPAuthenticationError as exc:
        # Our configuration, not the message: retried, so fixing the password is enough.
        return Outcome.failure(
            f"SMTP login refused ({exc.code}): check VROEGSIGNAAL_SMTP_URL",
            duration_ms=_elapsed_ms(started),
            status_code=exc.code,
        )
    except aiosmtplib.SMTPResponseException as exc:
        return Outcome.failure(
            f"SMTP {exc.code}: {exc.message}",
            duration_ms=_elapsed_ms(started),
            status_code=exc.code,
            permanent=500 <= exc.code < 600,
        )
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return Outcome.failure(f"{type(exc).__name__}: {exc}", duration_ms=_elapsed_ms(started))
    return Outcome(ok=True, duration_ms=_elapsed_ms(started), status_code=250)
