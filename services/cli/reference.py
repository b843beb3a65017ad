"""`region list|import` and `care-type list`: the reference data an operator looks at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.cli.common import (
    JSON_OPTION,
    checked,
    describe_counts,
    emit,
    out,
    run_in_transaction,
    table,
)
from services.core.db.models import CareType, Department, Region
from services.core.domain import RegionSource
from services.core.reference import import_regions, read_regions_csv

regions = typer.Typer(help="IZA regions (each with its regional table).", no_args_is_help=True)
care_types = typer.Typer(help="The crucial care types and their clusters.", no_args_is_help=True)


@regions.command("list")
def region_list(as_json: bool = JSON_OPTION) -> None:
    """List the IZA regions with the number of departments in each."""

    async def work(session: AsyncSession) -> list[dict[str, object]]:
        counts = (
            select(Department.region_id, func.count().label("departments"))
            .group_by(Department.region_id)
            .subquery()
        )
        rows = await session.execute(
            select(Region, func.coalesce(counts.c.departments, 0))
            .outerjoin(counts, counts.c.region_id == Region.id)
            .order_by(Region.name)
        )
        return [
            {
                "code": region.code,
                "name": region.name,
                "mandate_municipality": region.mandate_municipality,
                "active": region.active,
                "departments": departments,
            }
            for region, departments in rows
        ]

    found = run_in_transaction(work)
    emit(
        as_json,
        found,
        lambda: table(
            f"{len(found)} IZA regions",
            ["code", "name", "mandate municipality", "active", "departments"],
            [
                [r["code"], r["name"], r["mandate_municipality"], r["active"], r["departments"]]
                for r in found
            ],
        ),
    )


@regions.command("import")
def region_import(
    file: Path = typer.Argument(..., help="CSV with columns code,name,mandate_municipality"),
    retire_missing: bool = typer.Option(
        False, help="Mark regions that are not in the file inactive (they are never deleted)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Load a new list of regions: new codes are added, known codes renamed, history kept."""
    rows = checked(lambda: read_regions_csv(file))

    async def work(session: AsyncSession) -> dict[str, Any]:
        report = await import_regions(
            session, rows, source=RegionSource.IMPORTED, retire_missing=retire_missing
        )
        return report.as_dict()

    report = run_in_transaction(work)
    emit(
        as_json,
        report,
        lambda: out.print(f"{file.name}: {describe_counts(report, 'regions')}"),
    )


@care_types.command("list")
def care_type_list(as_json: bool = JSON_OPTION) -> None:
    """List the care types with cluster, default scope and whether the Treeknorm applies."""

    async def work(session: AsyncSession) -> list[dict[str, object]]:
        found = await session.scalars(select(CareType).order_by(CareType.sort_order, CareType.code))
        return [
            {
                "code": ct.code,
                "cluster": ct.cluster.value,
                "name_nl": ct.name_nl,
                "name_en": ct.name_en,
                "default_scope": ct.default_scope.value,
                "waiting_norms_apply": ct.waiting_norms_apply,
                "has_beds": ct.has_beds,
                "status": ct.status,
            }
            for ct in found
        ]

    found = run_in_transaction(work)
    emit(
        as_json,
        found,
        lambda: table(
            f"{len(found)} care types",
            ["code", "cluster", "name", "scope", "Treeknorm", "beds"],
            [
                [
                    c["code"],
                    c["cluster"],
                    c["name_nl"],
                    c["default_scope"],
                    "ja" if c["waiting_norms_apply"] else "nee",
                    "ja" if c["has_beds"] else "nee",
                ]
                for c in found
            ],
        ),
    )
