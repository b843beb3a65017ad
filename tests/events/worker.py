"""A consumer-group member in a process of its own, for the multi-process tests.

`python -m tests.events.worker DATABASE_URL GROUP LABEL [KAFKA_BOOTSTRAP]` consumes the signals
topic with the recording handler (on the PostgreSQL bus, or on Kafka when a bootstrap address is
given) until SIGTERM (then it leaves the group cleanly) or SIGKILL (then its partitions are taken
over when its lease or Kafka session expires).
"""

from __future__ import annotations

import asyncio
import signal
import sys

from services.core.db.engine import make_engine, make_sessions
from services.core.events.bus import Bus
from services.core.events.consumer import Subscription
from services.core.events.kafka_bus import KafkaBus
from services.core.events.postgres_bus import PostgresBus
from services.core.events.types import Topic
from tests.events.conftest import FAST, kafka_settings, recording_handler


async def main(url: str, group: str, label: str, bootstrap: str | None = None) -> None:
    engine = make_engine(url, pool_size=3)
    bus: Bus
    if bootstrap:
        bus = KafkaBus(kafka_settings(bootstrap), url, make_sessions(engine))
    else:
        bus = PostgresBus(url, make_sessions(engine), timing=FAST)
    consumer = bus.consumer(Subscription(group, (Topic.SIGNALS.value,), recording_handler(label)))
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, consumer.stop)
    print("ready", flush=True)
    await consumer.run()
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
