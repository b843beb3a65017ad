"""Who may read the digests: the governance board it is made for, and the parties of the ladder
that act on what it reports — the national table, the regional tables, the insurers — and the
operator. Not providers: the digest names other providers' departments and their silences; a
provider reads its own alerts instead. One rule for the API, the webhooks and the dashboard."""

from __future__ import annotations

from services.core.access import Caller
from services.core.domain import OrgKind, Role

READERS = frozenset(
    {Role.GOVERNANCE, Role.NATIONAL_TABLE, Role.REGIONAL_TABLE, Role.INSURER, Role.ADMIN}
)
READER_KINDS = frozenset(
    {
        OrgKind.GOVERNANCE,
        OrgKind.NATIONAL_TABLE,
        OrgKind.REGIONAL_TABLE,
        OrgKind.INSURER,
        OrgKind.OPERATOR,
    }
)


def may_read_digests(caller: Caller) -> bool:
    return caller.role in READERS
