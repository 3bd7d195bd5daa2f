"""Hugging Face datasets: one version of a table as a `datasets.Dataset` (extra `hf`).

The dataset wraps the version's Arrow table as it is read (datasets' InMemoryTable: no conversion to Python
objects, no copy). `info.description` is the version's dataset URI (logstore/uri.py), followed by the columns and
filter if a subset was read, and the dataset's `_fingerprint` (datasets' cache key for transforms) is derived from
them, so two datasets of the same rows share cached transforms and datasets of different versions never do.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from ..uri import parse
from . import require

if TYPE_CHECKING:
    from ..selectors import Moment, Tag, Version
    from ..table import Columns, Table


def to_hf(
    table: Table,
    *,
    version: Version | None = None,
    as_of: Moment | None = None,
    tag: Tag | None = None,
    columns: Columns = None,
    where: str | None = None,
) -> Any:
    """`table`'s rows of one version as a datasets.Dataset whose info.description names its dataset URI."""
    datasets = require("datasets", "hf")
    in_memory = require("datasets.table", "hf").InMemoryTable

    uri = table.uri(version=version, as_of=as_of, tag=tag)
    rows = table.read(version=parse(uri).version, columns=columns, where=where)
    description = uri
    if columns is not None:
        description += f"\ncolumns: {', '.join(columns)}"
    if where is not None:
        description += f"\nwhere: {where}"
    info = datasets.DatasetInfo(description=description)
    key = hashlib.sha256(description.encode()).hexdigest()[:32]
    return datasets.Dataset(in_memory(rows), info=info, fingerprint=f"logstore-{key}")
