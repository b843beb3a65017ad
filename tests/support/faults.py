"""Helpers for fault-injection tests: a Kafka-protocol broker that can be frozen and thawed.

Tansu keeps its topics in memory, so a real stop and start would come back as an empty broker
(no topics, no committed offsets): that is a lost cluster, not an outage. An outage — the broker
unreachable while its state survives — is a SIGSTOP (connections hang, nothing answers) followed
by a SIGCONT.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support import tansu


@dataclass
class PausableBroker:
    """A Tansu broker of a test's own; `pause()` freezes it, `resume()` lets it go on."""

    bootstrap: str
    process: subprocess.Popen[bytes]

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)


@contextmanager
def pausable_broker() -> Iterator[PausableBroker]:
    """A fresh broker (see tests/support/tansu.py), always thawed and stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="vroegsignaal-tansu-pause-") as tmp:
        process, port = tansu._start(
            tansu.broker_bin(), Path(tmp) / "tansu.log", tansu.READY_TIMEOUT_S
        )
        broker = PausableBroker(f"127.0.0.1:{port}", process)
        try:
            yield broker
        finally:
            if process.poll() is None:
                broker.resume()
            tansu._stop(process)
