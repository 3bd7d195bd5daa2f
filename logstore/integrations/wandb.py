"""Weights & Biases: one version of a table recorded as an input artifact of a run, and the exact rows read back
(extra `wandb`).

    from logstore.integrations import wandb as lw
    run = wandb.init(project="churn")
    lw.use_version(run, events, tag="v1.0")     # a reference artifact named after the table, type "dataset"
    ...
    lw.load_version(api.artifact("me/churn/events:v0"))   # online: exactly the rows the run used
    lw.load_version(run.dir)                              # offline: from the run's own directory

The artifact holds one reference, the version's dataset URI (logstore/uri.py; no checksum: the URI carries the
fingerprint), and its metadata `logstore_uri`, `fingerprint`, `num_rows`, `table`, `version` and `used_as: input`.
Online, `run.use_artifact` logs it as an input of the run (W&B's lineage graph shows the run consuming it). W&B
refuses use_artifact in offline mode, so an offline run logs it with `run.log_artifact` instead: there `used_as`
is what marks it as the data the run used (after `wandb sync` it shows as an artifact the run logged).

`logged_versions(path)` reads the versions a run recorded straight from an offline run's transaction log (the
`.wandb` file, LevelDB's log format: 32 KiB blocks of records with a CRC-32 each, holding protobuf records), so an
offline run needs no server to answer "which data did it see?". A log still being written reads as far as it is
complete; since run.finish() may return before the W&B service has flushed the file, load_version reads a log that
has no exit record yet again (for up to `timeout` seconds) until the version it looks for is there.
"""

from __future__ import annotations

import json
import os
import struct
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ..errors import CorruptionError, RunInputNotFoundError
from ..uri import parse
from ..uri import read as read_uri
from . import require

wandb = require("wandb", "wandb")

if TYPE_CHECKING:
    from ..selectors import Moment, Tag, Version
    from ..store import Location, Store
    from ..table import Table

ARTIFACT_TYPE = "dataset"
USED_AS = "input"
_BLOCK = 32768
_HEADER = struct.Struct("<4sHB")  # ident, magic, version
_RECORD = struct.Struct("<IHB")  # CRC-32 of type and data, length, type
_IDENT, _MAGIC = b":W&B", 0xBEE1
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def use_version(
    run: Any,
    table: Table,
    *,
    version: Version | None = None,
    as_of: Moment | None = None,
    tag: Tag | None = None,
) -> Any:
    """Record one version of `table` (the latest by default) as an input artifact of `run` (see the module
    docstring); returns the wandb.Artifact."""
    uri = table.uri(version=version, as_of=as_of, tag=tag)
    parsed = parse(uri)
    metadata = {
        "logstore_uri": uri,
        "fingerprint": parsed.fingerprint,
        "num_rows": table.commit_info(version=parsed.version).num_rows,
        "table": table.name,
        "version": parsed.version,
        "used_as": USED_AS,
    }
    artifact = wandb.Artifact(table.name, type=ARTIFACT_TYPE, description=uri, metadata=metadata)
    artifact.add_reference(uri, name=table.name, checksum=False)
    if run.offline:
        run.log_artifact(artifact)
    else:
        run.use_artifact(artifact)
    return artifact


def logged_versions(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The metadata of each logstore version a run recorded (use_version), read from an offline run directory (its
    `files/` directory, `run.dir`, too) or its `.wandb` file, in the order they were logged."""
    return _scan(Path(path))[0]


def _scan(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """(the metadata of the logstore versions recorded, whether the log is complete: it has the run's exit record)."""
    from wandb.proto import wandb_internal_pb2

    found, finished = [], False
    for data in _records(_transaction_log(path)):
        record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]  # generated protobuf code
        record.ParseFromString(data)
        kind = record.WhichOneof("record_type")
        finished = finished or kind == "exit"
        if kind != "artifact" or record.artifact.type != ARTIFACT_TYPE:
            continue
        metadata = json.loads(record.artifact.metadata or "{}")
        if isinstance(metadata, dict) and metadata.get("used_as") == USED_AS and "logstore_uri" in metadata:
            found.append(metadata)
    return found, finished


def load_version(
    source: Any,
    name: str | None = None,
    *,
    store: Store | Location | None = None,
    storage_options: dict[str, Any] | None = None,
    timeout: float = 10.0,
) -> pa.Table:
    """Exactly the rows a run recorded with use_version, read through their dataset URI (fingerprint checked).
    `source` is a wandb Artifact (e.g. `wandb.Api().artifact("entity/project/events:v0")`) or an offline run
    directory (or `run.dir`, or the `.wandb` file), where `name` picks the table (the only one recorded if None; a
    log without the version and without its exit record yet is read again for up to `timeout` seconds). `store=` reads from where the store
    is now if it moved (see logstore.read_uri)."""
    if isinstance(source, (str, os.PathLike)):
        return read_uri(_recorded(Path(source), name, timeout), store=store, storage_options=storage_options)
    uri = dict(source.metadata or {}).get("logstore_uri")
    if not isinstance(uri, str):
        raise RunInputNotFoundError(str(getattr(source, "name", source)), name, [])
    return read_uri(uri, store=store, storage_options=storage_options)


def _recorded(path: Path, name: str | None, timeout: float) -> str:
    """The URI of the one version named `name` (any, if None) that the offline run at `path` recorded."""
    deadline = time.monotonic() + timeout
    while True:
        logged, finished = _scan(path)
        matching = {m["logstore_uri"] for m in logged if name is None or m.get("table") == name}
        if len(matching) == 1:
            return matching.pop()
        if finished or len(matching) > 1 or time.monotonic() >= deadline:
            raise RunInputNotFoundError(os.fspath(path), name, [str(m.get("table")) for m in logged])
        time.sleep(0.05)


def _transaction_log(path: Path) -> Path:
    """The `.wandb` file of a run directory, or of the run directory holding `path` (its `files/`, which is
    `run.dir`), or `path` itself if it is one."""
    if path.is_dir() and not any(path.glob("*.wandb")) and any(path.parent.glob("*.wandb")):
        path = path.parent
    if path.is_dir():
        logs = sorted(path.glob("*.wandb"))
        if len(logs) != 1:
            raise FileNotFoundError(f"{path} holds {len(logs)} .wandb files, not one: give the run's directory or its .wandb file")
        return logs[0]
    return path


def _records(path: Path) -> list[bytes]:
    """The complete records of a W&B transaction log; stops at a torn or unfinished tail (a log still being written)."""
    data = path.read_bytes()
    if len(data) < _HEADER.size:
        return []
    ident, magic, _ = _HEADER.unpack_from(data)
    if ident != _IDENT or magic != _MAGIC:
        raise CorruptionError(str(path), None, "not a W&B transaction log (.wandb file)")
    records, pending, position = [], b"", _HEADER.size
    while position + _RECORD.size <= len(data):
        room = _BLOCK - position % _BLOCK
        if room < _RECORD.size:  # a block's trailer: zeros, no record starts there
            position += room
            continue
        checksum, length, kind = _RECORD.unpack_from(data, position)
        body = data[position + _RECORD.size: position + _RECORD.size + length]
        if len(body) < length or zlib.crc32(body, zlib.crc32(bytes([kind]))) != checksum:
            break  # the writer has not finished this record (or the tail is damaged): what came before stands
        position += _RECORD.size + length
        if kind == _FULL:
            records.append(body)
        elif kind == _FIRST:
            pending = body
        elif kind == _MIDDLE:
            pending += body
        elif kind == _LAST:
            records.append(pending + body)
            pending = b""
    return records
