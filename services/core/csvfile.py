"""Reading CSV files with a header row: checked columns, rows numbered as people count them.

Used for the files an operator imports (organisations, departments, regions) and for the reference
data shipped in the package. A bad file is refused whole, with every problem and its row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from services.core.errors import InvalidInput

NumberedRows = list[tuple[int, dict[str, str]]]


def parse_csv(text: str, source: str, columns: Sequence[str]) -> NumberedRows:
    """Rows numbered as a spreadsheet shows them after the header (the first data row is 1).

    Header names and values are stripped of surrounding blanks; extra columns are kept, missing
    ones refuse the file. `source` names the file in messages.
    """
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [name.strip() for name in reader.fieldnames or []]
        missing = [column for column in columns if column not in header]
        if missing:
            raise InvalidInput(
                f"{source}: missing column(s) {', '.join(missing)}; expected {','.join(columns)}"
            )
        reader.fieldnames = header
        rows = [
            (number, {key: (value or "").strip() for key, value in row.items() if key is not None})
            for number, row in enumerate(reader, start=1)
        ]
    except csv.Error as exc:
        raise InvalidInput(f"{source}: not a readable CSV file ({exc})") from exc
    if not rows:
        raise InvalidInput(f"{source}: no rows after the header")
    return rows


def read_csv(path: Path, columns: Sequence[str]) -> NumberedRows:
    """Read a UTF-8 CSV file (a byte-order mark is allowed) as `parse_csv` does."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            text = handle.read()
    except FileNotFoundError as exc:
        raise InvalidInput(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise InvalidInput(f"{path}: is a directory, not a CSV file") from exc
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path.name}: not UTF-8 text") from exc
    return parse_csv(text, path.name, columns)


def refuse_if(source: str, problems: Sequence[str]) -> None:
    """Refuse the whole file, listing every problem (each starting with its row)."""
    if problems:
        raise InvalidInput(
            f"{source} refused, nothing imported ({len(problems)} problem(s)):\n  "
            + "\n  ".join(problems)
        )
