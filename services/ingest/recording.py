"""Record validated signals: resolve and authorise their departments, store each once, announce.

Runs inside the caller's transaction and never commits: the API answers 202 only after its own
commit, so a signal and its `signal.received` event are stored together or not at all.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.access import Caller, may_report_for
from services.core.db.models import Signal
from services.core.domain import Role, SignalSource
from services.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.core.events.outbox import NewEvent, record_events
from services.core.events.types import EventType
from services.ingest.directory import DepartmentDirectory, DepartmentRef
from services.ingest.schemas import SignalIn
from services.ingest.validation import body_hash

REPORTING_ROLES = (Role.PROVIDER, Role.INSURER)


@dataclass(frozen=True)
class StoredSignal:
    """One signal of the answer: its id, and whether this request stored it or an earlier one."""

    id: uuid.UUID
    department: str
    provider_agb: str
    kind: str
    stored: bool  # False: the same signal (same id, same content) was stored before

    def as_dict(self) -> dict[str, str]:
        """JSON form for the 202 answer."""
        return {
            "id": str(self.id),
            "department": self.department,
            "provider_agb": self.provider_agb,
            "kind": self.kind,
            "status": "stored" if self.stored else "already_stored",
        }


def _label(index: int, batch: bool) -> str:
    return f"signals[{index}]" if batch else "the signal"


def _provider_of(caller: Caller, signal: SignalIn, index: int, batch: bool) -> str:
    """Whose department the signal is about: the caller's own, or the named provider's."""
    if caller.role is Role.PROVIDER:
        if signal.provider_agb not in (None, caller.agb_code):
            raise Forbidden(
                f"{_label(index, batch)}: provider_agb {signal.provider_agb} is not your"
                f" organisation ({caller.agb_code}); a provider reports on its own departments"
            )
        assert caller.agb_code is not None
        return caller.agb_code
    if signal.provider_agb is None:
        path = f"signals[{index}].provider_agb" if batch else "provider_agb"
        raise InvalidInput(f"{path}: is required when an insurer posts a signal")
    return signal.provider_agb


async def _targets(
    session: AsyncSession,
    caller: Caller,
    signals: list[SignalIn],
    batch: bool,
    directory: DepartmentDirectory,
) -> list[DepartmentRef]:
    """The department of every signal, after checking that the caller may report on it."""
    if caller.role not in REPORTING_ROLES:
        raise Forbidden(
            f"The role {caller.role.value} may not post signals; providers and their"
            " coordinating insurers do."
        )
    wanted = [
        (_provider_of(caller, signal, index, batch), signal.department)
        for index, signal in enumerate(signals)
    ]
    found = await directory.find(session, wanted)
    missing = [
        f"{_label(index, batch)}: unknown department {code} of provider {agb}"
        for index, (agb, code) in enumerate(wanted)
        if (agb, code) not in found
    ]
    if missing:
        raise NotFound("; ".join(missing[:20]) + (" …" if len(missing) > 20 else ""))
    targets = []
    for index, key in enumerate(wanted):
        department = found[key]
        if not may_report_for(
            caller, provider_id=department.provider_id, region_id=department.region_id
        ):
            raise Forbidden(
                f"{_label(index, batch)}: department {department.code} of provider"
                f" {department.provider_agb} is in region {department.region_code}, which"
                f" {caller.organisation_name} does not coordinate"
            )
        targets.append(department)
    return targets


_SIGNALS = cast(Table, Signal.__table__)
_INSERT_SIGNALS = (
    insert(_SIGNALS).on_conflict_do_nothing(index_elements=["id"]).returning(_SIGNALS.c.id)
)


async def record_signals(
    session: AsyncSession,
    *,
    caller: Caller,
    signals: list[SignalIn],
    source: SignalSource,
    received_at: datetime,
    batch: bool = True,
    directory: DepartmentDirectory | None = None,
) -> list[StoredSignal]:
    """Store the signals that are new and announce them; a repeated id with the same content is
    answered as stored, a repeated id with other content refuses the whole request (409)."""
    targets = await _targets(session, caller, signals, batch, directory or DepartmentDirectory())
    rows: list[dict[str, Any]] = []
    for signal, target in zip(signals, targets, strict=True):
        rows.append(
            {
                "id": signal.id or uuid.uuid4(),
                "department_id": target.id,
                "kind": signal.kind,
                "observed_at": signal.observed_at,
                "received_at": received_at,
                "data": signal.data,
                "note": signal.note,
                "source": source,
                "submitted_by_id": caller.organisation_id,
                "body_hash": body_hash(signal),
            }
        )
    # ON CONFLICT DO NOTHING: a concurrent request with the same id waits for ours to commit,
    # then finds the row, so a signal is stored once however many times it is sent.
    # The table, not the ORM class: the ORM groups rows by which keys are None and would send
    # one statement per group; this is one multi-row INSERT for the whole batch.
    # Rows in id order: two batches that share signals lock them in the same order, so they
    # queue behind each other instead of deadlocking.
    in_lock_order = sorted(rows, key=lambda row: str(row["id"]))
    inserted = set(await session.scalars(_INSERT_SIGNALS, in_lock_order))
    repeated = {row["id"]: row for row in rows if row["id"] not in inserted}
    if repeated:
        earlier = await session.execute(
            select(Signal.id, Signal.body_hash).where(Signal.id.in_(repeated))
        )
        for signal_id, earlier_hash in earlier:
            if earlier_hash != repeated[signal_id]["body_hash"]:
                raise Conflict(
                    f"signal id {signal_id} was already used for a different signal;"
                    " choose a new id for a new signal"
                )
    await record_events(
        session,
        [
            _received_event(row, target, caller, source)
            for row, target in zip(rows, targets, strict=True)
            if row["id"] in inserted
        ],
    )
    return [
        StoredSignal(
            id=row["id"],
            department=target.code,
            provider_agb=target.provider_agb,
            kind=str(row["kind"]),
            stored=row["id"] in inserted,
        )
        for row, target in zip(rows, targets, strict=True)
    ]


def _received_event(
    row: dict[str, object], department: DepartmentRef, caller: Caller, source: SignalSource
) -> NewEvent:
    observed_at = row["observed_at"]
    assert isinstance(observed_at, datetime)
    return NewEvent(
        type=EventType.SIGNAL_RECEIVED,
        source="ingest",
        subject=str(row["id"]),
        partition_key=str(department.id),
        data={
            "signal_id": str(row["id"]),
            "department_id": str(department.id),
            "department": department.code,
            "provider_agb": department.provider_agb,
            "region": department.region_code,
            "care_type": department.care_type_code,
            "kind": str(row["kind"]),
            "observed_at": observed_at.isoformat(),
            "data": row["data"],
            "source": source.value,
            "submitted_by": str(caller.organisation_id),
        },
    )
