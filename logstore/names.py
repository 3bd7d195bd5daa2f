"""Validation of the names users give to tables and tags: they become file names, so they must be plain."""

from __future__ import annotations

import re

from .errors import InvalidNameError, TableNameCollisionError

_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")


def check(kind: str, name) -> str:
    if not isinstance(name, str) or not _PLAIN.fullmatch(name) or ".." in name:
        raise InvalidNameError(kind, name)
    return name


def check_new_table(name: str, existing) -> str:
    """A valid name for a new table, differing by more than case from every `existing` table name (SQL views and
    case-insensitive file systems would take the two for one). The exact same name is left to the caller."""
    check("table", name)
    for other in existing:
        if other != name and other.lower() == name.lower():
            raise TableNameCollisionError(name, other)
    return name
