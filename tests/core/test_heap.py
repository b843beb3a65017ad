"""The garbage collector as the services set it (`services/core/heap.py`)."""

from __future__ import annotations

import gc
import weakref

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


def test_paused_keeps_the_collector_off_for_a_batch_and_collects_its_cycles_after() -> None:
    """Inside: no collection, however many allocations; after: on again, and a cycle made
    inside is collected."""

    class Node:
        me: object = None

    assert gc.isenabled()
    collected: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collected.append(info["generation"])

    gc.callbacks.append(count)
    try:
        with heap.paused():
            assert not gc.isenabled()
            node = Node()
            node.me = node
            cycle = weakref.ref(node)
            del node
            made: list[list[int]] = [
                [] for _ in range(50_000)
            ]  # allocations far past any threshold
            assert collected == [] and cycle() is not None
            del made
        assert gc.isenabled()
        gc.collect()
        assert cycle() is None
    finally:
        gc.callbacks.remove(count)


def test_paused_restores_the_collector_as_it_found_it_also_after_an_error() -> None:
    try:
        with heap.paused():
            raise ValueError("a batch that fails")
    except ValueError:
        pass
    assert gc.isenabled()
    gc.disable()
    try:
        with heap.paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()
