"""A consumer-group member in a process of its own, for the multi-process tests.

`python -m tests.events.worker DATABASE_URL GROUP LABEL` consumes the signals topic on the
PostgreSQL bus with the recording handler until SIGTERM (then it leaves the group cleanly) or
SIGKILL (then its partitions are taken over when its lease expires).
"""

from __future__ import annotations

import asyncio
import signal
import sys

from services.core.db.engine import make_engine, make_sessions
from services.core.events.consumer import Subscription
from services.core.events.postgres_bus import PostgresBus
from services.core.events.types import Topic
from tests.events.conftest import FAST, recording_handler


async def main(url: str, group: str, label: str) -> None:
    engine = make_engine(url, pool_size=3)
    bus = PostgresBus(url, make_sessions(engine), timing=FAST)
    consumer = bus.consumer(Subscription(group, (Topic.SIGNALS.value,), recording_handler(label)))
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, consumer.stop)
    print("ready", flush=True)
    await consumer.run()
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
