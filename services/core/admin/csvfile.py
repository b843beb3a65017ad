"""Reading operator CSV files: checked columns, rows numbered as people count them."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from services.core.errors import InvalidInput


def read_csv(path: Path, columns: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """Rows numbered as a spreadsheet shows them after the header (the first data row is 1)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in reader.fieldnames or []]
            missing = [column for column in columns if column not in header]
            if missing:
                raise InvalidInput(
                    f"{path.name}: missing column(s) {', '.join(missing)};"
                    f" expected {','.join(columns)}"
                )
            reader.fieldnames = header
            rows = [
                (number, {key: (value or "") for key, value in row.items() if key is not None})
                for number, row in enumerate(reader, start=1)
            ]
    except FileNotFoundError as exc:
        raise InvalidInput(f"{path}: no such file") from exc
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path.name}: not UTF-8 text") from exc
    except csv.Error as exc:
        raise InvalidInput(f"{path.name}: not a readable CSV file ({exc})") from exc
    if not rows:
        raise InvalidInput(f"{path.name}: no rows after the header")
    return rows


def refuse_if(path: Path, problems: list[str]) -> None:
    """Refuse the whole file, listing every problem with its row."""
    if problems:
        raise InvalidInput(
            f"{path.name} refused, nothing imported ({len(problems)} problem(s)):\n  "
            + "\n  ".join(problems)
        )
