"""`/v1/departments`: each role sees exactly its own scope; providers register departments."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db.models import AuditEntry
from tests.ingest.conftest import World, signal

DEPARTMENTS = "/v1/departments"


async def codes(client: httpx.AsyncClient, world: World, who: str, **params: str) -> list[str]:
    answer = await client.get(DEPARTMENTS, headers=world.auth(who), params=params)
    assert answer.status_code == 200, answer.text
    return sorted(item["code"] for item in answer.json()["items"])


async def test_each_role_sees_its_scope(client: httpx.AsyncClient, world: World) -> None:
    zwolle = ["FACT-ZWOLLE", "HIC-ZWOLLE", "KIB-ZWOLLE"]
    assert await codes(client, world, "provider_a") == zwolle
    assert await codes(client, world, "provider_b") == ["HIC-GRN"]
    assert await codes(client, world, "insurer_zk") == zwolle
    assert await codes(client, world, "insurer_menzis") == ["HIC-GRN"]
    assert await codes(client, world, "table_ijssel_vecht") == zwolle
    assert await codes(client, world, "national_table") == ["KIB-ZWOLLE"]  # supra-regional
    assert await codes(client, world, "governance") == sorted([*zwolle, "HIC-GRN"])
    assert await codes(client, world, "provider_a", care_type="acute.hic") == ["HIC-ZWOLLE"]
    assert await codes(client, world, "governance", region="groningen") == ["HIC-GRN"]
    page = await client.get(DEPARTMENTS, headers=world.auth("governance"), params={"limit": 2})
    assert page.json()["total"] == 4 and len(page.json()["items"]) == 2
    assert (await client.get(DEPARTMENTS)).status_code == 401


async def test_one_department_is_refused_outside_scope(
    client: httpx.AsyncClient, world: World
) -> None:
    grn = world.departments["HIC-GRN"]
    mine = await client.get(f"{DEPARTMENTS}/{grn}", headers=world.auth("provider_b"))
    assert mine.status_code == 200
    assert mine.json() == mine.json() | {
        "code": "HIC-GRN",
        "care_type": "acute.hic",
        "cluster": "acute",
        "region": "groningen",
        "scope": "regional",
        "capacity": 20,
    }
    assert (
        await client.get(f"{DEPARTMENTS}/{grn}", headers=world.auth("provider_a"))
    ).status_code == 403
    assert (
        await client.get(f"{DEPARTMENTS}/{grn}", headers=world.auth("insurer_zk"))
    ).status_code == 403
    missing = "00000000-0000-0000-0000-000000000000"
    assert (
        await client.get(f"{DEPARTMENTS}/{missing}", headers=world.auth("provider_a"))
    ).status_code == 404
    assert (
        await client.get(f"{DEPARTMENTS}/not-a-uuid", headers=world.auth("provider_a"))
    ).status_code == 422


async def test_signal_history_is_paged_newest_first(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = [signal(observed_at=f"2026-{month:02d}-01T12:00:00Z") for month in range(1, 8)]
    auth = world.auth("provider_a")
    assert (
        await client.post("/v1/signals", json={"signals": batch}, headers=auth)
    ).status_code == 202
    url = f"{DEPARTMENTS}/{world.departments['HIC-ZWOLLE']}/signals"
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = (await client.get(url, headers=auth, params=params)).json()
        seen += [item["observed_at"][:7] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"2026-{month:02d}" for month in range(7, 0, -1)]
    assert (await client.get(url, headers=world.auth("insurer_zk"))).status_code == 200
    assert (await client.get(url, headers=world.auth("insurer_menzis"))).status_code == 403
    assert (await client.get(url, headers=world.auth("governance"))).status_code == 403
    assert (await client.get(url, headers=auth, params={"cursor": "bogus"})).status_code == 400


async def test_a_provider_registers_its_own_department(
    client: httpx.AsyncClient, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    body = {
        "code": "IHT-ZWOLLE",
        "name": "IHT Zwolle",
        "care_type": "acute.iht",
        "region": "ijssel-vecht",
    }
    made = await client.post(DEPARTMENTS, json=body, headers=world.auth("provider_a"))
    assert made.status_code == 201, made.text
    assert made.headers["location"] == f"{DEPARTMENTS}/{made.json()['id']}"
    assert made.json() == made.json() | {"provider_agb": "73990001", "scope": "regional"}
    assert (
        await client.post(DEPARTMENTS, json=body, headers=world.auth("provider_a"))
    ).status_code == 409
    unknown = dict(body, code="X-1", care_type="acute.unknown")
    refused = await client.post(DEPARTMENTS, json=unknown, headers=world.auth("provider_a"))
    assert refused.status_code == 422
    assert "care type" in refused.json()["detail"]
    extra = dict(body, code="X-2", colour="red")
    assert (
        await client.post(DEPARTMENTS, json=extra, headers=world.auth("provider_a"))
    ).status_code == 422
    assert (
        await client.post(
            DEPARTMENTS, json=dict(body, code="X-3"), headers=world.auth("insurer_zk")
        )
    ).status_code == 403
    async with sessions() as session:
        audit = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "department.created")
            )
        ).all()
    assert [entry.channel for entry in audit if entry.details.get("code") == "IHT-ZWOLLE"] == [
        "api"
    ]
