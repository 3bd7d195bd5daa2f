"""Tags: names for versions, one JSON file each under `_tags/`, created with put-if-absent.

A tag record names itself (`tag`) and, in tables that have one, the table's identity (`table_id`), so a record
copied over another tag's file or from another table is refused (CorruptionError naming the file), never read as
this tag's version.
"""

from __future__ import annotations

from collections.abc import Callable

from . import codec, layout, names, timestamps
from .errors import CorruptionError, TagExistsError, TagNotFoundError


class Tags:
    def __init__(self, storage, prefix: str, table_id: Callable[[], str | None] = lambda: None):
        self.storage = storage
        self.prefix = prefix
        self._table_id = table_id  # the table's identity (Log.table_id); None for tables of format 1

    def _path(self, name: str) -> str:
        return layout.join(self.prefix, layout.tag_record(name))

    def all(self) -> dict[str, int]:
        return {name: self.get(name) for name in self.names()}

    def get(self, name: str) -> int:
        names.check("tag", name)
        path = self._path(name)
        try:
            raw = self.storage.read(path)
        except FileNotFoundError:
            raise TagNotFoundError(name, self.names()) from None
        obj = codec.parse(raw, _with_int_version, path=path, version=None, what="tag record")
        self._check_identity(path, name, obj)
        return obj["version"]

    def _check_identity(self, path: str, name: str, obj: dict) -> None:
        """CorruptionError unless the record is this tag's, of this table."""
        if obj.get("tag") != name:
            raise CorruptionError(path, None, f"tag record names tag {obj.get('tag')!r}, not {name!r} (copied from another tag?)")
        expected = self._table_id()
        if obj.get("table_id") != expected:
            raise CorruptionError(path, None, f"tag record belongs to another table (table_id {obj.get('table_id')}, this table's is {expected})")

    def names(self) -> list[str]:
        listed = self.storage.list(layout.join(self.prefix, layout.TAG_DIR))
        return [tag for tag in map(layout.tag_of, listed) if tag is not None]

    def create(self, name: str, version: int) -> None:
        names.check("tag", name)
        table_id = self._table_id()
        record = {"tag": name, "version": version, "created": timestamps.encode(timestamps.now())}
        if table_id is not None:
            record["table_id"] = table_id
        if not self.storage.put_if_absent(self._path(name), codec.encode(record, indent=None)):
            raise TagExistsError(name, self.get(name))

    def delete(self, name: str) -> None:
        self.get(name)  # raises TagNotFoundError
        self.storage.delete(self._path(name))


def _with_int_version(obj: dict) -> dict:
    """The tag record's object with its version an int."""
    return {**obj, "version": int(obj["version"])}
