"""Library objects as plain dicts with stable field names: the JSON/CSV contract of the CLI."""

from __future__ import annotations

from .output import count, human_bytes, human_time

COMMIT_FIELDS = [
    "version",
    "timestamp",
    "author",
    "operation",
    "rows_inserted",
    "rows_updated",
    "rows_deleted",
    "num_rows",
    "message",
    "metadata",
    "tags",
    "expired",
]


def commit_record(commit, tags=()) -> dict:
    return {
        "version": commit.version,
        "timestamp": commit.timestamp,
        "author": commit.author,
        "operation": commit.operation,
        "rows_inserted": commit.rows_inserted,
        "rows_updated": commit.rows_updated,
        "rows_deleted": commit.rows_deleted,
        "num_rows": commit.num_rows,
        "message": commit.message,
        "metadata": dict(commit.metadata),
        "tags": sorted(tags),
        "expired": bool(getattr(commit, "expired", False)),
    }


def changes(record: dict) -> str:
    return f"+{record['rows_inserted']} ~{record['rows_updated']} -{record['rows_deleted']}"


LOG_COLUMNS = [
    ("version", lambda r: r["version"]),
    ("time (UTC)", lambda r: human_time(r["timestamp"])),
    ("author", lambda r: r["author"]),
    ("operation", lambda r: r["operation"] + (" (expired)" if r.get("expired") else "")),
    ("changes", changes),
    ("rows", lambda r: r["num_rows"]),
    ("message", lambda r: r["message"]),
    ("tags", lambda r: ", ".join(r["tags"])),
]


def commit_line(table: str, record: dict) -> str:
    """The human line a write prints: `events: version 3 UPDATE +0 ~2 -0 (10 rows)`."""
    return f"{table}: version {record['version']} {record['operation']} {changes(record)} ({count(record['num_rows'], 'row')})"


def info_record(info) -> dict:
    return {
        "name": info.name,
        "key": list(info.key),
        "version": info.version,
        "num_rows": info.num_rows,
        "bytes_on_disk": info.bytes_on_disk,
        "snapshots": list(info.snapshots),
        "tags": dict(info.tags),
        "first_commit": info.first_commit,
        "last_commit": info.last_commit,
        "columns": [{"name": n, "type": t} for n, t in info.columns],
    }


def info_human(record: dict) -> dict:
    """The `info` record for people, without its schema: sizes and times readable."""
    return {
        "table": record["name"],
        "key": ", ".join(record["key"]) or "(none)",
        "version": record["version"],
        "rows": record["num_rows"],
        "bytes on disk": f"{human_bytes(record['bytes_on_disk'])} ({count(record['bytes_on_disk'], 'byte')})",
        "snapshots": versions_list(record["snapshots"]),
        "tags": ", ".join(f"{n} (version {v})" for n, v in record["tags"].items()) or "(none)",
        "first commit": human_time(record["first_commit"]) + " UTC",
        "last commit": human_time(record["last_commit"]) + " UTC",
    }


SHOWN_VERSIONS = 8  # a longer list of versions shows its first and last few


def versions_list(versions) -> str:
    """A list of versions for people, as a count first so that it never reads as one version:
    "(none)", "1 (version 8)", "3 (versions 0, 100, 200)", "40 (versions 0, 10, 20, ..., 380, 390)"."""
    versions = list(versions)
    if not versions:
        return "(none)"
    shown = [str(v) for v in versions]
    if len(shown) > SHOWN_VERSIONS:
        shown = shown[:3] + ["..."] + shown[-2:]
    return f"{len(versions)} ({'version' if len(versions) == 1 else 'versions'} {', '.join(shown)})"


def info_flat(record: dict) -> dict:
    """The `info` record as one CSV row: lists comma-joined, the schema as a DDL column list."""
    flat = {k: v for k, v in record.items() if k != "columns"}
    flat["schema"] = ", ".join(f"{c['name']} {c['type']}" for c in record["columns"])
    return flat
