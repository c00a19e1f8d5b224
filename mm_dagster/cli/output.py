"""Printing rows: an aligned table for people, or JSON lines (`--json`) for scripts."""

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any, NamedTuple

TIME_FORMAT = "%Y-%m-%d %H:%M"  # UTC


class Column(NamedTuple):
    """A table column: the row's key and the header shown."""

    key: str
    header: str


def enum_text(value: Enum) -> str:
    """A string enum's value (`data-drift-detected`), another enum's name (`detected`)."""
    return value.value if isinstance(value.value, str) else value.name


def format_time(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime(TIME_FORMAT)


def cell(value: Any) -> str:
    """One value as a table shows it."""
    if value is None or value == "":
        return "-"
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, Enum):
        return enum_text(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple | set):
        return ", ".join(cell(v) for v in value) or "-"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def table_lines(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> list[str]:
    """A header and one line per row, columns separated by two spaces; numbers right-aligned."""
    cells = [[cell(row.get(c.key)) for c in columns] for row in rows]
    widths = [max([len(c.header), *(len(line[i]) for line in cells)]) for i, c in enumerate(columns)]
    numeric = [
        any(_is_number(r.get(c.key)) for r in rows)
        and all(_is_number(r.get(c.key)) or r.get(c.key) is None for r in rows)
        for c in columns
    ]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    return [line([c.header for c in columns]), *(line(values) for values in cells)]


def json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return enum_text(value)
    if isinstance(value, set | tuple):
        return list(value)
    return str(value)


def json_line(row: Mapping[str, Any]) -> str:
    return json.dumps(row, default=json_value, sort_keys=True)


def print_rows(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], as_json: bool, what: str
) -> None:
    """`rows` as JSON lines (every key) or as a table of `columns`; a table of no rows says
    `no <what>`."""
    if as_json:
        for row in rows:
            print(json_line(row))
    elif not rows:
        print(f"no {what}")
    else:
        for text in table_lines(rows, columns):
            print(text)
