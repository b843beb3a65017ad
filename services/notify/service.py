"""The notifier as one piece a process runs: its routes, its consumer group and its background
work (escalation timers, the delivery worker), for `vroegsignaal up` and `vroegsignaal notify`."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from fastapi import APIRouter, FastAPI

from services.core.config import Settings
from services.core.events.consumer import Subscription
from services.notify import api, deliveries, digest, silences_api
from services.notify.gauges import open_alerts_gauge
from services.notify.policy import Policy, load_policy
from services.notify.runtime import NotifyRuntime, install_runtime
from services.notify.timers import timer_schedule
from services.notify.worker import Notifier

Background = Callable[[FastAPI], AbstractAsyncContextManager[object]]


@dataclass(frozen=True)
class NotifyService:
    runtime: NotifyRuntime
    routers: list[APIRouter]
    subscriptions: list[Subscription]
    timers: Background  # the escalation timers' sweep
    deliveries: Background  # the delivery worker: webhooks and e-mail
    digests: Background  # the monthly digest for the governance board

    @property
    def background(self) -> list[Background]:
        return [self.timers, self.deliveries, self.digests, _gauge]

    def install(self, app: FastAPI) -> FastAPI:
        """Give the routes what they share with the workers (call on the app made from this)."""
        return install_runtime(app, self.runtime)


def _gauge(app: FastAPI) -> AbstractAsyncContextManager[object]:
    return open_alerts_gauge(app.state.sessions)


def notify_service(settings: Settings, policy: Policy | None = None) -> NotifyService:
    """Everything the notifier needs in a process, from the settings."""
    policy = policy or load_policy(settings.escalation_policy)
    runtime = NotifyRuntime(policy=lambda: policy, zone=settings.tz)
    notifier = Notifier(
        runtime.policy, zone=settings.tz, public_url=settings.public_url, clock=runtime.clock
    )
    return NotifyService(
        runtime=runtime,
        routers=[api.router, silences_api.router, *deliveries.routers, *digest.routers],
        subscriptions=[notifier.subscription()],
        timers=lambda app: timer_schedule(
            app.state.sessions, runtime.policy, settings.tz, clock=runtime.clock
        ),
        deliveries=lambda app: deliveries.delivery_worker(settings, app.state.sessions),
        digests=digest.digest_background(
            settings,
            cron=settings.digest_cron,
            long_open_days=settings.digest_long_open_days,
            clock=runtime.clock,
        ),
    )
