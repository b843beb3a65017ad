"""Outbound deliveries: webhook endpoints, signed webhooks and e-mail with retries, the log.

The notifier decides which organisation hears of an event and calls `enqueue_webhooks` /
`enqueue_email` inside its own transaction; from there this package takes over: the delivery
worker (`delivery_worker`, a background context for `create_app`) sends each delivery once per
recipient, in order per alert, retried over more than a day, and the routers (`routers`) let an
organisation manage its endpoints and read and retry its delivery log. See docs/webhooks.md.
"""

from fastapi import APIRouter

from services.notify.deliveries.api import deliveries as _deliveries
from services.notify.deliveries.api import subscriptions as _subscriptions
from services.notify.deliveries.enqueue import Attachment, enqueue_email, enqueue_webhooks
from services.notify.deliveries.worker import DeliveryWorker, delivery_worker

routers: list[APIRouter] = [_subscriptions, _deliveries]

__all__ = [
    "Attachment",
    "DeliveryWorker",
    "delivery_worker",
    "enqueue_email",
    "enqueue_webhooks",
    "routers",
]
