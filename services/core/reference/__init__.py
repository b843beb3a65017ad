"""Reference data shipped with the package, and its idempotent loading into the database.

The CSV files in this folder (its README says where each comes from) hold the IZA regions, the
crucial care types, the waiting-time norms and the Vektis provider kinds. `files` reads them and
checks every row, refusing a file whole with all its problems; `loading` upserts the rows by their
stable code, leaves the regions an operator imported alone, and never commits.
"""

from services.core.reference.files import (
    CARE_TYPE_COLUMNS,
    NORM_COLUMNS,
    REGION_COLUMNS,
    REGIONAL_TABLE_PREFIX,
    CareTypeRow,
    NormRow,
    RegionRow,
    check_regions,
    packaged_care_types,
    packaged_norms,
    packaged_regions,
    provider_kind,
    read_care_types_csv,
    read_norms_csv,
    read_regions_csv,
    regional_table_name,
)
from services.core.reference.loading import (
    GOVERNANCE_NAME,
    NATIONAL_TABLE_NAME,
    OPERATOR_NAME,
    SINGLETON_ORGANISATIONS,
    ImportReport,
    SeedReport,
    UpsertCounts,
    import_regions,
    seed_reference_data,
)

__all__ = [
    "CARE_TYPE_COLUMNS",
    "GOVERNANCE_NAME",
    "NATIONAL_TABLE_NAME",
    "NORM_COLUMNS",
    "OPERATOR_NAME",
    "REGIONAL_TABLE_PREFIX",
    "REGION_COLUMNS",
    "SINGLETON_ORGANISATIONS",
    "CareTypeRow",
    "ImportReport",
    "NormRow",
    "RegionRow",
    "SeedReport",
    "UpsertCounts",
    "check_regions",
    "import_regions",
    "packaged_care_types",
    "packaged_norms",
    "packaged_regions",
    "provider_kind",
    "read_care_types_csv",
    "read_norms_csv",
    "read_regions_csv",
    "regional_table_name",
    "seed_reference_data",
]
