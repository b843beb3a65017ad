"""`/v1/departments`: what a sender may see of the departments it reports on, and registering
a provider's own departments."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.access import Caller, may_read_signals, visible_departments
from services.core.admin.departments import DEPARTMENT_CODE, DepartmentSpec, add_department
from services.core.audit import audit_call
from services.core.db.models import CareType, Department, Organisation, Region, Signal
from services.core.domain import Cluster, DepartmentStatus, Role, Scope, SignalKind, SignalSource
from services.core.errors import Conflict, Forbidden, InvalidInput
from services.core.http.auth import CallerDep
from services.core.http.state import sessions_of
from services.ingest.openapi import ERROR_RESPONSES

router = APIRouter(prefix="/v1/departments", tags=["departments"])


class DepartmentRead(BaseModel):
    """A department as its reporters and tables see it."""

    id: uuid.UUID
    code: str
    name: str
    provider_agb: str
    provider: str
    care_type: str
    cluster: Cluster
    region: str
    scope: Scope
    capacity: int | None
    status: DepartmentStatus
    created_at: datetime


class DepartmentPage(BaseModel):
    items: list[DepartmentRead]
    total: int
    limit: int
    offset: int


class DepartmentCreate(BaseModel):
    """A provider registers one of its own departments."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "code": "HIC-ZWOLLE",
                    "name": "HIC De Vecht",
                    "care_type": "acute.hic",
                    "region": "ijssel-vecht",
                    "capacity": 24,
                }
            ]
        },
    )

    code: str = Field(pattern=DEPARTMENT_CODE.pattern, description="Unique within the provider.")
    name: str = Field(min_length=1, max_length=200)
    care_type: str = Field(max_length=64, description="A code from GET /v1/care-types.")
    region: str = Field(max_length=64, description="An IZA region code from GET /v1/regions.")
    scope: Scope | None = Field(default=None, description="Default: the care type's scope.")
    capacity: int | None = Field(default=None, ge=0, le=100_000)


class SignalRead(BaseModel):
    """A stored signal, as it was received."""

    id: uuid.UUID
    kind: SignalKind
    observed_at: datetime
    received_at: datetime
    data: dict[str, Any]
    note: str | None
    source: SignalSource


class SignalPage(BaseModel):
    items: list[SignalRead]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next, older page.")


def _department_query() -> Select[Department, str | None, str, str, Cluster]:
    return (
        select(Department, Organisation.agb_code, Organisation.name, Region.code, CareType.cluster)
        .join(Organisation, Department.provider_id == Organisation.id)
        .join(Region, Department.region_id == Region.id)
        .join(CareType, Department.care_type_code == CareType.code)
    )


def _read(row: Any) -> DepartmentRead:
    department, agb, provider, region, cluster = row
    return DepartmentRead(
        id=department.id,
        code=department.code,
        name=department.name,
        provider_agb=agb,
        provider=provider,
        care_type=department.care_type_code,
        cluster=cluster,
        region=region,
        scope=department.scope,
        capacity=department.capacity,
        status=department.status,
        created_at=department.created_at,
    )


@router.get("", summary="Departments you may see", responses=ERROR_RESPONSES)
async def list_departments(
    request: Request,
    caller: CallerDep,
    region: Annotated[str | None, Query(pattern=r"^[a-z0-9-]{1,64}$")] = None,
    care_type: Annotated[str | None, Query(pattern=r"^[a-z0-9_.]{1,64}$")] = None,
    provider_agb: Annotated[str | None, Query(pattern=r"^[0-9]{8}$")] = None,
    status: DepartmentStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> DepartmentPage:
    """Scoped to the caller: a provider its own, an insurer the regions it coordinates, a table
    its region (the national table: supra-regional care)."""
    query = _department_query().where(visible_departments(caller))
    if region:
        query = query.where(Region.code == region)
    if care_type:
        query = query.where(Department.care_type_code == care_type)
    if provider_agb:
        query = query.where(Organisation.agb_code == provider_agb)
    if status:
        query = query.where(Department.status == status)
    async with sessions_of(request)() as session:
        total = await session.scalar(select(func.count()).select_from(query.subquery()))
        rows = await session.execute(
            query.order_by(Region.code, Department.care_type_code, Department.code)
            .limit(limit)
            .offset(offset)
        )
        items = [_read(row) for row in rows]
    return DepartmentPage(items=items, total=total or 0, limit=limit, offset=offset)


async def _visible(session: AsyncSession, caller: Caller, department_id: uuid.UUID) -> Any:
    # One read tells both: whether the department exists and whether the caller may see it.
    row = (
        await session.execute(
            _department_query()
            .add_columns(visible_departments(caller).label("visible"))
            .where(Department.id == department_id)
        )
    ).one_or_none()
    if row is None:
        raise HTTPException(404, f"No department with id {department_id}.")
    if not row[-1]:
        raise HTTPException(403, "This department is not one your organisation may see.")
    return row[:-1]


@router.get("/{department_id}", summary="One department", responses=ERROR_RESPONSES)
async def get_department(
    request: Request, caller: CallerDep, department_id: uuid.UUID
) -> DepartmentRead:
    """403 for a department outside your scope, 404 for one that does not exist."""
    async with sessions_of(request)() as session:
        return _read(await _visible(session, caller, department_id))


def _cursor(signal: Signal) -> str:
    raw = f"{signal.observed_at.isoformat()}|{signal.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _parse_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        observed, signal_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(observed), uuid.UUID(signal_id)
    except ValueError as exc:
        raise HTTPException(400, "The cursor is not one this API gave out.") from exc


@router.get(
    "/{department_id}/signals",
    summary="A department's signals, newest first",
    responses=ERROR_RESPONSES,
)
async def list_signals(
    request: Request,
    caller: CallerDep,
    department_id: uuid.UUID,
    kind: SignalKind | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> SignalPage:
    """Paged by a cursor (stable while new signals arrive), newest `observed_at` first."""
    if not may_read_signals(caller):
        raise HTTPException(403, "The governance board reads the digest, not raw signals.")
    async with sessions_of(request)() as session, session.begin():
        await _visible(session, caller, department_id)
        await audit_call(
            session,
            request,
            caller,
            "signal.list",
            object_type="department",
            object_id=department_id,
        )
        query = select(Signal).where(Signal.department_id == department_id)
        if kind:
            query = query.where(Signal.kind == kind)
        if cursor:
            observed, signal_id = _parse_cursor(cursor)
            query = query.where(
                or_(
                    Signal.observed_at < observed,
                    and_(Signal.observed_at == observed, Signal.id < signal_id),
                )
            )
        found = list(
            await session.scalars(
                query.order_by(Signal.observed_at.desc(), Signal.id.desc()).limit(limit + 1)
            )
        )
    page = found[:limit]
    return SignalPage(
        items=[SignalRead.model_validate(signal, from_attributes=True) for signal in page],
        next_cursor=_cursor(page[-1]) if len(found) > limit else None,
    )


@router.post(
    "",
    status_code=201,
    summary="Register one of your own departments (providers)",
    responses=ERROR_RESPONSES,
)
async def create_department(
    request: Request, caller: CallerDep, body: DepartmentCreate
) -> JSONResponse:
    """A provider's system registers a department before it reports on it."""
    if caller.role is not Role.PROVIDER or caller.agb_code is None:
        raise Forbidden("Only a provider registers its own departments.")
    spec = DepartmentSpec(
        provider_agb=caller.agb_code,
        code=body.code,
        name=body.name,
        care_type=body.care_type,
        region=body.region,
        scope=body.scope,
        capacity=body.capacity,
    )
    async with sessions_of(request)() as session, session.begin():
        try:
            department = await add_department(
                session, spec, channel=caller.channel, api_key_id=caller.api_key_id
            )
        except Conflict:
            raise
        except InvalidInput as exc:  # an unknown care type or region is a bad field here
            raise InvalidInput(str(exc)) from exc
        department_id = department.id
    async with sessions_of(request)() as session:
        created = _read(
            (await session.execute(_department_query().where(Department.id == department_id))).one()
        )
    return JSONResponse(
        created.model_dump(mode="json"),
        status_code=201,
        headers={"Location": f"/v1/departments/{department_id}"},
    )
