"""Record validated signals: resolve and authorise their departments, store each once, announce.

Runs inside the caller's transaction and never commits: the API answers 202 only after its own
commit, so a signal and its `signal.received` event are stored together or not at all.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.access import Caller, may_report_for
from services.core.db.models import Department, Organisation, Region, Signal
from services.core.domain import Role, SignalSource
from services.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.core.events.outbox import NewEvent, record_events
from services.core.events.types import EventType
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


@dataclass(frozen=True)
class _Target:
    department: Department
    provider_agb: str
    region_code: str


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
    session: AsyncSession, caller: Caller, signals: list[SignalIn], batch: bool
) -> list[_Target]:
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
    rows = await session.execute(
        select(Department, Organisation.agb_code, Region.code)
        .join(Organisation, Department.provider_id == Organisation.id)
        .join(Region, Department.region_id == Region.id)
        .where(tuple_(Organisation.agb_code, Department.code).in_(set(wanted)))
    )
    found = {(agb, department.code): (department, region) for department, agb, region in rows}
    missing = [
        f"{_label(index, batch)}: unknown department {code} of provider {agb}"
        for index, (agb, code) in enumerate(wanted)
        if (agb, code) not in found
    ]
    if missing:
        raise NotFound("; ".join(missing[:20]) + (" …" if len(missing) > 20 else ""))
    targets = []
    for index, (agb, code) in enumerate(wanted):
        department, region = found[(agb, code)]
        if not may_report_for(caller, department):
            raise Forbidden(
                f"{_label(index, batch)}: department {code} of provider {agb} is in region"
                f" {region}, which {caller.organisation_name} does not coordinate"
            )
        targets.append(_Target(department, agb, region))
    return targets


async def record_signals(
    session: AsyncSession,
    *,
    caller: Caller,
    signals: list[SignalIn],
    source: SignalSource,
    received_at: datetime,
    batch: bool = True,
) -> list[StoredSignal]:
    """Store the signals that are new and announce them; a repeated id with the same content is
    answered as stored, a repeated id with other content refuses the whole request (409)."""
    targets = await _targets(session, caller, signals, batch)
    rows: list[dict[str, Any]] = []
    for signal, target in zip(signals, targets, strict=True):
        rows.append(
            {
                "id": signal.id or uuid.uuid4(),
                "department_id": target.department.id,
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
    inserted = set(
        await session.scalars(
            insert(Signal).on_conflict_do_nothing(index_elements=["id"]).returning(Signal.id),
            rows,
        )
    )
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
            department=target.department.code,
            provider_agb=target.provider_agb,
            kind=str(row["kind"]),
            stored=row["id"] in inserted,
        )
        for row, target in zip(rows, targets, strict=True)
    ]


def _received_event(
    row: dict[str, object], target: _Target, caller: Caller, source: SignalSource
) -> NewEvent:
    department = target.department
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
            "provider_agb": target.provider_agb,
            "region": target.region_code,
            "care_type": department.care_type_code,
            "kind": str(row["kind"]),
            "observed_at": observed_at.isoformat(),
            "data": row["data"],
            "source": source.value,
            "submitted_by": str(caller.organisation_id),
        },
    )
