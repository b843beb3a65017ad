"""`GET /v1/regions` and `GET /v1/care-types`: the public reference lists."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import select

from services.core.db.models import CareType, Region
from services.core.domain import Cluster, Scope
from services.core.http.state import sessions_of

router = APIRouter(prefix="/v1", tags=["reference"])


class RegionRead(BaseModel):
    """An IZA region; its regional table owns the crucial care of its departments."""

    code: str
    name: str
    mandate_municipality: str | None
    active: bool


class CareTypeRead(BaseModel):
    """A crucial care type with its cluster, default scope and whether the Treeknorm applies."""

    code: str
    name_nl: str
    name_en: str
    cluster: Cluster
    default_scope: Scope
    waiting_norms_apply: bool
    has_beds: bool


@router.get("/regions", summary="The IZA regions")
async def list_regions(request: Request) -> list[RegionRead]:
    """Every region, active ones and retired ones (so old departments still resolve)."""
    async with sessions_of(request)() as session:
        regions = await session.scalars(select(Region).order_by(Region.name))
        return [RegionRead.model_validate(region, from_attributes=True) for region in regions]


@router.get("/care-types", summary="The crucial care types")
async def list_care_types(request: Request) -> list[CareTypeRead]:
    """The code list, in the order of the clusters of seed 001 § 3.2."""
    async with sessions_of(request)() as session:
        care_types = await session.scalars(
            select(CareType).order_by(CareType.sort_order, CareType.code)
        )
        return [CareTypeRead.model_validate(ct, from_attributes=True) for ct in care_types]
