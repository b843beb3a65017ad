"""The soak (bench/soak.py) for 10 s: many providers posting, insurers acting on alerts, webhook
receivers of varying speed. No signal lost or doubled, no request without an answer, no 5xx."""

from __future__ import annotations

from bench.soak import soak


async def test_a_short_soak_loses_nothing_and_never_answers_5xx(server_url: str) -> None:
    report = await soak(server_url, seconds=10, providers=6, insurers=2)
    assert report.signals_acknowledged > 500, report
    assert report.signals_lost == 0 and report.signals_doubled == 0, report
    assert report.signals_stored == report.signals_acknowledged, report
    assert report.alerts > 0 and report.webhooks_received > 0, report
    assert report.webhook_ids_repeated == 0, report
    assert report.operations["list_alerts"]["count"] > 0
    assert report.no_answer == 0, report.operations
    assert report.server_errors == 0, report.operations
