"""`/v1/digests` at its edges: who may read, and what a wrong period gets (never a 500)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notify.digest import DigestOptions, Period, make_digest
from tests.digest.world import AMS, digest_world
from tests.ingest.conftest import open_client


async def test_readers_bad_periods_and_missing_digests(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await digest_world(database_url, sessions)
    async for client in open_client(w.app):
        empty = await client.get("/v1/digests", headers=w.auth("insurer_menzis"))
        assert empty.status_code == 200 and empty.json() == {"items": []}
        assert (await client.get("/v1/digests")).status_code == 401
        for who in ("provider_a", "provider_b"):
            refused = await client.get("/v1/digests", headers=w.auth(who))
            assert refused.status_code == 403 and "provider" in refused.json()["detail"]

        async with sessions() as session, session.begin():
            await make_digest(
                session,
                Period(2026, 3),
                options=DigestOptions(zone=AMS, public_url="https://x.test", pdf=False),
                now=datetime(2026, 4, 1, 5, tzinfo=UTC),
                publish=False,
            )
        governance = w.auth("governance")
        for path, status in (
            ("/v1/digests/2026-03", 200),
            ("/v1/digests/2026-03.json", 200),
            ("/v1/digests/2026-03.html", 200),
            ("/v1/digests/2026-03.pdf", 404),  # made without a PDF
            ("/v1/digests/2026-04.json", 404),
            ("/v1/digests/2026-13.json", 422),
            ("/v1/digests/2026-03.xml", 422),
            ("/v1/digests/26-03", 422),
            ("/v1/digests/%00", 422),
            ("/v1/digests/2026-03.json.pdf", 422),
        ):
            answer = await client.get(path, headers=governance)
            assert answer.status_code == status, (path, answer.text)
            if status >= 400:
                assert answer.headers["content-type"] == "application/problem+json"
        document = (await client.get("/v1/digests/2026-03", headers=governance)).json()
        assert (document["status"], document["published_at"]) == ("made", None)
        assert document["links"]["pdf"] is None and document["empty"] is True
        listed = (await client.get("/v1/digests", headers=governance)).json()["items"]
        assert [(d["period"], d["links"]["pdf"]) for d in listed] == [("2026-03", None)]
        schema = (await client.get("/openapi.json")).json()
        assert {"/v1/digests", "/v1/digests/{period}.pdf"} <= schema["paths"].keys()
