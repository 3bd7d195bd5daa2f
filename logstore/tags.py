"""Tags: names for versions, one JSON file each under `_tags/`, created with put-if-absent."""

from __future__ import annotations

import json

from . import integrity, names, timestamps
from .errors import CorruptionError, TagExistsError, TagNotFoundError

TAG_DIR = "_tags"


class Tags:
    def __init__(self, storage, prefix: str):
        self.storage = storage
        self.dir = f"{prefix}/{TAG_DIR}"

    def _path(self, name: str) -> str:
        return f"{self.dir}/{name}.json"

    def all(self) -> dict[str, int]:
        return {n[:-5]: self.get(n[:-5]) for n in self.storage.list(self.dir) if n.endswith(".json")}

    def get(self, name: str) -> int:
        names.check("tag", name)
        path = self._path(name)
        try:
            raw = self.storage.read(path)
        except FileNotFoundError:
            raise TagNotFoundError(name, self.names()) from None
        try:
            obj = json.loads(raw)
            integrity.check_seal(obj)  # a tag written with a checksum must still match it
            return int(obj["version"])
        except (ValueError, KeyError, TypeError) as e:
            raise CorruptionError(path, None, f"malformed tag record ({e})") from None

    def names(self) -> list[str]:
        return [n[:-5] for n in self.storage.list(self.dir) if n.endswith(".json")]

    def create(self, name: str, version: int) -> None:
        names.check("tag", name)
        record = {"tag": name, "version": version, "created": timestamps.encode(timestamps.now())}
        if not self.storage.put_if_absent(self._path(name), json.dumps(integrity.seal(record), sort_keys=True).encode()):
            raise TagExistsError(name, self.get(name))

    def delete(self, name: str) -> None:
        self.get(name)  # raises TagNotFoundError
        self.storage.delete(self._path(name))
