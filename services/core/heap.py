"""The garbage collector, set once a service has started.

CPython frees most objects by reference counting; its cyclic collector runs besides, whenever
700 more container objects were made than freed, and scans the older generations every tenth
time (and every hundredth, if enough piled up there). A service's start-up makes objects that
live as long as the process (modules, the ORM's mappers, the ruleset): they are frozen out of
every collection, or full collections of them stalled requests for tens of milliseconds
(bench/ingest.py).

The rules worker makes hundreds of thousands of small objects per batch, and keeps the
departments it judged (`services/rules/cache.py`): with the default thresholds the collector
took about a tenth of its time, most of it in full collections of what it keeps. Collecting the
young generation after 10,000 allocations and the older ones less often halved that, and the
worker judged about 9 % more signals a second (docs/benchmarks.md, "Rules"). The API services
keep CPython's defaults: in quick ingest runs the same thresholds did not help them.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

BATCH_WORKER = (10_000, 20, 100)


def settle(thresholds: tuple[int, int, int] | None = None) -> None:
    """Freeze what start-up made; set the collector's thresholds (None: CPython's)."""
    gc.collect()
    gc.freeze()
    if thresholds is not None:
        gc.set_threshold(*thresholds)


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection while a batch is judged; what survives it is collected after.

    A batch's rows, events and documents live until its write, so the young collections during
    it scanned them again and again and moved them to the older generations, which were scanned
    in turn: about 8 % of the worker's CPU (docs/benchmarks.md, "Rules", fifth session). They
    are acyclic and freed by reference counting at the batch's end; the first allocation after
    it starts one young collection of what is left. Anything else running in the process during
    the batch's round trips (`vroegsignaal up`) is not collected for that long either: a second
    at most.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
