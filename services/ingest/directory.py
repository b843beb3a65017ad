"""Finding departments by (provider AGB, department code), with a short cache.

Every signal names its department by code; looking it up is most of the cost of a small request.
Departments are created now and then and their identity (provider, region, care type) does not
change, so a hit is kept for `TTL_SECONDS`. Misses are never cached: a department registered a
moment ago is found at once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import String, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

TTL_SECONDS = 30.0
MAX_ENTRIES = 100_000

Key = tuple[str, str]  # (provider AGB, department code)


@dataclass(frozen=True)
class DepartmentRef:
    """What intake needs to know of a department."""

    id: uuid.UUID
    code: str
    provider_id: uuid.UUID
    provider_agb: str
    region_id: int
    region_code: str
    care_type_code: str


class DepartmentDirectory:
    """Looks departments up in the database, remembering hits for a while."""

    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self.ttl = ttl
        self._entries: dict[Key, tuple[float, DepartmentRef]] = {}

    async def find(self, session: AsyncSession, keys: Iterable[Key]) -> dict[Key, DepartmentRef]:
        """The departments that exist among `keys`; absent keys are simply not in the answer."""
        now = time.monotonic()
        found: dict[Key, DepartmentRef] = {}
        wanted: set[Key] = set()
        for key in keys:
            entry = self._entries.get(key)
            if entry is not None and entry[0] > now:
                found[key] = entry[1]
            else:
                wanted.add(key)
        if wanted:
            for ref in await _load(session, wanted):
                found[(ref.provider_agb, ref.code)] = ref
                self._remember((ref.provider_agb, ref.code), ref, now)
        return found

    def _remember(self, key: Key, ref: DepartmentRef, now: float) -> None:
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (now + self.ttl, ref)


# By (AGB, code) pairs as two arrays: one statement text (so one prepared statement) however
# many keys a request names, and no SQL expression built per request.
_FIND = text(
    """
    SELECT d.id, d.code, d.provider_id, o.agb_code, d.region_id, r.code AS region_code,
           d.care_type_code
    FROM unnest(:agbs, :codes) AS k(agb, code)
    JOIN organisations o ON o.agb_code = k.agb
    JOIN departments d ON d.provider_id = o.id AND d.code = k.code
    JOIN regions r ON r.id = d.region_id
    """
).bindparams(bindparam("agbs", type_=ARRAY(String())), bindparam("codes", type_=ARRAY(String())))


async def _load(session: AsyncSession, keys: set[Key]) -> list[DepartmentRef]:
    pairs = list(keys)
    rows = await session.execute(
        _FIND, {"agbs": [agb for agb, _ in pairs], "codes": [code for _, code in pairs]}
    )
    return [
        DepartmentRef(id_, code, provider_id, agb or "", region_id, region, care_type)
        for id_, code, provider_id, agb, region_id, region, care_type in rows
    ]
