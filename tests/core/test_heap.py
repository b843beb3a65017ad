"""The garbage collector as the services set it (`services/core/heap.py`)."""

from __future__ import annotations

import gc

from services.core import heap
from services.core.http.app import create_app
from tests.ingest.conftest import settings


def test_settle_freezes_start_up_and_sets_the_thresholds_it_is_given() -> None:
    before = gc.get_threshold()
    try:
        heap.settle()
        assert gc.get_freeze_count() > 0  # what start-up made is out of every collection
        assert gc.get_threshold() == before  # the API services keep CPython's thresholds
        heap.settle(heap.BATCH_WORKER)
        assert gc.get_threshold() == heap.BATCH_WORKER
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


async def test_a_service_started_with_thresholds_runs_with_them(database_url: str) -> None:
    before = gc.get_threshold()
    app = create_app(settings(), database_url, gc_thresholds=heap.BATCH_WORKER)
    try:
        async with app.router.lifespan_context(app):
            assert gc.get_threshold() == heap.BATCH_WORKER
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
