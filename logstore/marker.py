"""The store marker, `logstore.json`: what makes a directory a store, and the format its writers promise.

docs/format.md, "Layout": a store created by this logstore says `format_version` FORMAT_VERSION. Older stores keep
their marker while commits only add what their format already knows; a feature that writes something an older
reader would misread (format 4: purge and expiry records, schema changes by column id) first raises the marker with
`upgrade`, so that older logstores refuse the store instead of reading it wrongly.
"""

from __future__ import annotations

import json
from typing import Any

from .layout import MARKER
from .log import FORMAT_VERSION

FORMAT_NAME = "logstore"


def body(version: int = FORMAT_VERSION) -> bytes:
    """The marker's bytes for a store of format `version`."""
    return json.dumps({"format": FORMAT_NAME, "format_version": version}, sort_keys=True).encode()


def read(storage: Any) -> Any:
    """The parsed marker (FileNotFoundError when there is none, ValueError when it is not JSON)."""
    return json.loads(storage.read(MARKER))


def upgrade(storage: Any, version: int = FORMAT_VERSION) -> None:
    """Raise the store's marker to `version` unless it already says that or more. Idempotent, so concurrent
    writers may both call it; it runs before the first record that needs the new format is published."""
    current = read(storage)
    if int(current.get("format_version", 0)) < version:
        storage.put(MARKER, body(version))
