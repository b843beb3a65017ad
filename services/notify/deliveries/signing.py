"""Standard Webhooks signatures: the headers every outbound call carries.

Signed with the reference `standardwebhooks` library, so what we send is exactly what any
receiver's copy of that library verifies: `webhook-id` (the delivery's id: the same on every
retry, the receiver's key to ignore a repeat), `webhook-timestamp` (seconds, the moment of this
attempt; receivers refuse ones more than five minutes off) and `webhook-signature`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

USER_AGENT = "Vroegsignaal-Webhooks/1"


def signed_headers(secret: str, *, message_id: str, body: str, at: datetime) -> dict[str, str]:
    """The headers of one attempt; `at` is real time (the receiver checks it against its own)."""
    moment = at.astimezone(UTC)
    signature = Webhook(secret).sign(msg_id=message_id, timestamp=moment, data=body)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
