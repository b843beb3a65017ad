"""The NZa notification draft, filled from a closure: what the system knows, what the insurer
must add, and who may fetch it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notify.nza import neighbouring_regions
from tests.ingest.conftest import open_client
from tests.notify.world import department_alert, eventually, notify_world, post


def test_neighbouring_regions_share_a_province() -> None:
    near = neighbouring_regions("ijssel-vecht")
    assert "twente" in near and "ijssel-vecht" not in near
    assert "zuid-limburg" not in near


async def test_a_closure_fills_the_draft_and_marks_what_the_insurer_must_add(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await notify_world(database_url, sessions)
    effective = datetime.now(UTC).date() + timedelta(days=30)
    async for client in open_client(w.app):
        await post(
            client,
            w,
            {
                "department": "FACT-ZWOLLE",
                "kind": "closure",
                "observed_at": datetime.now(UTC).isoformat(),
                "data": {
                    "effective_date": effective.isoformat(),
                    "scope": "full",
                    "capacity_lost": 180,
                    "reason": "Fusie met FACT Deventer; het team gaat op in Deventer.",
                },
            },
        )
        alert = await eventually(lambda: department_alert(sessions, w.fact), "the closure's alert")
        url = f"/v1/alerts/{alert.id}/nza-notification"
        for who, status in (
            ("provider_a", 403),
            ("governance", 403),
            ("insurer_menzis", 403),
            ("insurer_zk", 200),
            ("table_ijssel_vecht", 200),
        ):
            response = await client.get(url, headers=w.auth(who))
            assert response.status_code == status, (who, response.text)
        draft = (await client.get(url, headers=w.auth("insurer_zk"))).json()
        fields = draft["fields"]
        assert fields["provider"]["value"] == "Vechtstroom GGZ (AGB 73990001)"
        assert fields["extent"]["value"] == "Sluiting, geheel, 180 van 180 plaatsen"
        assert fields["from"]["value"] == effective.isoformat()
        assert fields["reason"]["value"].startswith("Fusie met FACT Deventer")
        assert set(draft["to_add"]) == {"contact", "insured", "purchase"}
        assert fields["insured"]["value"] == "bekend: capaciteit 180 plaatsen"
        assert [a["department"] for a in draft["alternatives"]] == ["FACT-DEVENTER"]
        assert draft["alternatives"][0]["in_region"] is True
        page = await client.get(url, params={"format": "html"}, headers=w.auth("insurer_zk"))
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "Concept-melding aan de NZa" in page.text and "artikel 5.2" in page.text
        assert page.text.count('class="todo"') == 3 and "FACT Deventer" in page.text
