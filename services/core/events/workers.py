"""Running a process's share of the bus: its consumers and, where it owns one, the relay.

Each runs as a task under a small supervisor: a task that fails unexpectedly is logged and
started again after a pause, so one bad moment does not stop the process's event work. On shutdown
the consumers finish and commit the batch in hand and leave their groups first, then the relay
stops; a consumer still busy after `grace` seconds is cancelled (its transaction rolls back and
the group redelivers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from services.core.events.bus import Bus, BusUnavailable, Consumer, Relay
from services.core.events.consumer import Subscription

log = logging.getLogger(__name__)

RESTART_PAUSE = 2.0


@dataclass
class BusWorkers:
    """The running consumers and relay of one process."""

    bus: Bus
    consumers: list[Consumer] = field(default_factory=list)
    relay: Relay | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def supervise(self, name: str, make: Callable[[], Consumer | Relay]) -> None:
        """Run a worker; make a fresh one after an unexpected failure."""

        async def loop() -> None:
            while not self.stopping.is_set():
                worker = make()
                if isinstance(worker, Relay):
                    self.relay = worker
                else:
                    self.consumers.append(worker)
                try:
                    await worker.run()
                except Exception:
                    log.exception("%s failed; starting it again in %.0f s", name, RESTART_PAUSE)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stopping.wait(), RESTART_PAUSE)
                finally:
                    if isinstance(worker, Consumer) and worker in self.consumers:
                        self.consumers.remove(worker)

        self.tasks.append(asyncio.create_task(loop(), name=name))

    async def stop(self, grace: float) -> None:
        """Consumers first (they finish their batch and leave the group), the relay last."""
        self.stopping.set()
        for consumer in self.consumers:
            consumer.stop()
        consumer_tasks = [t for t in self.tasks if not t.get_name().startswith("relay")]
        await _finish(consumer_tasks, grace)
        if self.relay is not None:
            self.relay.stop()
        await _finish([t for t in self.tasks if t.get_name().startswith("relay")], grace)


async def _finish(tasks: Sequence[asyncio.Task[None]], grace: float) -> None:
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=grace)
    for task in pending:
        log.warning("%s did not stop within %.0f s; cancelling it", task.get_name(), grace)
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@asynccontextmanager
async def running_bus(
    bus: Bus,
    subscriptions: Sequence[Subscription] = (),
    *,
    relay: bool = False,
    grace: float = 25.0,
) -> AsyncIterator[BusWorkers]:
    """Start the bus, the subscriptions' consumers and (if asked and needed) the relay."""
    try:
        await bus.start()
    except BusUnavailable as exc:
        # Not fatal: the workers retry, and /readyz says not ready until the bus is back.
        log.warning("bus not available at start-up: %s", exc)
    workers = BusWorkers(bus)
    if relay and bus.relay() is not None:
        workers.supervise("relay", lambda: _relay_of(bus))
    for subscription in subscriptions:
        workers.supervise(f"consumer {subscription.group}", _consumer_maker(bus, subscription))
    try:
        yield workers
    finally:
        await workers.stop(grace)
        await bus.close()


def _relay_of(bus: Bus) -> Relay:
    relay = bus.relay()
    if relay is None:
        raise RuntimeError(f"the {bus.backend} bus has no relay")
    return relay


def _consumer_maker(bus: Bus, subscription: Subscription) -> Callable[[], Consumer]:
    return lambda: bus.consumer(subscription)
